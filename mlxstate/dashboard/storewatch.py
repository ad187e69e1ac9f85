"""Scan the stores again when they change: watchfiles (FSEvents, inotify) on the store
folders, on a thread, calling the sampler's ``stores_changed`` hook after each batch."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["StoreWatcher"]

DEBOUNCE_MS = 1000  # a download writes for minutes: one rescan per second at most


class StoreWatcher:
    def __init__(self, roots: Sequence[Path], changed: Callable[[], None]) -> None:
        self.roots = [r for r in roots if r.is_dir()]
        self.changed = changed
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlx-dash-stores", daemon=True)

    def start(self) -> StoreWatcher:
        if self.roots:
            self._thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        from watchfiles import watch

        try:
            for _batch in watch(
                *self.roots, stop_event=self.stop, debounce=DEBOUNCE_MS, raise_interrupt=False
            ):
                self.changed()
        except (OSError, RuntimeError):
            return  # no watch (too many folders for inotify): the periodic scan remains
