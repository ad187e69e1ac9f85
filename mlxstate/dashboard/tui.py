"""The full-screen `mlx dashboard` (docs/dashboard.md, "Full-screen view").

rich ``Live`` on the alternate screen, redrawn only when something changed: a new sample, a
key, a resize. Keys are read in cbreak mode with ``select`` on the terminal and a wake-up
pipe, so the keyboard never waits for a sample: sampling runs in a worker thread that
wakes the loop when it has a new snapshot. The terminal is restored on every way out
(``q``, Ctrl-C, SIGTERM, SIGHUP, an error).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import termios
import threading
import tty
from collections.abc import Callable, Iterator, Sequence
from datetime import timedelta
from types import FrameType
from typing import Any, Protocol

__all__ = ["DashboardSettings", "run"]

Sample = Callable[[], dict[str, Any]]
PlanText = Callable[[], str]

EXIT_OK = 0
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it


class DashboardSettings(Protocol):
    """What the view needs of mlx.yaml's ``dashboard:`` section (durations as timedelta, as
    the parsed file has them, or in seconds)."""

    @property
    def refresh(self) -> timedelta | float: ...

    @property
    def panels(self) -> Sequence[str]: ...

    @property
    def history(self) -> timedelta | float: ...


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class _Terminated(Exception):
    """SIGTERM or SIGHUP: leave like ``q`` does, terminal restored, with 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.code = 128 + signum


class _Waker:
    """A pipe the loop selects on: the sampler thread and the resize handler write a byte
    to it so the loop redraws at once instead of at the next key."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self.write_fd, False)

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):  # full pipe: a wake-up is pending
            os.write(self.write_fd, b".")

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self.read_fd, 512):
                pass

    def close(self) -> None:
        os.close(self.read_fd)
        os.close(self.write_fd)


class _Sampler(threading.Thread):
    """Calls ``sample`` every ``period`` seconds, or at once when asked (``r``); keeps the
    last snapshot, or the error of the last failed sample."""

    def __init__(self, sample: Sample, period: float, wake: Callable[[], None]) -> None:
        super().__init__(name="dashboard-sampler", daemon=True)
        self._sample, self._period, self._wake = sample, period, wake
        self._asked, self._stopped = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._latest: tuple[dict[str, Any] | None, str | None, int] = (None, None, 0)

    def run(self) -> None:
        while not self._stopped.is_set():
            try:
                snapshot: dict[str, Any] | None = self._sample()
                error = None
            except Exception as exc:  # shown in the header; the last good frame stays
                snapshot, error = None, f"sampling failed: {exc}"
            with self._lock:
                old, _, count = self._latest
                self._latest = (snapshot if snapshot is not None else old, error, count + 1)
            self._wake()
            self._asked.wait(self._period)
            self._asked.clear()

    def latest(self) -> tuple[dict[str, Any] | None, str | None, int]:
        with self._lock:
            return self._latest

    def ask(self) -> None:
        self._asked.set()

    def stop(self) -> None:
        self._stopped.set()
        self._asked.set()


class _PlanFetch(threading.Thread):
    """The plan's text, computed once per ``p`` without blocking the keys."""

    def __init__(self, plan: PlanText, wake: Callable[[], None]) -> None:
        super().__init__(name="dashboard-plan", daemon=True)
        self._plan, self._wake = plan, wake
        self.text: str | None = None

    def run(self) -> None:
        try:
            self.text = self._plan()
        except Exception as exc:
            self.text = f"the plan could not be computed: {exc}"
        self._wake()


@contextlib.contextmanager
def _signals(waker: _Waker) -> Iterator[None]:
    def terminate(signum: int, frame: FrameType | None) -> None:
        raise _Terminated(signum)

    def resized(signum: int, frame: FrameType | None) -> None:
        waker.wake()

    wanted = {signal.SIGTERM: terminate, signal.SIGHUP: terminate, signal.SIGWINCH: resized}
    old = {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _cbreak(fd: int) -> Iterator[None]:
    """Keys arrive one by one, unechoed; Ctrl-C still sends SIGINT."""
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run(
    sample: Sample,
    settings: DashboardSettings,
    *,
    plan: PlanText | None = None,
    stdin: int | None = None,
) -> int:
    """Show the dashboard until ``q`` (0), Ctrl-C (130) or SIGTERM/SIGHUP (143/129).
    ``sample()`` returns a snapshot document; ``plan()`` the text ``p`` shows (else the
    drift counts of the snapshot)."""
    fd = sys.stdin.fileno() if stdin is None else stdin
    waker = _Waker()
    sampler = _Sampler(sample, max(_seconds(settings.refresh), 0.1), waker.wake)
    try:
        with _signals(waker), _cbreak(fd):
            sampler.start()
            return _Loop(fd, waker, sampler, settings, plan).run()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except _Terminated as exc:
        return exc.code
    finally:
        sampler.stop()
        waker.close()


class _Loop:
    def __init__(
        self,
        fd: int,
        waker: _Waker,
        sampler: _Sampler,
        settings: DashboardSettings,
        plan: PlanText | None,
    ) -> None:
        from mlxstate.dashboard.render import Trends

        self.fd, self.waker, self.sampler, self.plan = fd, waker, sampler, plan
        self.panels = list(settings.panels)
        self.trends = Trends(timedelta(seconds=_seconds(settings.history)))
        self.seen = 0  # samples taken into the trends
        self.plan_fetch: _PlanFetch | None = None  # set while the plan is shown
        self.last_fetch: _PlanFetch | None = None  # the latest one started, maybe still running

    def run(self) -> int:
        from rich.console import Console
        from rich.live import Live

        # NO_COLOR in the environment turns colours off. COLUMNS and LINES are ignored: a
        # full screen is the terminal's size, and an exported LINES would never follow a resize.
        environ = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        console = Console(_environ=environ)
        with Live(console=console, screen=True, auto_refresh=False, transient=True) as live:
            while True:
                live.update(self.view(console), refresh=True)
                ready, _, _ = select.select([self.fd, self.waker.read_fd], [], [])
                if self.waker.read_fd in ready:
                    self.waker.drain()
                if self.fd in ready and not self.keys(os.read(self.fd, 64)):
                    return EXIT_OK

    def keys(self, data: bytes) -> bool:
        """Act on the keys read; False to quit."""
        if not data:
            return False  # the terminal went away
        if self.plan_fetch is not None:
            self.plan_fetch = None  # any key leaves the plan
            return True
        for key in data.decode(errors="replace").lower():
            if key == "q":
                return False
            if key == "r":
                self.sampler.ask()
            elif key == "p":
                self.show_plan()
                return True
        return True

    def show_plan(self) -> None:
        running = self.last_fetch
        if running is not None and running.is_alive():
            # `p`, a key, `p`... shows the plan still being computed: a new `mlx plan`
            # process per key would pile up plans on a busy machine.
            self.plan_fetch = running
            return
        fetch = _PlanFetch(self.plan or (lambda: ""), self.waker.wake)
        self.plan_fetch = fetch
        if self.plan is None:
            fetch.text = ""  # nothing to compute: the drift counts are the whole view
        else:
            self.last_fetch = fetch
            fetch.start()

    def view(self, console: Any) -> Any:
        from mlxstate.dashboard.render import plan_view, screen

        snapshot, error, count = self.sampler.latest()
        if count != self.seen and snapshot is not None:
            self.seen = count
            self.trends.add(snapshot)
        if self.plan_fetch is not None:
            return plan_view(snapshot, self.plan_fetch.text)
        width, height = console.size
        return screen(snapshot, self.panels, self.trends, width=width, height=height, error=error)
