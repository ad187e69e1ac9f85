"""The one way the dashboard runs other programs (``pmset``, ``macmon``): a small runner
with a timeout, injectable so tests hand in recorded outputs. Never ``sudo``."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Sequence

__all__ = ["Runner", "Which", "run", "which"]

# argv, timeout in seconds -> stdout, or None when it could not run, failed or timed out.
Runner = Callable[[Sequence[str], float], str | None]
Which = Callable[[str], str | None]  # a program name -> its path on PATH, or None


def run(argv: Sequence[str], timeout: float) -> str | None:
    try:
        done = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def which(name: str) -> str | None:
    return shutil.which(name)
