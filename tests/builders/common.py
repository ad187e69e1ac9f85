"""Small helpers shared by the store builders: hashing and file ages."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

HOUR = 3600.0


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file with these bytes: ``sha1(b"blob <n>\\0" + data)``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def set_mtime(path: Path, mtime: float, *, follow_symlinks: bool = True) -> None:
    """Set both atime and mtime of ``path`` (of the link itself if ``follow_symlinks=False``)."""
    os.utime(path, (mtime, mtime), follow_symlinks=follow_symlinks)


def make_old(*paths: Path, seconds: float = 2 * HOUR, follow_symlinks: bool = True) -> float:
    """Backdate ``paths`` by ``seconds`` (default two hours: past the stores' one-hour rules).

    Returns the timestamp that was set.
    """
    when = time.time() - seconds
    for path in paths:
        set_mtime(path, when, follow_symlinks=follow_symlinks)
    return when


def make_tree_old(root: Path, seconds: float = 2 * HOUR) -> float:
    """Backdate every file and link below ``root`` (links themselves, not their targets)."""
    when = time.time() - seconds
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            set_mtime(Path(dirpath, name), when, follow_symlinks=False)
    return when
