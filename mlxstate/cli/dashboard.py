"""``mlx dashboard`` (alias ``mlx dash``): the models, the machine and the agent at a
glance (docs/dashboard.md)."""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.cli._output import emit_json
from mlxstate.errors import MlxError

__all__ = ["command"]


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
) -> None:
    """Show running models, drift, the machine, the stores, benchmarks and the agent."""
    from mlxstate.dashboard.sampler import Sampler

    if json_out and not once:
        raise MlxError("--json prints one snapshot: add --once (`mlx dashboard --once --json`)")
    session = Invocation.make(file, no_color, quiet, verbose).session()
    if file is not None:
        session.find_spec()  # a file named with -f must exist
    sampler = Sampler(session)
    try:
        if once:
            doc = sampler.sample()
            if json_out:
                emit_json(doc)
            else:
                from mlxstate.dashboard.text import render_text

                sys.stdout.write(render_text(doc, sampler.settings.panels))
            return
        _interactive(sampler)
    finally:
        sampler.close()


def _interactive(sampler: object) -> None:
    from mlxstate.dashboard.sampler import Sampler
    from mlxstate.dashboard.storewatch import StoreWatcher

    assert isinstance(sampler, Sampler)
    try:
        tui = importlib.import_module("mlxstate.dashboard.tui")
    except ModuleNotFoundError as exc:
        if exc.name != "mlxstate.dashboard.tui":
            raise
        raise MlxError(
            "the full-screen dashboard is not part of this build; use `mlx dashboard --once`"
        ) from None
    watcher = StoreWatcher(sampler.store_roots(), sampler.stores_changed).start()
    try:
        tui.run(sampler.sample, sampler.settings)
    finally:
        watcher.close()
