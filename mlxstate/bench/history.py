"""Benchmark runs in the registry: save one, query them back (``mlx bench history``,
``compare``, ``report``, the dashboard). Runs are kept whole as JSON (``bench_runs.doc``)
and their samples one per row (``bench_samples``)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from mlxstate.bench.record import Host, RunRecord, RunSettings, Sample
from mlxstate.errors import MlxError
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
    unreadable: list[str] | None = None,
) -> list[RunRecord]:
    """Runs oldest first, with their samples. A run this version cannot read is left out
    and, when ``unreadable`` is given, named there with why."""
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
    runs: list[RunRecord] = []
    for row in reversed(rows):
        try:
            runs.append(_record(registry, row))
        except _Unreadable as exc:
            if unreadable is not None:
                unreadable.append(f"run {row[0]!s}: {exc}")
    return runs


def find_run(registry: Registry, run_id: str) -> RunRecord | None:
    row = registry.conn.execute("SELECT * FROM bench_runs WHERE id = ?", (run_id,)).fetchone()
    try:
        return None if row is None else _record(registry, row)
    except _Unreadable as exc:
        raise MlxError(f"benchmark run {run_id} cannot be read: {exc}") from None


def previous_run(registry: Registry, record: RunRecord) -> RunRecord | None:
    """The latest ``ok`` run of the same benchmark and model before ``record``."""
    row = registry.conn.execute(
        "SELECT * FROM bench_runs WHERE model = ? AND benchmark = ? AND status = 'ok'"
        " AND (started < ? OR (started = ? AND id < ?)) ORDER BY started DESC, id DESC LIMIT 1",
        (record.model, record.benchmark, record.started, record.started, record.id),
    ).fetchone()
    try:
        return None if row is None else _record(registry, row)
    except _Unreadable:
        return None  # as if there were none: nothing this version can compare with


class _Unreadable(ValueError):
    """A stored run this version cannot read (a newer mlx wrote it, or the file was edited)."""


def _record(registry: Registry, row: Sequence[Any]) -> RunRecord:
    run_id, started, benchmark, model, source, engine, trigger, status, raw = row
    try:
        doc = json.loads(raw)
    except (TypeError, ValueError):
        raise _Unreadable("its document is not JSON") from None
    if not isinstance(doc, dict):
        raise _Unreadable("its document is not a JSON object")
    samples = [
        _sample(values)
        for values in registry.conn.execute(
            f"SELECT {', '.join(_SAMPLE_COLUMNS)} FROM bench_samples WHERE run_id = ? ORDER BY seq",
            (run_id,),
        )
    ]
    if not all(isinstance(v, str) for v in (run_id, benchmark, model, source, engine)):
        raise _Unreadable("a name is not text")
    return RunRecord(
        id=run_id,
        benchmark=benchmark,
        model=model,
        source=source,
        engine=engine,
        engine_version=_opt(doc, "engine_version", str),
        trigger=trigger,
        started=_number(started, "started"),
        status=status,
        reason=_opt(doc, "reason", str),
        host=_known(Host, doc.get("host")),
        settings=_known(RunSettings, doc.get("settings")),
        samples=samples,
        identity=_opt(doc, "identity", dict) or {},
        conditions=_opt(doc, "conditions", dict) or {},
        finished=_opt(doc, "finished", float),
    )


_OPTIONAL = ("prompt_tps", "gen_tps", "peak_memory_bytes")


def _sample(values: Sequence[Any]) -> Sample:
    fields = dict(zip(_SAMPLE_COLUMNS, values, strict=True))
    for key, value in fields.items():
        # the columns are untyped in SQLite: a text or blob there would reach the arithmetic
        if key in _OPTIONAL and isinstance(value, float) and not math.isfinite(value):
            fields[key] = None  # an infinite rate is no rate (and no valid JSON)
        elif value is not None or key not in _OPTIONAL:
            _number(value, key)
    return Sample(**fields)


def _number(value: Any, what: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Unreadable(f"{what} is not a number")
    if not math.isfinite(value):
        raise _Unreadable(f"{what} is not finite")
    return value


def _opt(doc: dict[str, Any], key: str, kind: type) -> Any:
    value = doc.get(key)
    if value is None:
        return None
    if kind is float:
        return _number(value, key)
    if not isinstance(value, kind):
        raise _Unreadable(f"{key} is not a {kind.__name__}")
    return value


def _known(cls: type[Any], value: Any) -> Any:
    """``cls`` from the keys this version knows; a newer version's extra keys are ignored."""
    if not isinstance(value, dict):
        raise _Unreadable(f"{cls.__name__.lower()} is missing")
    names = cls.__dataclass_fields__
    try:
        return cls(**{k: v for k, v in value.items() if k in names})
    except TypeError:
        raise _Unreadable(f"{cls.__name__.lower()} lacks a field") from None
