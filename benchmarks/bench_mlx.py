"""MLX engine accuracy: mlx's figures against mlx-lm's own benchmark on the same model.

Builds the tests' tiny random llama model (tests/builders/tiny_mlx.py) in a temporary HF
cache, then alternates rounds of `python -m mlx_lm benchmark` on its snapshot folder (its
own main, random prompt tokens, EOS disabled) and of the same prompt and generation lengths
through mlxstate's MLX engine (one warm-up, then N runs each). Prints the medians of both
and their ratio; the target is agreement within 5% for prompt and generation
tokens/s. Needs the mlx extra (`uv sync --extra mlx`).

    uv run python benchmarks/bench_mlx.py [--rounds 7] [--runs 3] [--prompt-tokens 512]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the tests' model builder

from mlxstate.bench.engines.base import BenchTarget, Measurement  # noqa: E402
from mlxstate.bench.engines.mlx import MlxEngine  # noqa: E402
from tests.builders.tiny_mlx import CORPUS, add_tiny_mlx_model  # noqa: E402

TOLERANCE = 0.05
_TRIAL = re.compile(r"Trial \d+:\s+prompt_tps=([\d.]+), generation_tps=([\d.]+)")


def mlx_lm_benchmark(folder: Path, prompt: int, gen: int, runs: int) -> list[tuple[float, float]]:
    """Per-trial (prompt, generation) tok/s of mlx-lm's own benchmark (``python -m mlx_lm
    benchmark``: its ``main``, run in this process so both sides share the machine's state)."""
    from mlx_lm import benchmark

    argv = ["mlx_lm.benchmark", "--model", str(folder)]
    argv += ["-p", str(prompt), "-g", str(gen), "-n", str(runs)]
    out = io.StringIO()
    saved = sys.argv
    try:
        sys.argv = argv
        with contextlib.redirect_stdout(out):
            benchmark.main()
    finally:
        sys.argv = saved
    trials = [(float(p), float(g)) for p, g in _TRIAL.findall(out.getvalue())]
    if len(trials) != runs:
        raise SystemExit(f"could not read mlx_lm benchmark's output:\n{out.getvalue()}")
    return trials


def prompt_of(folder: Path, tokens: int) -> str:
    """Text of about ``tokens`` tokens in the model's own tokenizer."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    text = " ".join(CORPUS)
    while len(tokenizer.encode(text).ids) < tokens:
        text += " " + text
    ids: list[int] = tokenizer.encode(text).ids[:tokens]
    return str(tokenizer.decode(ids))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--prompt-tokens", type=int, default=512)
    parser.add_argument("--gen-tokens", type=int, default=128)
    args = parser.parse_args()
    reference: list[tuple[float, float]] = []
    ours: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="mlx-bench-") as base:
        model = add_tiny_mlx_model(Path(base, "hub"))
        folder = model.snapshot_dir
        text = prompt_of(folder, args.prompt_tokens)
        target = BenchTarget("tiny", "hf://b/tiny", str(folder), path=folder, revision=model.commit)
        with MlxEngine().load(target) as session:
            session.generate(text, max_tokens=args.gen_tokens, seed=0)  # warm-up, like theirs
            # One trial each per round, alternating, so a busy moment of this shared machine
            # hits both sides alike.
            for _ in range(args.rounds):
                reference += mlx_lm_benchmark(folder, args.prompt_tokens, args.gen_tokens, 1)
                ours.append(session.generate(text, max_tokens=args.gen_tokens, seed=0))
    rows = (
        ("prompt tok/s", [p for p, _ in reference], [m.prompt_tps or 0.0 for m in ours]),
        ("generation tok/s", [g for _, g in reference], [m.gen_tps or 0.0 for m in ours]),
    )
    print(f"tiny llama (hidden 64, 2 layers): {len(ours)} rounds; medians, ratio of pairs")
    print(f"mlx engine: {ours[0].prompt_tokens} prompt tokens, {ours[0].gen_tokens} generated")
    print(f"{'figure':<18} {'mlx_lm benchmark':>17} {'mlx engine':>11} {'ratio':>7}")
    worst = 0.0
    for label, theirs, mine in rows:
        ref, value = statistics.median(theirs), statistics.median(mine)
        # The median of per-round ratios: each pair ran back to back, under the same load.
        ratio = statistics.median(b / a for a, b in zip(theirs, mine, strict=True))
        worst = max(worst, abs(ratio - 1))
        print(f"{label:<18} {ref:>17.1f} {value:>11.1f} {ratio:>7.3f}")
    verdict = "within" if worst <= TOLERANCE else "OUTSIDE"
    print(f"largest difference {worst:.1%}: {verdict} the {TOLERANCE:.0%} target")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    raise SystemExit(main())
