"""Workspaces: who owns what mlx installs (docs/apply.md, "Ownership").

A workspace is one ``mlx.yaml``. Its name is ``settings.workspace`` when set, else derived
from the file's real path, so the same file reached through a dotfiles symlink is the same
workspace, and two files in different folders never share one by accident.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

__all__ = ["LEGACY", "WORKSPACE_PATTERN", "derive_workspace", "valid_workspace"]

WORKSPACE_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_WORKSPACE_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# The owner of rows recorded before registries knew workspaces: nobody can prune them until
# a file that declares the model claims it (or `mlx import` does).
LEGACY = ""


def valid_workspace(name: str) -> bool:
    return _WORKSPACE_RE.fullmatch(name) is not None


def derive_workspace(spec_path: Path) -> str:
    """``<folder-or-file-stem>-<8 hex of the real path>``, e.g. ``dotfiles-1a2b3c4d``."""
    real = os.path.realpath(spec_path)
    stem = Path(real).stem
    label = Path(real).parent.name if stem in ("mlx", "") else stem
    slug = re.sub(r"[^a-z0-9._-]+", "-", label.lower()).strip("-._")[:40] or "mlx"
    digest = hashlib.sha256(os.fsencode(real)).hexdigest()[:8]
    return f"{slug}-{digest}"
