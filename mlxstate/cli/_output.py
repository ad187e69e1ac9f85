"""Small output helpers shared by commands (no rich import: validate must start fast)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

from mlxstate.text import human_bytes

__all__ = ["color_enabled", "emit_json", "human_age", "human_bytes", "paint"]

_CODES = {"red": "31", "yellow": "33", "green": "32", "bold": "1", "dim": "2"}


def color_enabled(stream: TextIO, no_color: bool = False) -> bool:
    """Colour only on a TTY, never with ``--no-color`` or ``NO_COLOR`` (no-color.org)."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, style: str, enabled: bool) -> str:
    return f"\x1b[{_CODES[style]}m{text}\x1b[0m" if enabled else text


def emit_json(document: Any, stream: TextIO | None = None) -> None:
    """One JSON document on stdout, nothing else there (SPEC §5)."""
    out = stream or sys.stdout
    out.write(json.dumps(document, indent=2, sort_keys=False) + "\n")


def human_age(iso_time: str | None, now: float | None = None) -> str:
    """``3 days ago`` from an ISO-8601 UTC time; ``-`` when unknown."""
    if not iso_time:
        return "-"
    import time
    from datetime import datetime

    then = datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()
    seconds = max(0.0, (now if now is not None else time.time()) - then)
    for size, unit in (
        (86400 * 365, "year"),
        (86400 * 30, "month"),
        (86400, "day"),
        (3600, "hour"),
        (60, "minute"),
    ):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"
