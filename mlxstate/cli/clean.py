"""``mlx clean``: a one-shot plan and apply of every cleanup (docs/commands.md, "mlx clean").

Planned and carried out by the Session like ``mlx apply`` (the same lock, journal, executor
and re-checks): only the plan differs, made of cleanups alone, whatever ``settings.cleanup``
says (docs/apply.md, ``cleanup.*``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.errors import MlxError
from mlxstate.text import human_bytes

if TYPE_CHECKING:
    from mlxstate.apply.executor import Outcome
    from mlxstate.engine import PlannedRun
    from mlxstate.plan.actions import Action

__all__ = ["command"]

PROMPT = "Do you want to delete these files? Only 'yes' will be accepted: "


def command(
    auto_approve: Annotated[
        bool, typer.Option("-y", "--yes", "--auto-approve", help="Do not ask for confirmation.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be deleted; change nothing.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    lock_timeout: Annotated[
        str,
        typer.Option("--lock-timeout", help="Wait this long for another apply (e.g. 30s, 10m)."),
    ] = "0s",
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Delete stale partial downloads, orphan blobs and detached HF revisions now."""
    from mlxstate.apply.progress import Display
    from mlxstate.cli._common import lock_seconds

    call = Invocation.make(file, no_color, quiet, verbose)
    timeout = lock_seconds(lock_timeout)
    session = call.session()
    if dry_run:
        planned = session.plan(cleanup_only=True)
        _show(planned, planned.plan.actions, json_out, no_color, quiet)
        if json_out:
            _emit(planned, planned.plan.actions, (), dry_run=True)
        return

    def review(planned: PlannedRun, actions: tuple[Action, ...]) -> bool:
        _show(planned, actions, json_out, no_color, quiet)
        if actions and not auto_approve:
            _confirm(json_out)
        return True

    result = session.clean(
        review=review,
        progress=lambda: Display(enabled=sys.stderr.isatty() and not quiet and not json_out),
        lock_timeout=timeout,
        log=_stderr_line,
    )
    if json_out:
        _emit(result.planned, result.actions, result.outcomes, dry_run=False)
    elif result.actions:
        _summary(result.outcomes)
    if result.failed:
        raise typer.Exit(1)


def _stderr_line(text: str) -> None:
    sys.stderr.write(text + "\n")


def _show(
    planned: PlannedRun, actions: tuple[Action, ...], json_out: bool, no_color: bool, quiet: bool
) -> None:
    from mlxstate.cli._output import show_plan, warn

    if json_out:
        for warning in planned.plan.warnings:
            warn(warning)  # stdout holds the document alone
    elif not actions:
        for warning in planned.plan.warnings:
            warn(warning)
        if not quiet:
            sys.stdout.write("Nothing to clean.\n")
    else:
        show_plan(planned.plan, no_color)


def _confirm(json_out: bool) -> None:
    if json_out or not sys.stdin.isatty():
        raise MlxError(
            "refusing to clean without confirmation: "
            + ("--json leaves no place to ask" if json_out else "no terminal to ask on"),
            hint="pass -y to delete without asking, or --dry-run to only see what would go",
        )
    sys.stdout.write("\n" + PROMPT)
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "yes":
        raise MlxError("clean cancelled; nothing was changed")


def _summary(outcomes: tuple[Outcome, ...]) -> None:
    done = [o for o in outcomes if o.status == "done"]
    bad = [o for o in outcomes if o.status in ("failed", "skipped")]
    freed = sum(o.action.free_bytes or 0 for o in done)
    for o in outcomes:
        if o.status == "noop":
            sys.stdout.write(f"  {o.action.id}: {o.detail}\n")
    if bad:
        sys.stdout.write(
            f"\nClean finished with errors: {len(done)} removed, {len(bad)} not removed\n"
        )
        for o in bad:
            sys.stdout.write(f"  {o.action.id}: {o.detail}\n")
        return
    sys.stdout.write(f"\nClean complete! {len(done)} removed, {human_bytes(freed)} freed.\n")


def _emit(
    planned: PlannedRun,
    actions: tuple[Action, ...],
    outcomes: tuple[Outcome, ...],
    dry_run: bool,
) -> None:
    """The ``mlx clean --json`` document (docs/commands.md, "mlx clean")."""
    from mlxstate.cli._output import emit_json

    status = {o.action.id: o for o in outcomes}
    rows: list[dict[str, Any]] = []
    for action in actions:
        row = {**action.to_json(), "status": "planned" if dry_run else "not run", "detail": ""}
        if (o := status.get(action.id)) is not None:
            row["status"], row["detail"] = o.status, o.detail
        rows.append(row)
    freed = sum(a.free_bytes or 0 for a in actions if dry_run or _ok(status, a))
    emit_json(
        {
            "format": 1,
            "dry_run": dry_run,
            "workspace": planned.settings.workspace,
            "actions": rows,
            "freed_bytes" if not dry_run else "free_bytes": freed,
            "failed": sum(row["status"] in ("failed", "skipped") for row in rows),
            "warnings": list(planned.plan.warnings),
        }
    )


def _ok(status: dict[str, Outcome], action: Action) -> bool:
    o = status.get(action.id)
    return o is not None and o.status == "done"
