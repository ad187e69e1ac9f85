"""The ``benchmarks`` part of a snapshot: per model and benchmark, the latest run and the
generation tok/s of the runs within ``dashboard.history`` (docs/dashboard.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlxstate.registry import DB_NAME
from mlxstate.text import iso_time

__all__ = ["benchmark_documents"]


def benchmark_documents(state_dir: Path, since: float) -> list[dict[str, Any]]:
    """Runs started at ``since`` or later, grouped; [] without a registry (none is made)."""
    if not (state_dir / DB_NAME).exists():
        return []
    from mlxstate.bench.history import query_runs
    from mlxstate.registry import Registry

    with Registry.open(state_dir) as registry:
        runs = query_runs(registry, since=since)
    groups: dict[tuple[str, str], list[Any]] = {}
    for run in runs:  # oldest first
        groups.setdefault((run.model, run.benchmark), []).append(run)
    out = []
    for (model, benchmark), group in sorted(groups.items()):
        latest = group[-1]
        summary = latest.summary() if latest.status == "ok" else {}
        gen, ttft = summary.get("gen_tps"), summary.get("ttft_ms")
        out.append(
            {
                "model": model,
                "benchmark": benchmark,
                "engine": latest.engine,
                "latest": {
                    "time": iso_time(latest.started),
                    "status": latest.status,
                    "gen_tps": None if gen is None else round(gen.median, 2),
                    "ttft_ms": None if ttft is None else round(ttft.median, 1),
                },
                "history": [
                    {"time": iso_time(r.started), "gen_tps": round(s.median, 2)}
                    for r in group
                    if r.status == "ok" and (s := r.summary()["gen_tps"]) is not None
                ],
            }
        )
    return out
