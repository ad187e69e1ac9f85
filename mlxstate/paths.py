"""Path expansion shared by the spec loader and settings (no heavy imports)."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["expand_path_text"]

# What os.path.expandvars leaves behind: $NAME or ${NAME} of an unset variable.
_VAR_RE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([^}]*)\})")


def expand_path_text(value: object, base_dir: Path | None) -> Path:
    """``~`` and ``$VARS`` expanded; relative paths are relative to ``base_dir`` (or cwd)."""
    if isinstance(value, Path):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        from mlxstate.text import describe

        raise ValueError(f"expected a path, got {describe(value)}")
    if "\x00" in value:
        raise ValueError("path contains a NUL character")
    expanded = os.path.expandvars(os.path.expanduser(value.strip()))
    unset = _VAR_RE.search(expanded)
    if unset:
        raise ValueError(f"{value!r} uses ${unset.group(1) or unset.group(2)}, which is not set")
    path = Path(expanded)
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return Path(os.path.normpath(path))
