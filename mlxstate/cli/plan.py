"""``mlx plan``: what apply would do, Terraform style. Changes nothing (docs/commands.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:
    from mlxstate.engine import Session
    from mlxstate.hosts import Host

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
    host: Annotated[
        str | None,
        typer.Option("--host", help="Plan as the machine NAME would (`when:` in mlx.yaml)."),
    ] = None,
    memory: Annotated[
        str | None,
        typer.Option("--memory", help="Its memory, e.g. 64GB (with --host: else unknown)."),
    ] = None,
    os_name: Annotated[
        str | None, typer.Option("--os", help="Its OS: macos or linux (with --host: else unknown).")
    ] = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show what `mlx apply` would change; change nothing."""
    call = Invocation.make(file, no_color, quiet, verbose)
    from mlxstate.lock.use import lock_mode

    session = call.session()
    as_host = _as_host(session, host, memory, os_name)
    planned = session.plan(target or (), refresh, lock_mode(locked, frozen), as_host)
    document = planned.document()
    if out is not None:
        _write_plan(out, document)
    if json_out:
        emit_json(document)
    elif not quiet or planned.plan.has_changes:
        show_plan(planned.plan, no_color, planned.settings.workspace, planned.host)
        if out is not None:
            sys.stdout.write(
                f"\nSaved the plan to {out}. "
                f"Run `mlx apply {out}` to carry out exactly this plan.\n"
            )
    if detailed_exitcode and planned.plan.has_changes:
        raise typer.Exit(2)


def _as_host(
    session: Session, name: str | None, memory: str | None, os_name: str | None
) -> Host | None:
    """The machine to plan as: ``--host`` (what it does not say is unknown, so conditions on
    it fail closed), or this one with ``--memory`` / ``--os`` put in."""
    if name is None and memory is None and os_name is None:
        return None
    from dataclasses import replace

    from mlxstate.errors import MlxError
    from mlxstate.hosts import OS_NAMES, Host, host_name

    try:
        base = Host(host_name(name), None, None) if name is not None else session.host()
    except ValueError as exc:
        raise MlxError(f"--host: {exc}") from None
    if os_name is not None and os_name not in OS_NAMES:
        raise MlxError(f"--os: expected macos or linux, got {os_name!r}")
    return replace(
        base,
        memory=_size(memory) if memory is not None else base.memory,
        os=os_name if os_name is not None else base.os,
        given=True,
    )


def _size(text: str) -> int:
    from pydantic import ByteSize, TypeAdapter, ValidationError

    from mlxstate.errors import MlxError

    try:
        return int(TypeAdapter(ByteSize).validate_python(text.strip()))
    except ValidationError:
        raise MlxError(f"--memory: expected a size such as 64GB or 16GiB, got {text!r}") from None


def _write_plan(path: Path, document: dict[str, Any]) -> None:
    from mlxstate.errors import MlxError
    from mlxstate.fsutil import write_atomic

    try:
        write_atomic(path, (json.dumps(document, indent=2) + "\n").encode())
    except OSError as exc:
        raise MlxError(f"cannot write the plan to {path}: {exc.strerror or exc}") from None
