"""Dedup effect: replace a duplicate with a hardlink, clone or symlink of the kept copy.

Never deletes first. Right before replacing: re-stat both files (device, inode, size,
mtime_ns as the plan saw them), hash both (streaming sha256, in parallel), and only if both
match the digest: make the link under a temp name in the duplicate's folder and
``os.replace`` it over the duplicate — readers see the old file or the new link, never
nothing. A file whose bytes do not match its sha256 name is reported as corrupt and left.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlxstate.errors import ActionError
from mlxstate.observe.duplicates import sha256_file
from mlxstate.plan.actions import Action

__all__ = ["CloneUnsupported", "dedup", "forget_hashes"]

FICLONE = 0x40049409  # Linux ioctl: reflink the whole file (btrfs, xfs; not ext4)


class CloneUnsupported(Exception):
    pass


# The kept copy is often verified for several duplicates in one apply: hash each file state
# (device, inode, size, mtime_ns) once per process.
_HASHED: dict[tuple[int, int, int, int], str] = {}


def forget_hashes() -> None:
    _HASHED.clear()


def _hash_once(path: Path) -> str:
    key = _facts(path)
    if key not in _HASHED:
        _HASHED[key] = sha256_file(path)
    return _HASHED[key]


def _facts(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _check_unchanged(path: Path, planned: list[int]) -> None:
    try:
        now = _facts(path)
    except FileNotFoundError:
        raise ActionError(f"{path} is gone since the plan; nothing to deduplicate") from None
    if list(now) != list(planned):
        raise ActionError(f"{path} changed since the plan; left alone")


def dedup(action: Action) -> str:
    """Carry out one ``dedup.link``; returns what was done (raises ActionError otherwise)."""
    dup, keep = Path(action.subject), Path(str(action.param("canonical")))
    digest, how = str(action.param("sha256")), str(action.param("mechanism"))
    if os.path.islink(dup):
        raise ActionError(f"{dup} is a link now; left alone")
    try:
        if _facts(dup)[:2] == _facts(keep)[:2]:
            return "already the same file"
    except FileNotFoundError:
        pass  # reported just below, with which one is gone
    _check_unchanged(dup, list(action.param("dup")))
    _check_unchanged(keep, list(action.param("keep")))
    with ThreadPoolExecutor(max_workers=2) as pool:  # hashing releases the GIL
        got_dup, got_keep = pool.map(_hash_once, (dup, keep))
    if got_keep != digest:
        raise ActionError(
            f"{keep} is corrupt: its bytes do not hash to {digest[:12]}…; nothing linked"
        )
    if got_dup != digest:
        if digest in dup.name:  # a blob named by its sha256 whose bytes do not match it
            raise ActionError(
                f"{dup} is corrupt: its bytes do not hash to its name; nothing linked"
            )
        raise ActionError(f"{dup} differs from {keep} (sha256 {got_dup[:12]}…); nothing linked")
    # Nothing may have changed while we were hashing either.
    _check_unchanged(dup, list(action.param("dup")))
    _check_unchanged(keep, list(action.param("keep")))
    tmp = dup.with_name(f".{dup.name}.mlx-dedup-{uuid.uuid4().hex[:8]}")
    try:
        _make(how, keep, tmp)
    except CloneUnsupported as exc:
        return f"left as is: {exc}"
    try:
        os.replace(tmp, dup)  # never delete first: the duplicate stays until this rename
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ActionError(f"cannot replace {dup}: {exc.strerror or exc}") from None
    return f"now a {how} of {keep}"


def _make(how: str, keep: Path, tmp: Path) -> None:
    if how == "hardlink":
        try:
            os.link(keep, tmp)
        except OSError as exc:
            raise ActionError(f"cannot hardlink {keep}: {exc.strerror or exc}") from None
    elif how == "symlink":
        os.symlink(keep, tmp)
    elif how == "clone":
        _clone(keep, tmp)
    else:
        raise ActionError(f"unknown dedup mechanism {how!r}")


def _clone(src: Path, dst: Path) -> None:
    if sys.platform == "darwin":
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.clonefile(os.fsencode(src), os.fsencode(dst), 0) != 0:
            code = ctypes.get_errno()
            raise CloneUnsupported(f"clonefile failed ({os.strerror(code)})")
        return
    fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with open(src, "rb") as fin:
            fcntl.ioctl(fd_out, FICLONE, fin.fileno())
        os.fchmod(fd_out, os.stat(src).st_mode & 0o7777)
    except OSError as exc:
        os.close(fd_out)
        with contextlib.suppress(OSError):
            os.unlink(dst)
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS):
            raise CloneUnsupported("this filesystem cannot clone (copy-on-write) files") from None
        raise ActionError(f"cannot clone {src}: {exc.strerror or exc}") from None
    os.close(fd_out)
