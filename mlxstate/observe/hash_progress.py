"""Progress of the one slow read of observing: hashing plain app files to find duplicates.

Kept apart from ``duplicates`` (and free of heavy imports) so that the CLI entry point can
install a reporter for every command without slowing ``mlx --version``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Protocol

__all__ = ["PROGRESS_MIN_BYTES", "HashProgress", "current", "reporting"]

# sha256 runs at roughly 0.5-2 GB/s: below this many bytes hashing takes about a second at
# most, and a progress display would only flicker.
PROGRESS_MIN_BYTES = 512 * 1024 * 1024


class HashProgress(Protocol):
    """Told about a hashing run expected to be slow (more than PROGRESS_MIN_BYTES)."""

    def start(self, total_bytes: int, paths: Sequence[Path]) -> None: ...

    def advance(self, nbytes: int) -> None:
        """Called from worker threads, once per chunk read."""

    def finish(self) -> None: ...


# A context variable rather than a parameter: observe() is reached through plan, apply and
# status, and only the CLI entry point knows whether stderr is a terminal or -q was given.
_REPORTER: ContextVar[HashProgress | None] = ContextVar("mlx_hash_progress", default=None)


@contextmanager
def reporting(reporter: HashProgress | None) -> Iterator[None]:
    """Report slow hashing done inside the block to ``reporter`` (None: stay silent)."""
    token = _REPORTER.set(reporter)
    try:
        yield
    finally:
        _REPORTER.reset(token)


def current(total_bytes: int) -> HashProgress | None:
    """The reporter to tell about hashing ``total_bytes``, if that is slow enough to show."""
    return _REPORTER.get() if total_bytes > PROGRESS_MIN_BYTES else None
