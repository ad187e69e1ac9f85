"""File writes that never leave a half-written file where a user or app looks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, then ``os.replace`` it in.

    A crash leaves either the old file or the new one, never a mix. The existing file's
    permission bits are kept unless ``mode`` is given.
    """
    # A symlinked file (mlx.yaml linked from a dotfiles repo) is updated where it lives: the
    # link stays a link and its target gets the new content.
    path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def folds_case(path: Path) -> bool:
    """True when the filesystem holding ``path`` (an existing folder) ignores case in names:
    the same folder is reached with its last name's case swapped."""
    swapped = path.name.swapcase()
    if not path.name or swapped == path.name:
        return False
    try:
        return os.path.samestat(os.stat(path), os.stat(path.with_name(swapped)))
    except OSError:
        return False
