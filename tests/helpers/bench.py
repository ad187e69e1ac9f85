"""Benchmark run records for tests: build one with known figures, save it to the registry."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from mlxstate.bench.history import save_run
from mlxstate.bench.record import Host, RunRecord, RunSettings, Sample, Status, Trigger
from mlxstate.registry import DB_NAME, Registry
from tests.helpers import state_dir

__all__ = ["HOST", "PROMPTS_SHA", "make_run", "poke_registry", "save_runs"]

HOST = Host(name="bench-host", os="Linux", arch="x86_64", cpu="Test CPU", memory_bytes=16 << 30)
PROMPTS_SHA = "a" * 64
T0 = 1_790_000_000.0  # 2026-09-21T...Z: a fixed time, far from the test clock's "now"


def make_run(
    run_id: str,
    *,
    model: str = "llama",
    benchmark: str = "nightly",
    started: float = T0,
    gen_tps: Sequence[float] = (50.0, 50.0, 50.0),
    ttft_ms: Sequence[float] | None = None,
    prompt_tps: Sequence[float] | None = None,
    load_ms: float = 0.0,
    status: Status = "ok",
    reason: str | None = None,
    engine: str = "ollama",
    engine_version: str | None = "0.5.1",
    trigger: Trigger = "manual",
    max_tokens: int = 128,
    prompts_sha256: str = PROMPTS_SHA,
    identity: dict[str, Any] | None = None,
    source: str | None = None,
) -> RunRecord:
    """One run whose warm samples have exactly these rates (so median and MAD are known).
    ``load_ms`` > 0 adds one cold sample first (kept out of the summary). A run that is not
    ``ok`` has no samples."""
    ttfts = list(ttft_ms) if ttft_ms is not None else [100.0] * len(gen_tps)
    prompts = list(prompt_tps) if prompt_tps is not None else [500.0] * len(gen_tps)
    samples: list[Sample] = []
    if status == "ok":
        if load_ms:
            samples.append(Sample(0, 2000.0, 20, 400.0, 64, gen_tps[0], load_ms=load_ms))
        samples += [
            Sample(i % 10, ttft, 20, ptps, 64, tps)
            for i, (tps, ttft, ptps) in enumerate(zip(gen_tps, ttfts, prompts, strict=True))
        ]
    return RunRecord(
        id=run_id,
        benchmark=benchmark,
        model=model,
        source=source or f"ollama://{model}:8b",
        engine=engine,
        engine_version=engine_version,
        trigger=trigger,
        started=started,
        status=status,
        reason=reason,
        host=HOST,
        settings=RunSettings(
            runs=len(gen_tps), warmup=1, max_tokens=max_tokens, prompts_sha256=prompts_sha256
        ),
        samples=samples,
        identity={"digest": "sha256:" + "1" * 64} if identity is None else identity,
        conditions={"power_source": "ac", "memory_pressure": "normal"},
        finished=started + 60 if status == "ok" else started,
    )


def save_runs(*records: RunRecord) -> None:
    """Save ``records`` in the test's registry (created if absent)."""
    with Registry.open(state_dir()) as registry:
        for record in records:
            save_run(registry, record)


def poke_registry(sql: str) -> None:
    """Run ``sql`` on the test's registry behind mlx's back: rows a newer version (or a
    hand edit) left there."""
    conn = sqlite3.connect(state_dir() / DB_NAME)
    try:
        conn.execute(sql)
        conn.commit()
    finally:
        conn.close()
