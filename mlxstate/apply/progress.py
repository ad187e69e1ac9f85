"""Progress display for apply: rich bars on stderr, fed by Ollama's NDJSON stream and by
huggingface_hub's ``tqdm_class`` hook. Without a TTY it prints one line per action instead."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Display", "hf_tqdm_class"]


class Display:
    """One progress bar per action (bytes, speed, ETA)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._progress: Any = None
        self._lock = threading.Lock()

    def __enter__(self) -> Display:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def log(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False)
        else:
            sys.stderr.write(text + "\n")

    def task(self, description: str) -> Callable[[int, int | None], None]:
        """A bar; the returned function sets (completed, total) bytes."""
        if self._progress is None:
            return lambda completed, total: None
        task_id = self._progress.add_task(description, total=None)

        def update(completed: int, total: int | None) -> None:
            with self._lock:
                self._progress.update(task_id, completed=completed, total=total)

        return update


def hf_tqdm_class(update: Callable[[int, int | None], None]) -> type[Any]:
    """A ``tqdm_class`` for ``snapshot_download`` that reports byte progress to ``update``.

    huggingface_hub creates its byte bars with ``unit="B"`` and feeds them with ``update``;
    we subclass its tqdm (which accepts the ``name`` argument it passes), keep every bar
    silent, and add up the bytes ourselves.
    """
    from huggingface_hub.utils.tqdm import tqdm as hf_tqdm

    state = {"done": 0, "total": 0}
    lock = threading.Lock()

    class MlxTqdm(hf_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            # snapshot_download keeps two byte bars: bytes received ("transfer") and bytes
            # written to disk; the second is the download's progress. Count only it.
            name, desc = str(kwargs.get("name") or ""), str(kwargs.get("desc") or "")
            self._mlx_bytes = kwargs.get("unit") == "B" and (
                name == "huggingface_hub.snapshot_download" or desc.startswith("Reconstruct")
            )
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]

        def __setattr__(self, name: str, value: Any) -> None:
            if name == "total" and getattr(self, "_mlx_bytes", False) and value:
                with lock:
                    state["total"] = max(state["total"], int(value))
            super().__setattr__(name, value)

        def update(self, n: float | None = 1) -> bool | None:
            if self._mlx_bytes and n:
                with lock:
                    state["done"] += int(n)
                    update(state["done"], state["total"] or None)
            return None

    return MlxTqdm
