"""``mlx dashboard`` (alias ``mlx dash``): the models, the machine and the agent at a
glance (docs/dashboard.md): full screen, or one frame with ``--once`` (``--json``: the
snapshot document)."""

from __future__ import annotations

import atexit
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.errors import MlxError

if TYPE_CHECKING:
    from mlxstate.dashboard.sampler import Sampler
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
    once: Annotated[
        bool, typer.Option("--once", help="Print one frame as text and exit (no terminal needed).")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="With --once: print the snapshot as JSON.")
    ] = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
    snapshot_file: SnapshotFileOpt = None,
) -> int:
    """Full-screen dashboard: running models, drift, the machine, disks, benchmarks, the
    agent. Keys: q quit, r refresh now, p show the plan. --once: one frame, no terminal."""
    if json_out and not once:
        raise MlxError("--json prints one snapshot: add --once (`mlx dashboard --once --json`)")
    call = Invocation.make(file, no_color, quiet, verbose)
    if once:
        _once(call, json_out)
        return 0
    if not (_is_terminal(sys.stdin) and _is_terminal(sys.stdout)):
        raise MlxError(
            "mlx dashboard needs a terminal", hint="use `mlx dashboard --once` for one frame"
        )
    settings = _settings(call)
    from mlxstate.dashboard.tui import run

    if snapshot_file is not None:
        return run(_file_sample(snapshot_file), settings, plan=_plan_text(call))
    sampler = _sampler(call)
    from mlxstate.dashboard.storewatch import StoreWatcher

    watcher = StoreWatcher(sampler.store_roots(), sampler.stores_changed).start()
    try:
        return run(sampler.sample, settings, plan=_plan_text(call))
    finally:
        watcher.close()
        sampler.close()


def _is_terminal(stream: Any) -> bool:
    # A stream the shell closed (`<&-`) is None in Python: not a terminal either.
    return stream is not None and bool(stream.isatty())


def _sampler(call: Invocation) -> Sampler:
    from mlxstate.dashboard.sampler import Sampler

    session = call.session()
    if call.file is not None:
        session.find_spec()  # a file named with -f must exist
    return Sampler(session)


def _once(call: Invocation, json_out: bool) -> None:
    from mlxstate.cli._output import emit_json

    sampler = _sampler(call)
    try:
        doc = sampler.sample()
        if json_out:
            emit_json(doc)
        else:
            from mlxstate.dashboard.text import render_text

            sys.stdout.write(render_text(doc, sampler.settings.panels))
    finally:
        sampler.close()


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


_PLANS: set[subprocess.Popen[str]] = set()
_PLANS_REAPED: list[bool] = []


def _stop_plans() -> None:
    for proc in list(_PLANS):
        proc.kill()


def _plan_text(call: Invocation) -> Callable[[], str]:
    """`mlx plan` for the same file, as its own process: the plan's text exactly as the
    command prints it, and nothing it loads stays in the dashboard's memory."""
    argv = [sys.executable, "-m", "mlxstate", "plan", "--no-color"]
    if call.file is not None:
        argv += ["-f", str(call.file)]

    def plan() -> str:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        _PLANS.add(proc)
        try:
            out, err = proc.communicate(timeout=_PLAN_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        finally:
            _PLANS.discard(proc)
        return (out + err).rstrip() or "(mlx plan printed nothing)"

    if not _PLANS_REAPED:
        # Quitting while a plan is still computed ends that `mlx plan` too.
        atexit.register(_stop_plans)
        _PLANS_REAPED.append(True)
    return plan
