"""Small output helpers shared by commands (no rich import: validate must start fast)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mlxstate.text import human_bytes, printable, short_path, short_paths_in

if TYPE_CHECKING:
    from mlxstate.hosts import Host
    from mlxstate.plan.actions import Plan

__all__ = [
    "HashingNotice",
    "color_enabled",
    "emit_json",
    "human_age",
    "human_bytes",
    "paint",
    "show_plan",
    "warn",
]

_CODES = {"red": "31", "yellow": "33", "green": "32", "bold": "1", "dim": "2"}


def color_enabled(stream: TextIO, no_color: bool = False) -> bool:
    """Colour only on a TTY, never with ``--no-color`` or ``NO_COLOR`` (no-color.org)."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def paint(text: str, style: str, enabled: bool) -> str:
    return f"\x1b[{_CODES[style]}m{text}\x1b[0m" if enabled else text


def emit_json(document: Any, stream: TextIO | None = None) -> None:
    """One JSON document on stdout, nothing else there (docs/commands.md, "Output")."""
    out = stream or sys.stdout
    out.write(json.dumps(document, indent=2, sort_keys=False) + "\n")


def human_age(iso_time: str | None, now: float | None = None) -> str:
    """``3 days ago`` from an ISO-8601 UTC time; ``-`` when unknown."""
    if not iso_time:
        return "-"
    import time
    from datetime import datetime

    then = datetime.fromisoformat(iso_time.replace("Z", "+00:00")).timestamp()
    seconds = max(0.0, (now if now is not None else time.time()) - then)
    for size, unit in (
        (86400 * 365, "year"),
        (86400 * 30, "month"),
        (86400, "day"),
        (3600, "hour"),
        (60, "minute"),
    ):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def warn(text: str, stream: TextIO | None = None) -> None:
    """``warning: TEXT`` on stderr: warnings are logs, results stay alone on stdout."""
    out = stream or sys.stderr
    color = color_enabled(out)
    out.write(f"{paint('warning:', 'yellow', color)} {printable(short_paths_in(text))}\n")


def show_plan(
    plan: Plan, no_color: bool = False, workspace: str | None = None, host: Host | None = None
) -> None:
    """The plan on stdout, then its warnings on stderr (``--json`` keeps them in the doc)."""
    from mlxstate.plan.render import host_line, render_text

    sys.stdout.write(render_text(plan, color=color_enabled(sys.stdout, no_color)))
    if workspace and plan.has_changes:
        # printable: a saved plan (``mlx show``) is untrusted text bound for a terminal.
        sys.stdout.write(f"Workspace: {printable(workspace)} (owner of what this apply installs)\n")
    if host is not None and (host.given or plan.skipped):
        sys.stdout.write(printable(host_line(host)) + "\n")
    sys.stdout.flush()  # keep the order on a terminal, where both streams meet
    for warning in plan.warnings:
        warn(warning)


class HashingNotice:
    """Progress of slow hashing on stderr: a bar on a terminal, else one line."""

    def __init__(self, stream: TextIO | None = None, purpose: str = "to find duplicates") -> None:
        self.stream = stream or sys.stderr
        self.purpose = purpose
        self._progress: Any = None
        self._task: Any = None

    def start(self, total_bytes: int, paths: Sequence[Path]) -> None:
        what = short_path(str(paths[0])) if len(paths) == 1 else f"{len(paths)} files"
        label = f"hashing {printable(what)} ({human_bytes(total_bytes)}) {self.purpose}"
        isatty = getattr(self.stream, "isatty", None)
        if not (isatty and isatty()):
            self.stream.write(label + "…\n")
            self.stream.flush()
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        console = Console(file=self.stream, no_color=not color_enabled(self.stream))
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,  # the bar goes away: the command's output follows
        )
        self._task = self._progress.add_task(label, total=total_bytes)
        self._progress.start()

    def advance(self, nbytes: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=nbytes)  # rich locks: thread-safe

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
