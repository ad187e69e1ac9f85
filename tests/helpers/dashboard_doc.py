"""A dashboard snapshot document (docs/dashboard.md) with every part filled in, for the
views' tests: the render functions and the full-screen view fed from a file."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

__all__ = ["MARKUP_NAMES", "hostile_doc", "snapshot_doc", "write_snapshot_doc"]

_GB = 1_000_000_000

_DOC: dict[str, Any] = {
    "format_version": "1",
    "time": "2026-11-30T15:00:00Z",
    "host": {
        "name": "studio",
        "os": "darwin 25.1",
        "arch": "arm64",
        "cpu": "Apple M2 Ultra",
        "memory_bytes": 192 * _GB,
    },
    "system": {
        "cpu_percent": 12.5,
        "memory": {
            "total_bytes": 192 * _GB,
            "used_bytes": 87 * _GB,
            "available_bytes": 105 * _GB,
            "percent": 45.3,
        },
        "swap": {"total_bytes": 4 * _GB, "used_bytes": _GB // 10},
        "memory_pressure": "normal",
        "thermal": "nominal",
        "temperatures_c": None,
        "power": {"source": "ac", "battery_percent": None},
        "gpu": None,
        "unavailable": {"gpu": "macmon not installed"},
    },
    "ollama": {
        "host": "http://127.0.0.1:11434",
        "reachable": True,
        "version": "0.12.3",
        "error": None,
        "running": [
            {
                "name": "qwen2.5:7b",
                "size_bytes": 54 * _GB // 10,
                "vram_bytes": 54 * _GB // 10,
                "expires_at": "2026-11-30T15:04:10Z",
                "context_length": 4096,
            }
        ],
    },
    "stores": [
        {
            "kind": "ollama",
            "path": "/srv/models/ollama",
            "size_bytes": 12 * _GB,
            "free_bytes": 300 * _GB,
            "reclaimable_bytes": 0,
            "models": 3,
            "scanned_at": "2026-11-30T14:59:00Z",
        },
        {
            "kind": "huggingface",
            "path": "/srv/models/hf",
            "size_bytes": 22 * _GB,
            "free_bytes": 300 * _GB,
            "reclaimable_bytes": 15 * _GB // 10,
            "models": 4,
            "scanned_at": "2026-11-30T14:59:00Z",
        },
    ],
    "drift": {
        "declared": 5,
        "present": 4,
        "pending": {"total": 2, "install": 1, "delete": 1},
        "source": "agent",
        "at": "2026-11-30T14:59:00Z",
        "error": None,
    },
    "agent": {
        "running": True,
        "pid": 4242,
        "suspended": False,
        "last_attempt": {"time": "2026-11-30T14:58:00Z", "result": "applied", "message": ""},
        "last_applied": None,
        "next_run": "2026-11-30T15:05:00Z",
        "next_benchmark": None,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Applied",
                "message": "",
                "since": "2026-11-30T14:58:00Z",
            }
        ],
        "failures": 0,
        "history": [],
    },
    "benchmarks": [
        {
            "model": "qwen",
            "benchmark": "nightly",
            "engine": "ollama",
            "latest": {
                "time": "2026-11-30T03:00:00Z",
                "status": "ok",
                "gen_tps": 48.2,
                "ttft_ms": 120.0,
            },
            "history": [
                {"time": f"2026-11-{day}T03:00:00Z", "gen_tps": tps}
                for day, tps in ((27, 47.9), (28, 45.1), (29, 49.0), (30, 48.2))
            ],
        }
    ],
}


def snapshot_doc(**changes: Any) -> dict[str, Any]:
    """A fresh copy of the document, with top-level keys replaced by ``changes``."""
    doc = copy.deepcopy(_DOC)
    doc.update(changes)
    return doc


def write_snapshot_doc(path: Path, doc: dict[str, Any] | None = None) -> Path:
    path.write_text(json.dumps(snapshot_doc() if doc is None else doc), encoding="utf-8")
    return path


# Text rich would read as markup: an unmatched closing tag, a style, a link.
MARKUP_NAMES = ("[/]", "[reverse]R[/reverse]", "[link=x]L[/]")


def hostile_doc(number: Any) -> dict[str, Any]:
    """The document with markup in every name a view puts in a table, and ``number`` (an
    int of 400 digits, NaN, infinity) in every figure."""
    doc = snapshot_doc()
    model, store, bench = MARKUP_NAMES
    running = doc["ollama"]["running"][0]
    running.update(name=model, size_bytes=number, vram_bytes=number, context_length=number)
    doc["stores"][0].update(path=f"/srv/{store}", size_bytes=number, free_bytes=number)
    doc["stores"][0].update(reclaimable_bytes=number, models=number)
    doc["benchmarks"][0].update(model=bench, benchmark=bench)
    doc["benchmarks"][0]["latest"].update(gen_tps=number, ttft_ms=number)
    doc["benchmarks"][0]["history"][0]["gen_tps"] = number
    system = doc["system"]
    system.update(cpu_percent=number, temperatures_c={"cpu": number})
    system["memory"].update(percent=number, used_bytes=number, total_bytes=number)
    system["swap"].update(used_bytes=number, total_bytes=number)
    system["power"]["battery_percent"] = number
    doc["drift"].update(declared=number, present=number)
    doc["drift"]["pending"]["total"] = number
    return doc
