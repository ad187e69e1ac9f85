"""Read the bytes of an mlx.yaml safely: bounded in size, never blocking on a FIFO.

A real mlx.yaml is a few kilobytes. ``-f`` may still name anything: ``/dev/zero`` (endless),
a FIFO nobody writes to (``open`` would block forever), a directory, a symlink loop. Each
of those ends in one clear :class:`MlxError` instead of a hang, a MemoryError or a traceback.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from mlxstate.errors import MlxError

__all__ = ["MAX_SPEC_BYTES", "read_spec_bytes", "too_large"]

# 1 MiB is hundreds of times a large real file; the YAML loader needs ~5 s per MiB, so the
# cap also bounds how long `mlx validate` can take.
MAX_SPEC_BYTES = 1 << 20
_CHUNK = 64 * 1024


def too_large(shown: str, size: int | None) -> MlxError:
    amount = f"{size} bytes" if size is not None else f"more than {MAX_SPEC_BYTES} bytes"
    return MlxError(
        f"{shown}: mlx.yaml is {amount}; the limit is 1 MiB",
        hint="point -f at your mlx.yaml (a text file of a few kilobytes)",
    )


def read_spec_bytes(path: Path, shown: str) -> bytes:
    """The bytes of ``path``, or :class:`MlxError` saying in one line why not."""
    try:
        # O_NONBLOCK: opening a FIFO with no writer returns at once instead of blocking.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _unreadable(shown, exc) from None
    try:
        return _read_fd(fd, shown)
    except OSError as exc:
        raise _unreadable(shown, exc) from None
    finally:
        os.close(fd)


def _read_fd(fd: int, shown: str) -> bytes:
    info = os.fstat(fd)
    if stat.S_ISDIR(info.st_mode):
        raise MlxError(f"{shown} is a directory, not an mlx.yaml file")
    if stat.S_ISREG(info.st_mode) and info.st_size > MAX_SPEC_BYTES:
        raise too_large(shown, info.st_size)  # refused before reading a byte
    os.set_blocking(fd, True)  # a FIFO with a writer (`-f <(...)`): wait for its data
    chunks: list[bytes] = []
    total = 0
    # At most cap + 1 bytes, whatever the file claims: /dev/zero never ends, and a regular
    # file may grow between fstat and read.
    while total <= MAX_SPEC_BYTES:
        chunk = os.read(fd, min(_CHUNK, MAX_SPEC_BYTES + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > MAX_SPEC_BYTES:
        raise too_large(shown, None)
    return b"".join(chunks)


def _unreadable(shown: str, exc: OSError) -> MlxError:
    if exc.errno == errno.EISDIR:
        return MlxError(f"{shown} is a directory, not an mlx.yaml file")
    if exc.errno == errno.ELOOP:
        return MlxError(f"cannot read {shown}: it is a symlink loop (a link that points to itself)")
    return MlxError(f"cannot read {shown}: {exc.strerror or exc}")
