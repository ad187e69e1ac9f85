"""``mlx apply [PLANFILE]``: carry out the plan (docs/apply.md, docs/commands.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlxstate.cli._common import (
    FileOpt,
    FrozenOpt,
    Invocation,
    JsonOpt,
    LockedOpt,
    NoColorOpt,
    QuietOpt,
    VerboseOpt,
    lock_seconds,
)
from mlxstate.cli._output import show_plan
from mlxstate.errors import MlxError
from mlxstate.text import short_paths_in

if TYPE_CHECKING:
    from mlxstate.apply.executor import Outcome
    from mlxstate.engine import ApplyResult, PlannedRun
    from mlxstate.plan.actions import Action

__all__ = ["command"]

PROMPT = "Do you want to perform these actions? Only 'yes' will be accepted: "


def command(
    planfile: Annotated[
        Path | None,
        typer.Argument(help="A plan saved by `mlx plan --out FILE`: carry out exactly it."),
    ] = None,
    auto_approve: Annotated[
        bool, typer.Option("-y", "--auto-approve", help="Do not ask for confirmation.")
    ] = False,
    target: Annotated[
        list[str] | None, typer.Option("--target", help="Apply only this model (repeatable).")
    ] = None,
    lock_timeout: Annotated[
        str,
        typer.Option("--lock-timeout", help="Wait this long for another apply (e.g. 30s, 10m)."),
    ] = "0s",
    locked: LockedOpt = False,
    frozen: FrozenOpt = False,
    json_out: JsonOpt = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Carry out the plan: downloads with progress, deletions; asks first on a terminal."""
    from mlxstate.apply.progress import Display
    from mlxstate.lock.use import lock_mode
    from mlxstate.saved_plan import load_saved_plan

    call = Invocation.make(file, no_color, quiet, verbose)
    timeout = lock_seconds(lock_timeout)
    if json_out and planfile is None and not auto_approve:
        raise MlxError(
            "--json has no prompt: pass -y (--auto-approve) or a saved PLANFILE",
            hint="review first with `mlx plan --out FILE`, then `mlx apply --json FILE`",
        )
    saved = load_saved_plan(planfile) if planfile is not None else None
    mode = lock_mode(locked, frozen)
    if saved is not None and mode != "off" and mode != saved.lock:
        made = f"--{saved.lock}" if saved.lock != "off" else "neither --locked nor --frozen"
        raise MlxError(
            f"{planfile} was made with {made}; a saved plan runs as it was made",
            hint=f"make a new one with `mlx plan --{mode} --out FILE`",
        )

    def review(planned: PlannedRun, actions: tuple[Action, ...]) -> bool:
        if json_out:
            return True  # the plan is in the document
        if saved is not None:
            if not actions:
                sys.stdout.write("No changes. Your models match mlx.yaml.\n")
        elif not quiet or planned.plan.has_changes:
            show_plan(planned.plan, no_color, planned.settings.workspace)  # warnings: stderr
        if actions and saved is None and not auto_approve:
            _confirm()
        return True

    result = call.session().apply(
        review=review,
        progress=lambda: Display(enabled=sys.stderr.isatty() and not quiet and not json_out),
        targets=target or (),
        saved=saved,
        lock_timeout=timeout,
        log=_stderr_line,
        lock=mode,
    )
    conflicts = result.planned.plan.conflicts
    if json_out:
        _emit_result(result)
        if result.failed or conflicts:
            raise typer.Exit(1)
        return
    if not result.actions:
        if conflicts:
            raise typer.Exit(1)  # nothing to do, but the conflicts shown above remain
        return
    _summary(result.outcomes, conflicts)


def _emit_result(result: ApplyResult) -> None:
    """The apply document (docs/commands.md, "mlx apply --json")."""
    from mlxstate.cli._output import emit_json

    made = [o for o in result.outcomes if o.status == "done"]
    emit_json(
        {
            "format_version": "1",
            "plan": result.planned.document(),
            "outcomes": [
                {**o.action.to_json(), "status": o.status, "detail": o.detail}
                for o in result.outcomes
            ],
            "summary": {
                "added": sum(o.action.op in ("create", "replace") for o in made),
                "changed": sum(o.action.op == "update" for o in made),
                "destroyed": sum(o.action.op in ("delete", "replace") for o in made),
                "failed": sum(o.status == "failed" for o in result.outcomes),
                "skipped": sum(o.status == "skipped" for o in result.outcomes),
            },
            "conflicts": list(result.planned.plan.conflicts),
            "held": [a.id for a in result.held],
            "ok": not result.failed and not result.planned.plan.conflicts,
        }
    )


def _stderr_line(text: str) -> None:
    sys.stderr.write(text + "\n")


def _confirm() -> None:
    if not sys.stdin.isatty():
        raise MlxError(
            "refusing to apply without confirmation: no terminal to ask on",
            hint="pass -y (--auto-approve) to apply without asking, e.g. in scripts and CI",
        )
    sys.stdout.write("\n" + PROMPT)
    sys.stdout.flush()
    answer = sys.stdin.readline().strip()
    if answer != "yes":
        raise MlxError("apply cancelled; nothing was changed")


def _summary(outcomes: tuple[Outcome, ...], conflicts: tuple[str, ...] = ()) -> None:
    for conflict in conflicts:
        sys.stdout.write(f"Conflict (left alone): {short_paths_in(conflict)}\n")
    failed = [o for o in outcomes if o.status == "failed"]
    skipped = [o for o in outcomes if o.status == "skipped"]
    done = [o for o in outcomes if o.status in ("done", "noop")]
    if failed or skipped:
        sys.stdout.write(
            f"\nApply finished with errors: {len(done)} done, {len(failed)} failed, "
            f"{len(skipped)} skipped\n"
        )
        for o in failed + skipped:
            sys.stdout.write(f"  {o.action.id}: {o.detail}\n")
        raise typer.Exit(1)
    made = [o for o in done if o.status == "done"]
    added = sum(o.action.op in ("create", "replace") for o in made)
    changed = sum(o.action.op == "update" for o in made)
    destroyed = sum(o.action.op in ("delete", "replace") for o in made)
    for o in done:
        if o.status == "noop":
            sys.stdout.write(f"  {o.action.id}: {o.detail}\n")
    sys.stdout.write(
        f"\nApply complete! {added} added, {changed} changed, {destroyed} destroyed.\n"
    )
    if conflicts:
        sys.stdout.write(f"{len(conflicts)} conflict(s) left alone: move them away, apply again\n")
        raise typer.Exit(1)
