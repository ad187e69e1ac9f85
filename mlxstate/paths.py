"""Path expansion shared by the spec loader and settings (no heavy imports)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["expand_path_text"]


def expand_path_text(value: object, base_dir: Path | None) -> Path:
    """``~`` and ``$VARS`` expanded; relative paths are relative to ``base_dir`` (or cwd)."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a path, got {value!r}")
    if "\x00" in value:
        raise ValueError("path contains a NUL character")
    path = Path(os.path.expandvars(os.path.expanduser(value.strip())))
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return Path(os.path.normpath(path))
