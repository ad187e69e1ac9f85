"""Benchmark accuracy and overhead: does `mlx bench` report what the engine counted, and
what does the harness itself cost per measured generation?

    uv run python benchmarks/bench_overhead.py [--runs 20] [--repeats 3] [--mlx-rounds 20]

Ollama part: the loopback fake Ollama (tests/fakes) answers every generation with known
counters (eval and prompt nanoseconds per token). The runner (`run_benchmarks`, the code
behind `mlx bench run`, recording into a fresh registry) runs the standard prompt set
against it. Accuracy: every sample's gen and prompt tok/s against the counters' rates.
Overhead: the runner's wall time minus the fake's own time answering `/api/generate`,
divided by the measured generations (warm-ups included in the cost, not in the divisor).

Targets: tok/s equal to the counters within 0.1%; overhead < 5 ms per measured run.

MLX part (needs the mlx extra, `uv sync --extra mlx`; skipped with a note without it): the
tests' tiny random llama model (tests/builders/tiny_mlx.py) in a temporary HF cache.
Rounds alternate one trial of mlx-lm's own benchmark (`python -m mlx_lm benchmark`: its
`main`, run in this process, random prompt tokens, EOS disabled) and one measured run of the
same prompt and generation lengths through mlx's MLX engine, so a busy moment of a shared
machine hits both sides alike. Target: the median of the per-round ratios of prompt and
generation tok/s within 5% of 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

EVAL_NS = 12_345_678  # per generated token: 81.0 tok/s
PROMPT_NS = 1_234_567  # per prompt token: 810.0 tok/s
MAX_TOKENS = 16
MLX_TOLERANCE = 0.05
_TRIAL = re.compile(r"Trial \d+:\s+prompt_tps=([\d.]+), generation_tps=([\d.]+)")


def _spec(folder: Path, runs: int) -> Path:
    path = folder / "mlx.yaml"
    path.write_text(
        "version: 1\n"
        "models:\n  qwen:\n    source: ollama://qwen2.5:7b\n"
        "benchmarks:\n  overhead:\n    models: [qwen]\n"
        f"    runs: {runs}\n    warmup: 1\n    max_tokens: {MAX_TOKENS}\n"
    )
    return path


def ollama_part(runs: int, repeats: int) -> None:
    from mlxstate.bench.runner import run_benchmarks
    from mlxstate.engine import Session
    from mlxstate.settings import Environment
    from tests.builders import ollama_store
    from tests.fakes.ollama_server import FakeOllama

    overheads: list[float] = []
    worst_gen = worst_prompt = 0.0
    generations = measured = 0
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="mlx-bench-overhead-") as tmp:
            base = Path(tmp)
            models = base / "ollama"
            ollama_store.add_model(models, "qwen2.5:7b")
            with FakeOllama(models) as fake:
                fake.generate_eval_ns, fake.generate_prompt_ns = EVAL_NS, PROMPT_NS
                env = Environment.from_mapping(
                    {
                        "HOME": str(base),
                        "OLLAMA_MODELS": str(models),
                        "OLLAMA_HOST": fake.url,
                        "XDG_STATE_HOME": str(base / "state"),
                        "HF_HOME": str(base / "hf"),
                    }
                )
                session = Session(env, _spec(base, runs))
                loaded = session.load()
                start = time.perf_counter()
                (record,) = run_benchmarks(session, loaded)
                wall = time.perf_counter() - start
                own = fake.generate_seconds
                generations = fake.count("POST", "/api/generate")
        assert record.status == "ok", record.reason
        warm = [s for s in record.samples if not s.cold]
        measured = len(warm)
        overheads.append((wall - own) / measured)
        for s in warm:
            assert s.gen_tps is not None and s.prompt_tps is not None
            worst_gen = max(worst_gen, abs(s.gen_tps / (1e9 / EVAL_NS) - 1))
            worst_prompt = max(worst_prompt, abs(s.prompt_tps / (1e9 / PROMPT_NS) - 1))
    overhead_ms = statistics.median(overheads) * 1000
    print(f"Ollama (fake, counters {1e9 / EVAL_NS:.3f} gen tok/s, {1e9 / PROMPT_NS:.3f} prompt)")
    print(f"  generations per run of the runner     {generations} ({measured} measured)")
    print(f"  gen tok/s, worst |reported/counters-1|    {worst_gen:.2e}  (target < 1e-3)")
    print(f"  prompt tok/s, worst |reported/counters-1| {worst_prompt:.2e}  (target < 1e-3)")
    spread = ", ".join(f"{o * 1000:.2f}" for o in overheads)
    print(f"  overhead per measured run             {overhead_ms:.2f} ms (runs: {spread})")
    print(f"  overhead / 5 ms target                {overhead_ms / 5:.2f}")


def _mlx_lm_trials(folder: Path, prompt: int, gen: int, runs: int) -> list[tuple[float, float]]:
    """Per-trial (prompt, generation) tok/s printed by mlx-lm's own benchmark."""
    from mlx_lm import benchmark

    out = io.StringIO()
    saved = sys.argv
    try:
        sys.argv = ["mlx_lm.benchmark", "--model", str(folder)]
        sys.argv += ["-p", str(prompt), "-g", str(gen), "-n", str(runs)]
        with contextlib.redirect_stdout(out):
            benchmark.main()
    finally:
        sys.argv = saved
    trials = [(float(p), float(g)) for p, g in _TRIAL.findall(out.getvalue())]
    if len(trials) != runs:
        raise SystemExit(f"could not read mlx_lm benchmark's output:\n{out.getvalue()}")
    return trials


def _text_of(folder: Path, tokens: int) -> str:
    """Text of ``tokens`` tokens in the model's own tokenizer."""
    from tokenizers import Tokenizer

    from tests.builders.tiny_mlx import CORPUS

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    text = " ".join(CORPUS)
    while len(tokenizer.encode(text).ids) < tokens:
        text += " " + text
    return str(tokenizer.decode(tokenizer.encode(text).ids[:tokens]))


def mlx_part(rounds: int, prompt_tokens: int = 512, gen_tokens: int = 128) -> None:
    if importlib.util.find_spec("mlx_lm") is None:
        print("MLX: skipped, the mlx extra is not installed (uv sync --extra mlx)")
        return
    from mlxstate.bench.engines.base import BenchTarget, Measurement
    from mlxstate.bench.engines.mlx import MlxEngine
    from tests.builders.tiny_mlx import add_tiny_mlx_model

    reference: list[tuple[float, float]] = []
    ours: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="mlx-bench-mlx-") as base:
        model = add_tiny_mlx_model(Path(base, "hub"))
        folder = model.snapshot_dir
        text = _text_of(folder, prompt_tokens)
        target = BenchTarget("tiny", "hf://b/tiny", str(folder), path=folder, revision=model.commit)
        with MlxEngine().load(target) as session:
            session.generate(text, max_tokens=gen_tokens, seed=0)  # warm-up, as theirs has
            for _ in range(rounds):
                reference += _mlx_lm_trials(folder, prompt_tokens, gen_tokens, 1)
                ours.append(session.generate(text, max_tokens=gen_tokens, seed=0))
    rows = (
        ("prompt tok/s", [p for p, _ in reference], [m.prompt_tps or 0.0 for m in ours]),
        ("generation tok/s", [g for _, g in reference], [m.gen_tps or 0.0 for m in ours]),
    )
    print(f"MLX (tiny llama, {ours[0].prompt_tokens} prompt tokens, {ours[0].gen_tokens} "
          f"generated; {rounds} rounds)")  # fmt: skip
    print(f"  {'figure':<18} {'mlx_lm benchmark':>17} {'mlx engine':>11} {'ratio':>7}")
    worst = 0.0
    for label, theirs, mine in rows:
        # The median of per-round ratios: each pair ran back to back, under the same load.
        ratio = statistics.median(b / a for a, b in zip(theirs, mine, strict=True))
        worst = max(worst, abs(ratio - 1))
        ref, value = statistics.median(theirs), statistics.median(mine)
        print(f"  {label:<18} {ref:>17.1f} {value:>11.1f} {ratio:>7.3f}")
    verdict = "within" if worst <= MLX_TOLERANCE else "OUTSIDE"
    print(f"  largest difference {worst:.1%}: {verdict} the {MLX_TOLERANCE:.0%} target")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs per prompt")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mlx-rounds", type=int, default=20, help="0: no MLX part")
    args = parser.parse_args()
    ollama_part(args.runs, args.repeats)
    if args.mlx_rounds:
        mlx_part(args.mlx_rounds)


if __name__ == "__main__":
    main()
