"""Fail points for the crash-safety tests: ``MLX_FAILPOINT=<name>[:<n>]`` kills the process
with SIGKILL the n-th time (default first) execution reaches ``hit(name)``.

Names: ``journal.started``, ``effect.done``, ``registry.recorded``, ``journal.done``,
``ollama.delete.manifest``, ``ollama.delete.blob``, ``hf.download.started``, ``lock.taken``.
Unset (always, outside the test harness) it costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["hit"]

_counts: dict[str, int] = {}


def hit(name: str) -> None:
    spec = os.environ.get("MLX_FAILPOINT")
    if not spec:
        return
    wanted, _, nth = spec.partition(":")
    if wanted != name:
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
