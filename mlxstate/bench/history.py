"""Benchmark runs in the registry: save one, query them back (``mlx bench history``,
``compare``, ``report``, the dashboard). Runs are kept whole as JSON (``bench_runs.doc``)
and their samples one per row (``bench_samples``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from mlxstate.bench.record import Host, RunRecord, RunSettings, Sample
from mlxstate.registry import Registry

__all__ = ["find_run", "previous_run", "query_runs", "save_run"]

_SAMPLE_COLUMNS = (
    "prompt_index",
    "ttft_ms",
    "prompt_tokens",
    "prompt_tps",
    "gen_tokens",
    "gen_tps",
    "load_ms",
    "peak_memory_bytes",
)


def save_run(registry: Registry, record: RunRecord) -> None:
    doc = {
        "engine_version": record.engine_version,
        "reason": record.reason,
        "host": record.host.document(),
        "settings": record.settings.document(),
        "identity": record.identity,
        "conditions": record.conditions,
        "finished": record.finished,
    }
    with registry.transaction() as conn:
        conn.execute(
            "INSERT INTO bench_runs (id, started, benchmark, model, source, engine, trigger,"
            " status, doc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.id,
                record.started,
                record.benchmark,
                record.model,
                record.source,
                record.engine,
                record.trigger,
                record.status,
                json.dumps(doc, sort_keys=True),
            ),
        )
        conn.executemany(
            f"INSERT INTO bench_samples (run_id, seq, {', '.join(_SAMPLE_COLUMNS)})"
            f" VALUES (?, ?, {', '.join('?' * len(_SAMPLE_COLUMNS))})",
            [
                (record.id, seq, *(getattr(s, c) for c in _SAMPLE_COLUMNS))
                for seq, s in enumerate(record.samples)
            ],
        )


def query_runs(
    registry: Registry,
    *,
    model: str | None = None,
    benchmark: str | None = None,
    since: float | None = None,
    status: Sequence[str] | None = None,
    limit: int | None = None,
) -> list[RunRecord]:
    """Runs oldest first, with their samples."""
    where: list[str] = []
    args: list[Any] = []
    if model is not None:
        where.append("model = ?")
        args.append(model)
    if benchmark is not None:
        where.append("benchmark = ?")
        args.append(benchmark)
    if since is not None:
        where.append("started >= ?")
        args.append(since)
    if status:
        where.append(f"status IN ({', '.join('?' * len(status))})")
        args.extend(status)
    sql = "SELECT * FROM bench_runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started DESC, id DESC"
    if limit is not None:
        sql += " LIMIT ?"
        args.append(limit)
    rows = registry.conn.execute(sql, args).fetchall()
    return [_record(registry, row) for row in reversed(rows)]


def find_run(registry: Registry, run_id: str) -> RunRecord | None:
    row = registry.conn.execute("SELECT * FROM bench_runs WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else _record(registry, row)


def previous_run(registry: Registry, record: RunRecord) -> RunRecord | None:
    """The latest ``ok`` run of the same benchmark and model before ``record``."""
    row = registry.conn.execute(
        "SELECT * FROM bench_runs WHERE model = ? AND benchmark = ? AND status = 'ok'"
        " AND (started < ? OR (started = ? AND id < ?)) ORDER BY started DESC, id DESC LIMIT 1",
        (record.model, record.benchmark, record.started, record.started, record.id),
    ).fetchone()
    return None if row is None else _record(registry, row)


def _record(registry: Registry, row: Sequence[Any]) -> RunRecord:
    run_id, started, benchmark, model, source, engine, trigger, status, raw = row
    doc = json.loads(raw)
    samples = [
        Sample(**dict(zip(_SAMPLE_COLUMNS, values, strict=True)))
        for values in registry.conn.execute(
            f"SELECT {', '.join(_SAMPLE_COLUMNS)} FROM bench_samples WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
    ]
    return RunRecord(
        id=run_id,
        benchmark=benchmark,
        model=model,
        source=source,
        engine=engine,
        engine_version=doc.get("engine_version"),
        trigger=trigger,
        started=started,
        status=status,
        reason=doc.get("reason"),
        host=Host(**doc["host"]),
        settings=RunSettings(**doc["settings"]),
        samples=samples,
        identity=doc.get("identity") or {},
        conditions=doc.get("conditions") or {},
        finished=doc.get("finished"),
    )
