"""Run a full-screen command in a real terminal: a detached tmux session on a private
socket (no user config, no status line), read back with ``capture-pane``."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

__all__ = ["MLX", "TMUX", "Pane", "tmux_run"]

TMUX = shutil.which("tmux") or "/usr/bin/tmux"
MLX = str(Path(sys.executable).with_name("mlx"))  # the venv's console script
_POLL = 0.05
# Set by the terminal, not the test: a COLUMNS/LINES inherited from pytest would make rich
# draw for that size instead of the pane's.
_TERMINAL = ("TERM", "TMUX", "TMUX_PANE", "COLUMNS", "LINES")


class Pane:
    def __init__(self, socket: str, target: str, done: Path) -> None:
        self.socket, self.target, self.done = socket, target, done

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            [TMUX, "-L", self.socket, *args], capture_output=True, text=True, check=True
        ).stdout

    def text(self, escapes: bool = False) -> str:
        """The visible screen, one line per row (``escapes``: with its colours as SGR)."""
        return self.tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", self.target)

    def lines(self) -> list[str]:
        return self.text().split("\n")

    def wait_for(self, *needles: str, timeout: float = 20.0, escapes: bool = False) -> str:
        """The screen once it shows every one of ``needles``; fails with the last screen."""
        return self.wait_until(lambda t: all(n in t for n in needles), timeout, escapes, needles)

    def wait_until(
        self,
        ok: Callable[[str], bool],
        timeout: float = 20.0,
        escapes: bool = False,
        what: object = "the condition",
    ) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.text(escapes)
            if ok(text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"waited {timeout}s for {what!r}; the screen:\n{text}")
            time.sleep(_POLL)

    def send(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.target, *keys)

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", self.target, "-x", str(width), "-y", str(height))

    def exit_code(self, timeout: float = 20.0) -> int:
        """The command's exit status, once it has ended."""
        deadline = time.monotonic() + timeout
        while not self.done.exists():
            if time.monotonic() > deadline:
                raise AssertionError(f"still running after {timeout}s; the screen:\n{self.text()}")
            time.sleep(_POLL)
        return int(self.done.read_text().strip())


@contextlib.contextmanager
def tmux_run(
    argv: Sequence[str],
    *,
    width: int,
    height: int,
    env: Mapping[str, str],
    folder: Path,
) -> Iterator[Pane]:
    """``argv`` running in a ``width`` x ``height`` terminal with exactly ``env`` (plus the
    TERM tmux sets), in ``folder``. The pane stays open after the command ends, so its
    last screen can still be read; the tmux server is killed on the way out."""
    socket = f"mlx-test-{uuid.uuid4().hex[:12]}"
    done = folder / f"{socket}.exit"
    exports = "".join(
        f"export {k}={shlex.quote(v)}\n" for k, v in env.items() if k not in _TERMINAL
    )
    script = folder / f"{socket}.sh"
    script.write_text(
        # Ctrl-C goes to the whole foreground group: the script outlives it to record
        # the command's exit status (a trap with a command is not inherited).
        f"trap 'true' INT\nunset COLUMNS LINES\ncd {shlex.quote(str(folder))}\n{exports}"
        f"{shlex.join(argv)}\n"
        f"echo $? > {shlex.quote(str(done))}.tmp && mv {shlex.quote(str(done))}.tmp "
        f"{shlex.quote(str(done))}\nexec sleep 600\n"
    )
    conf = folder / f"{socket}.conf"
    conf.write_text("set -g status off\nset -g escape-time 0\n")
    base = [TMUX, "-L", socket, "-f", str(conf)]
    tail = [str(script)]
    subprocess.run(
        [*base, "new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), "sh", *tail],
        check=True,
        env={k: v for k, v in os.environ.items() if k not in _TERMINAL},
    )
    try:
        yield Pane(socket, "t", done)
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, check=False)
