"""Shared by the tests of ``mlx watch``: the agent in process with a scripted clock, and
``mlx watch --json`` as a subprocess whose event stream is read with a hang guard."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlxstate.watch.loop import Event

__all__ = ["EMPTY", "HANG_GUARD", "Script", "Watch", "atomic_save", "kinds", "sha"]

HANG_GUARD = 60.0  # seconds; a guard against a hang, never an assertion on speed
EMPTY = "version: 1\n"


def atomic_save(path: Path, text: str) -> None:
    """What editors do: write a temporary file next to it, then rename it over."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class Script:
    """A fake clock and a ``wait`` that replays file events; stops when the script ends."""

    def __init__(
        self,
        steps: list[tuple[float, bool, str | None]],
        hooks: dict[int, Callable[[], None]] | None = None,
    ) -> None:
        self.now = 1000.0
        self.steps = steps  # (seconds that pass, a file event?, new content to write first)
        self.hooks = hooks or {}  # step index -> what happens behind mlx's back first
        self.polls = 0
        self.waits = 0

    def clock(self) -> float:
        return self.now

    def wait(self, _timeout: float) -> bool:
        hook = self.hooks.get(self.waits)
        self.waits += 1
        if hook is not None:
            hook()
        seconds, event, text = self.steps.pop(0)
        if text is not None:
            atomic_save(Path("mlx.yaml"), text)
        self.now += seconds
        return event

    def done(self) -> bool:
        """False until the loop has handled what the last wait returned."""
        if self.steps:
            return False
        self.polls += 1
        return self.polls > 1


def kinds(events: list[Event]) -> list[str]:
    return [e.event for e in events if e.event != "log"]


class Watch:
    """``mlx watch --json`` running; events read on a thread, taken with a hang guard."""

    def __init__(self, spec: Path | None, *args: str) -> None:
        # ``spec`` None: exactly ``args`` (a test of how the file is found, say).
        where = ["-f", str(spec)] if spec is not None else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mlxstate", "watch", "--json", *where, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def until(self, event: str) -> dict[str, Any]:
        """The next event of this kind (the ones before it are kept in ``seen``)."""
        while True:
            doc = self.lines.get(timeout=HANG_GUARD)
            assert doc is not None, f"mlx watch ended before {event!r}: {self.seen}"
            assert set(doc) >= {"time", "event", "message"}
            self.seen.append(doc)
            if doc["event"] == event:
                return doc

    def since(self, mark: int, event: str) -> list[dict[str, Any]]:
        return [d for d in self.seen[mark:] if d["event"] == event]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=HANG_GUARD)
