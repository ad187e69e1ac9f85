"""Progress display for apply: rich bars on stderr, fed by Ollama's NDJSON stream and by
huggingface_hub's ``tqdm_class`` hook. Without a TTY it prints one line per action instead."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Display", "HfProgress", "speed_column"]


def speed_column() -> Any:
    """rich's transfer speed, except that a finished bar shows its average speed (or
    nothing) where rich shows "?" (it had too few samples to estimate one)."""
    from rich.progress import Task, TransferSpeedColumn
    from rich.text import Text

    class _Speed(TransferSpeedColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            if speed is None and task.finished:
                elapsed = task.finished_time or task.elapsed
                if not elapsed or not task.completed:
                    return Text("")
                speed = task.completed / elapsed
            return super().render(task) if speed is None else _speed_text(speed)

    return _Speed()


def _speed_text(speed: float) -> Any:
    from rich import filesize
    from rich.text import Text

    return Text(f"{filesize.decimal(int(speed))}/s", style="progress.data.speed")


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
            )

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(),
                speed_column(),
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


class HfProgress:
    """Byte progress of one ``snapshot_download``, reported to ``update(completed, total)``.

    ``tqdm_class`` goes to the library. Its byte bar learns its total file by file, as each
    download starts: shown as is, a small file finished first reads "2/2 bytes" before the
    real total. So the total shown is ``expected()`` — what the download will fetch, read
    from the file list the library caches before its bars start — or none at all until
    ``finish()``; never a running sum.
    """

    def __init__(
        self, update: Callable[[int, int | None], None], expected: Callable[[], int | None]
    ) -> None:
        self._update, self._expected = update, expected
        self._lock = threading.Lock()
        self._done = 0
        self._total: int | None = None
        self._asked = False
        self.tqdm_class = self._make_class()

    def finish(self) -> None:
        """The download is over: the bar ends at what was fetched."""
        with self._lock:
            self._update(self._done, self._done)

    def _started(self) -> None:
        with self._lock:
            if self._asked:
                return
            self._asked = True
        try:
            total = self._expected()
        except Exception:  # the size is only for display
            total = None
        with self._lock:
            self._total = total
            if total is not None:
                self._update(self._done, max(total, self._done))

    def _add(self, n: int) -> None:
        with self._lock:
            self._done += n
            total = None if self._total is None else max(self._total, self._done)
            self._update(self._done, total)

    def _make_class(self) -> type[Any]:
        from huggingface_hub.utils.tqdm import tqdm as hf_tqdm

        owner = self

        class MlxTqdm(hf_tqdm):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                # snapshot_download keeps two byte bars: bytes received ("transfer") and
                # bytes written to disk; the second is the download's progress. Count only
                # it (its "Fetching N files" bar counts files: never a byte total).
                name, desc = str(kwargs.get("name") or ""), str(kwargs.get("desc") or "")
                self._mlx_bytes = kwargs.get("unit") == "B" and (
                    name == "huggingface_hub.snapshot_download" or desc.startswith("Reconstruct")
                )
                kwargs["disable"] = True
                super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
                if self._mlx_bytes:
                    owner._started()

            def update(self, n: float | None = 1) -> bool | None:
                if self._mlx_bytes and n:
                    owner._add(int(n))
                return None

        return MlxTqdm
