"""``mlx plan``: what apply would do, Terraform style. Changes nothing (docs/commands.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mlxstate.cli._common import (
    FileOpt,
    FrozenOpt,
    Invocation,
    LockedOpt,
    NoColorOpt,
    QuietOpt,
    VerboseOpt,
)
from mlxstate.cli._output import emit_json, show_plan

__all__ = ["command"]


def command(
    locked: LockedOpt = False,
    frozen: FrozenOpt = False,
    file: FileOpt = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the plan as one JSON document.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the JSON plan to FILE (for `mlx apply FILE`)."),
    ] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option("--detailed-exitcode", help="Exit 0 no changes, 1 error, 2 changes pending."),
    ] = False,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Ask the Hugging Face hub for branch heads and sizes.")
    ] = False,
    target: Annotated[
        list[str] | None, typer.Option("--target", help="Plan only this model (repeatable).")
    ] = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show what `mlx apply` would change; change nothing."""
    call = Invocation.make(file, no_color, quiet, verbose)
    from mlxstate.lock.use import lock_mode

    planned = call.session().plan(target or (), refresh, lock_mode(locked, frozen))
    document = planned.document()
    if out is not None:
        _write_plan(out, document)
    if json_out:
        emit_json(document)
    elif not quiet or planned.plan.has_changes:
        show_plan(planned.plan, no_color, planned.settings.workspace)  # warnings to stderr
        if out is not None:
            sys.stdout.write(
                f"\nSaved the plan to {out}. "
                f"Run `mlx apply {out}` to carry out exactly this plan.\n"
            )
    if detailed_exitcode and planned.plan.has_changes:
        raise typer.Exit(2)


def _write_plan(path: Path, document: dict[str, Any]) -> None:
    from mlxstate.errors import MlxError
    from mlxstate.fsutil import write_atomic

    try:
        write_atomic(path, (json.dumps(document, indent=2) + "\n").encode())
    except OSError as exc:
        raise MlxError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None
