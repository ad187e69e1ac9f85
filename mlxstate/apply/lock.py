"""One apply at a time per state dir: an ``fcntl`` lock on ``<state_dir>/apply.lock``.

The kernel releases the lock when its holder dies (even by SIGKILL), so a crashed apply
never blocks the next one; the file keeps the holder's pid, host and start time, which we
show to a waiting apply and use to warn when we take over after a crash.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from mlxstate.apply import failpoints
from mlxstate.errors import LockHeld, MlxError

__all__ = ["LOCK_NAME", "apply_lock"]

LOCK_NAME = "apply.lock"


def _holder_text(raw: str) -> str:
    try:
        info = json.loads(raw)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(info["started"])))
        return f"pid {info['pid']} on {info['host']}, started {started}"
    except (ValueError, KeyError, TypeError):
        return "another mlx apply"


def _read_holder(fd: int) -> str:
    """The holder's details; it writes them right after taking the lock, so an empty file
    means "just taken": read again for up to a second before giving up on naming it."""
    until = time.monotonic() + 1.0
    while True:
        raw = os.pread(fd, 4096, 0).decode(errors="replace")
        with contextlib.suppress(ValueError):
            json.loads(raw)
            return raw
        if time.monotonic() >= until:
            return raw
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def apply_lock(
    state_dir: Path, timeout: float = 0.0, warn: list[str] | None = None
) -> Iterator[None]:
    """Hold the apply lock; wait up to ``timeout`` seconds, then raise :class:`LockHeld`."""
    from mlxstate.registry import ensure_state_dir

    ensure_state_dir(state_dir)
    path = state_dir / LOCK_NAME
    try:
        # O_NOFOLLOW: the lock file is mlx's own; a symlink planted there is not followed.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise MlxError(
            f"cannot open the apply lock {path}: {exc.strerror or exc}",
            hint="it must be a file mlx can write; move whatever is there away",
        ) from None
    try:
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raw = _read_holder(fd)
                    raise LockHeld(
                        f"another mlx apply is running ({_holder_text(raw)}); lock: {path}",
                        hint="wait for it, or give a longer --lock-timeout (e.g. 10m)",
                    ) from None
                time.sleep(0.1)
        previous = os.pread(fd, 4096, 0).decode(errors="replace")
        _note_takeover(previous, warn)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        failpoints.hit("lock.taken")
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # an empty file: nobody holds it
    finally:
        os.close(fd)  # closing releases the flock


def _note_takeover(previous: str, warn: list[str] | None) -> None:
    """The file still names a holder although we got the lock: that apply died."""
    try:
        info = json.loads(previous)
        pid, host = int(info["pid"]), str(info["host"])
    except (ValueError, KeyError, TypeError):
        return
    if host == socket.gethostname() and pid != os.getpid() and not _alive(pid) and warn is not None:
        warn.append(
            f"took over the lock of an apply that did not finish ({_holder_text(previous)})"
        )
