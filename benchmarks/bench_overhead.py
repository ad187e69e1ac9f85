"""Benchmark accuracy and overhead: does `mlx bench` report what the engine counted, and
what does the harness itself cost per measured generation?

    uv run python benchmarks/bench_overhead.py [--runs 20] [--repeats 3]

Ollama part: the loopback fake Ollama (tests/fakes) answers every generation with known
counters (eval and prompt nanoseconds per token). The runner (`run_benchmarks`, the code
behind `mlx bench run`, recording into a fresh registry) runs the standard prompt set
against it. Accuracy: every sample's gen and prompt tok/s against the counters' rates.
Overhead: the runner's wall time minus the fake's own time answering `/api/generate`,
divided by the measured generations (warm-ups included in the cost, not in the divisor).

Targets: tok/s equal to the counters within 0.1%; overhead < 5 ms per measured run.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs per prompt")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    ollama_part(args.runs, args.repeats)


if __name__ == "__main__":
    main()
