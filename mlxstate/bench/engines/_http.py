"""Small pieces the HTTP engines share: reading JSON answers and counters defensively."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from mlxstate._httpx import httpx
from mlxstate._ollama.counters import count
from mlxstate.bench.engines.base import EngineError
from mlxstate.text import printable

__all__ = ["bounded", "count", "json_object", "positive", "said"]

# Same bound as the counters (mlxstate/_ollama/counters.py): rates beyond it are absurd.
_MAX_COUNT = 2**53


def positive(value: Any) -> float | None:
    """A positive finite rate, else None (JSON from Python servers may say Infinity/NaN)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= _MAX_COUNT:
        rate = float(value)
        return rate if math.isfinite(rate) else None
    return None


def bounded(lines: Iterator[str], max_tokens: int, who: str) -> Iterator[str]:
    """The stream's lines, at most a few per allowed token: a server that ignores the token
    limit and streams forever (each chunk within the read timeout) must not hang the run."""
    limit = 4 * max_tokens + 1024
    for number, line in enumerate(lines, 1):
        if number > limit:
            raise EngineError(f"{who} kept streaming past {max_tokens} tokens; stopped reading")
        yield line


def json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        doc = response.json()
    except (ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def said(response: httpx.Response) -> str:
    """The server's error message, one printable line: ``{"error": "..."}`` (Ollama) or
    ``{"error": {"message": "..."}}`` (OpenAI), else the start of the body."""
    error = json_object(response).get("error")
    if isinstance(error, dict):
        error = error.get("message")
    return printable(str(error))[:200] if error else printable(response.text[:120]) or "no details"
