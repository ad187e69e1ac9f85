"""``mlx dashboard`` (alias ``mlx dash``): the full-screen view of the models, the machine
and the agent (docs/dashboard.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, VerboseOpt
from mlxstate.errors import MlxError

if TYPE_CHECKING:
    from mlxstate.mlxyaml.models import DashboardSpec

__all__ = ["command"]

_PLAN_TIMEOUT = 300.0

SnapshotFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--snapshot-file",
        hidden=True,  # for tests and replays: show this snapshot document, re-read each refresh
        dir_okay=False,
    ),
]


def command(
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    verbose: VerboseOpt = False,
    snapshot_file: SnapshotFileOpt = None,
) -> int:
    """Full-screen dashboard: running models, drift, the machine, disks, benchmarks, the
    agent. Keys: q quit, r refresh now, p show the plan."""
    call = Invocation.make(file, no_color, False, verbose)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise MlxError(
            "mlx dashboard needs a terminal", hint="use `mlx dashboard --once` for one frame"
        )
    settings = _settings(call)
    from mlxstate.dashboard.tui import run

    if snapshot_file is not None:
        return run(_file_sample(snapshot_file), settings, plan=_plan_text(call))
    return run(_live_sample(call), settings, plan=_plan_text(call))


def _settings(call: Invocation) -> DashboardSpec:
    from mlxstate.mlxyaml.models import DashboardSpec

    loaded = call.session().load_optional()
    return loaded.spec.dashboard if loaded is not None else DashboardSpec()


def _file_sample(path: Path) -> Callable[[], dict[str, Any]]:
    def sample() -> dict[str, Any]:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(doc, dict):
            raise ValueError(f"{path}: not a snapshot document")
        return doc

    return sample


def _live_sample(call: Invocation) -> Callable[[], dict[str, Any]]:
    raise MlxError("the live sampler is not available yet", hint="use --snapshot-file")


def _plan_text(call: Invocation) -> Callable[[], str]:
    """`mlx plan` for the same file, as its own process: the plan's text exactly as the
    command prints it, and nothing it loads stays in the dashboard's memory."""
    argv = [sys.executable, "-m", "mlxstate", "plan", "--no-color"]
    if call.file is not None:
        argv += ["-f", str(call.file)]

    def plan() -> str:
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=_PLAN_TIMEOUT,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        return (done.stdout + done.stderr).rstrip() or "(mlx plan printed nothing)"

    return plan
