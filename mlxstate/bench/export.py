"""Benchmark history as flat rows: CSV for spreadsheets, and llama-bench's JSON field names
for tools that read llama.cpp's `llama-bench -o json` (docs/benchmarks.md, "History")."""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Sequence
from typing import Any

from mlxstate.bench.record import FORMAT_VERSION, RunRecord
from mlxstate.text import iso_time

__all__ = ["CSV_COLUMNS", "csv_text", "history_document", "llama_bench_rows"]

_STATS = ("median", "mad", "min", "max", "p95")
CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "started",
    "finished",
    "benchmark",
    "model",
    "source",
    "engine",
    "engine_version",
    "trigger",
    "status",
    "reason",
    "host",
    "os",
    "arch",
    "cpu",
    "memory_bytes",
    "runs",
    "warmup",
    "max_tokens",
    "prompts",
    "prompts_sha256",
    "samples",
    *(f"{metric}_{stat}" for metric in ("gen_tps", "prompt_tps", "ttft_ms") for stat in _STATS),
    "load_ms",
)


def history_document(runs: Sequence[RunRecord]) -> dict[str, Any]:
    """The same document as ``mlx bench run --json``."""
    return {"format_version": FORMAT_VERSION, "runs": [r.document() for r in runs]}


def csv_row(run: RunRecord) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": run.id,
        "started": iso_time(run.started),
        "finished": iso_time(run.finished),
        "benchmark": run.benchmark,
        "model": run.model,
        "source": run.source,
        "engine": run.engine,
        "engine_version": run.engine_version,
        "trigger": run.trigger,
        "status": run.status,
        "reason": run.reason,
        "host": run.host.name,
        "os": run.host.os,
        "arch": run.host.arch,
        "cpu": run.host.cpu,
        "memory_bytes": run.host.memory_bytes,
        "runs": run.settings.runs,
        "warmup": run.settings.warmup,
        "max_tokens": run.settings.max_tokens,
        "prompts": run.settings.prompts,
        "prompts_sha256": run.settings.prompts_sha256,
        "samples": len(run.samples),
        "load_ms": load_ms(run),
    }
    for metric, stats in run.summary().items():
        for stat in _STATS:
            row[f"{metric}_{stat}"] = None if stats is None else round(getattr(stats, stat), 4)
    return row


def csv_text(runs: Sequence[RunRecord]) -> str:
    """RFC 4180: a header row, CRLF line ends, fields quoted when they need it; an empty
    field for a value that is not known."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for run in runs:
        writer.writerow({k: _cell(v) for k, v in csv_row(run).items()})
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A spreadsheet runs a text cell starting with = + - @ as a formula: a model name or
    an error message is data, so such text gets a leading apostrophe (OWASP's CSV rule)."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def load_ms(run: RunRecord) -> float | None:
    """The cold load of the run (the longest ``load_ms`` of its samples); None when every
    sample found the model loaded."""
    loads = [s.load_ms for s in run.samples if s.load_ms > 0]
    return round(max(loads), 3) if loads else None


def llama_bench_rows(runs: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Per ``ok`` run, llama-bench's two tests: prompt processing (``n_gen`` 0) and text
    generation (``n_prompt`` 0), token counts as the median of the samples (the prompts of a
    set differ in length), with llama-bench's statistics (mean and sample standard
    deviation of the warm samples, not our median and MAD)."""
    rows: list[dict[str, Any]] = []
    for run in runs:
        if run.status != "ok":
            continue
        warm = [s for s in run.samples if not s.cold]
        prompt = [(s.prompt_tokens, s.prompt_tps) for s in warm if s.prompt_tps]
        gen = [(s.gen_tokens, s.gen_tps) for s in warm if s.gen_tps]
        if prompt:
            n_prompt = round(statistics.median(t for t, _ in prompt))
            rows.append(_llama_row(run, n_prompt, 0, [r for _, r in prompt], prompt))
        if gen:
            n_gen = round(statistics.median(t for t, _ in gen))
            rows.append(_llama_row(run, 0, n_gen, [r for _, r in gen], gen))
    return rows


def _llama_row(
    run: RunRecord,
    n_prompt: int,
    n_gen: int,
    rates: list[float],
    pairs: list[tuple[int, float]],
) -> dict[str, Any]:
    # The time the engine counted for each sample: its tokens at its rate.
    samples_ns = [round(tokens / rate * 1e9) for tokens, rate in pairs]
    return {
        "build_commit": run.engine_version or "",
        "cpu_info": run.host.cpu,
        "backends": run.engine,
        "model_filename": run.source,
        "model_type": " ".join(
            str(run.identity[k]) for k in ("parameter_size", "quantization") if run.identity.get(k)
        ),
        "n_prompt": n_prompt,
        "n_gen": n_gen,
        "n_depth": 0,
        "test_time": iso_time(run.started),
        "avg_ns": round(statistics.fmean(samples_ns)),
        "stddev_ns": round(_stdev(samples_ns)),
        "avg_ts": round(statistics.fmean(rates), 6),
        "stddev_ts": round(_stdev(rates), 6),
        "samples_ns": samples_ns,
        "samples_ts": [round(r, 6) for r in rates],
        # Not llama-bench's: which mlx run and model this row comes from.
        "mlx_run_id": run.id,
        "mlx_model": run.model,
        "mlx_benchmark": run.benchmark,
    }


def _stdev(values: Sequence[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0  # llama-bench: 0 for one
