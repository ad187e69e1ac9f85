"""Small output helpers shared by commands (no rich import: validate must start fast)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, TextIO

__all__ = ["color_enabled", "emit_json", "paint"]

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
