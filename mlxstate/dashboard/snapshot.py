"""The snapshot file the watch agent keeps in the state folder (docs/dashboard.md): other
views (`mlx menubar`) read it instead of observing again."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["SNAPSHOT_FILE", "read_snapshot", "write_snapshot"]

SNAPSHOT_FILE = "dashboard.json"
MAX_BYTES = 4 << 20  # a snapshot is a few kB; anything this big is not one


def write_snapshot(state_dir: Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` atomically: a reader sees the old snapshot or the new one, never half
    of one (a temporary file in the same folder, then a rename over the old one)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / SNAPSHOT_FILE
    fd, tmp = tempfile.mkstemp(prefix=".dashboard.", suffix=".tmp", dir=state_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            # dumps, not dump: dump encodes piece by piece in Python, dumps in C.
            out.write(json.dumps(doc, separators=(",", ":")))
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read_snapshot(state_dir: Path) -> dict[str, Any] | None:
    """The last snapshot, or None when there is none or it is not one."""
    path = state_dir / SNAPSHOT_FILE
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError:
        return None
    if len(raw) > MAX_BYTES:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format_version") == "1" else None
