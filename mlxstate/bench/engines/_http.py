"""Small pieces the HTTP engines share: reading JSON answers and counters defensively."""

from __future__ import annotations

from typing import Any

from mlxstate._httpx import httpx
from mlxstate.text import printable

__all__ = ["count", "json_object", "said"]


def count(value: Any) -> int:
    """A positive integer counter, else 0 (servers leave zero counters out)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


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
