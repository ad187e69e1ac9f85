"""Small text helpers for messages users read."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from typing import Any

__all__ = [
    "describe",
    "human_bytes",
    "iso_time",
    "printable",
    "short_path",
    "short_paths_in",
]


def printable(text: str) -> str:
    """``text`` safe for one terminal line: control characters and lone surrogates escaped."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(ch)
        else:
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
    return "".join(out)


def describe(value: Any) -> str:
    """A value as a user would name it in YAML terms: ``'x'``, ``12``, ``true``, ``a list``."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple | set):
        return "a list"
    if isinstance(value, date):
        return f"a date ({value.isoformat()})"
    if not isinstance(value, str | int | float):
        return f"a {type(value).__name__} value"
    text = printable(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def human_bytes(n: int | None) -> str:
    """Decimal units, like Ollama and the Hub show sizes: 4.7 GB."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover - the loop always returns


def _home() -> str | None:
    home = os.path.expanduser("~").rstrip("/")
    return home or None  # HOME=/ would turn every absolute path into "~/..."


def short_path(path: str) -> str:
    """``~/x`` for a path under the home folder, as shells print it; other paths unchanged.

    The one place human output shortens paths (status tables, plan lines, warnings); JSON
    documents keep absolute paths.
    """
    home = _home()
    if home is None or not path.startswith(home):
        return path
    rest = path[len(home) :]
    return "~" + rest if rest == "" or rest.startswith("/") else path


def short_paths_in(text: str) -> str:
    """``text`` (a message) with every absolute path under the home folder as ``~/...``."""
    home = _home()
    if home is None or home not in text:
        return text
    # Only where a path starts (line start, space, quote, bracket) and only whole components:
    # /home/me2 is not under /home/me.
    pattern = r"(?<![^\s'\"(\[=])" + re.escape(home) + r"(?=/|$|[\s'\")\],:;])"
    return re.sub(pattern, "~", text)


def iso_time(ts: float | None) -> str | None:
    """POSIX seconds as ISO 8601 UTC with a ``Z`` (``2026-11-30T14:47:32Z``); None for none."""
    if not ts:
        return None
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
