"""``mlx apply [PLANFILE]``: carry out the plan (docs/apply.md, docs/commands.md)."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, NoColorOpt, QuietOpt, Run, VerboseOpt, lock_seconds
from mlxstate.cli._output import show_plan
from mlxstate.errors import MlxError, StalePlan
from mlxstate.text import short_paths_in

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
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Carry out the plan: downloads with progress, deletions; asks first on a terminal."""
    from mlxstate.apply.executor import Executor, adopt_interrupted
    from mlxstate.apply.journal import Journal, close_interrupted, read_interrupted
    from mlxstate.apply.lock import apply_lock
    from mlxstate.apply.progress import Display
    from mlxstate.cli.plan import compute_plan
    from mlxstate.registry import Registry

    run = Run.make(file, no_color, quiet, verbose)
    timeout = lock_seconds(lock_timeout)
    saved = _load_planfile(planfile) if planfile is not None else None
    if saved is not None and run.file is None:
        run = Run.make(Path(saved["spec"]["path"]), no_color, quiet, verbose)
    settings = run.settings(run.load_optional_spec())
    warnings: list[str] = []
    with apply_lock(settings.state_dir, timeout, warnings):
        for w in warnings:
            sys.stderr.write(f"warning: {w}\n")
        registry = Registry.open(settings.state_dir)
        try:
            interrupted = read_interrupted(settings.state_dir)
            if interrupted is not None:
                _report_interrupted(interrupted)
                adopt_interrupted(interrupted, settings, registry, _stderr_line)
                # Adopted once: a later apply must not adopt it again (journal.py).
                close_interrupted(settings.state_dir, interrupted)
            targets, refresh = _saved_options(saved) if saved is not None else (target or [], False)
            planned = compute_plan(run, targets, refresh=refresh)
            actions = planned.plan.actions
            if saved is not None:
                _check_fresh(saved, planned)
                actions = _authorized(_saved_actions(saved), planned.plan.actions, planfile)
            elif not quiet or planned.plan.has_changes:
                show_plan(planned.plan, no_color, planned.settings.workspace)  # warnings to stderr
            if not actions:
                if saved is not None:
                    sys.stdout.write("No changes. Your models match mlx.yaml.\n")
                if planned.plan.conflicts:
                    raise typer.Exit(1)  # nothing to do, but the conflicts shown above remain
                return
            if saved is None and not auto_approve:
                _confirm()
            if settings.workspace:
                with registry.transaction():  # which file this workspace applies from
                    registry.seen_workspace(settings.workspace, planned.loaded.path.resolve())
            journal = Journal(settings.state_dir, settings.workspace)
            with Display(enabled=sys.stderr.isatty() and not quiet) as display:
                executor = Executor(settings, registry, journal, display, spec=planned.loaded.spec)
                outcomes = executor.run(actions)
            journal.close(finished=True)
        finally:
            registry.close()
    _summary(outcomes, planned.plan.conflicts)


def _stderr_line(text: str) -> None:
    sys.stderr.write(text + "\n")


MAX_PLAN_BYTES = 64 << 20  # far above any real plan; /dev/zero must not fill the memory


def _load_planfile(path: Path) -> dict[str, Any]:
    not_a_plan = f"{path} is not a plan written by `mlx plan --out`"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
        if len(raw) > MAX_PLAN_BYTES:
            raise MlxError(f"{not_a_plan}: larger than {MAX_PLAN_BYTES >> 20} MiB")
        doc = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise MlxError(f"no plan file {path}", hint="make one with `mlx plan --out FILE`") from None
    except IsADirectoryError:
        raise MlxError(f"{not_a_plan}: it is a folder") from None
    except OSError as exc:
        raise MlxError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise MlxError(f"{not_a_plan}: {str(exc)[:200]}") from None
    spec = doc.get("spec") if isinstance(doc, dict) else None
    if (
        not isinstance(doc, dict)
        or doc.get("format_version") != "1"
        or not isinstance(spec, dict)
        or not isinstance(spec.get("path"), str)
        or not isinstance(doc.get("actions", []), list)
    ):
        raise MlxError(f"{not_a_plan} (format_version 1)")
    return doc


def _check_fresh(saved: dict[str, Any], planned: Any) -> None:
    """A saved plan runs only against the exact spec and state it was made from
    (docs/plan-json.md)."""
    changed = []
    now = hashlib.sha256(planned.loaded.path.read_bytes()).hexdigest()
    if saved["spec"].get("sha256") != now:
        changed.append(f"{planned.loaded.display} changed since the plan was made")
    observed = saved.get("observed")
    if not isinstance(observed, dict) or observed.get("fingerprint") != planned.fingerprint:
        changed.append("the model stores or the registry changed since the plan was made")
    if changed:
        raise StalePlan(
            "saved plan is stale: " + "; ".join(changed),
            hint="make a new one with `mlx plan --out FILE`, or run `mlx apply` without one",
        )


def _saved_options(saved: dict[str, Any]) -> tuple[list[str], bool]:
    """The --target and --refresh the saved plan was made with (none in older plans)."""
    options = saved.get("options")
    if not isinstance(options, dict):
        return [], False
    targets = options.get("targets") or []
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise MlxError("the saved plan's options.targets is not a list of model names")
    return targets, options.get("refresh") is True


def _authorized(saved: list[Any], fresh: tuple[Any, ...], planfile: Path | None) -> tuple[Any, ...]:
    """A saved plan is data, not authority: it runs only the actions a fresh plan of the same
    file and state contains (docs/apply.md, "Saved plans"). An action edited or added by
    hand is refused, and nothing runs."""
    allowed = {_comparable(a) for a in fresh}
    foreign = [a for a in saved if _comparable(a) not in allowed]
    if foreign:
        shown = ", ".join(f"{a.id} ({a.kind} {a.subject})" for a in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise StalePlan(
            f"{planfile} holds actions a fresh plan does not: {shown}{more}; nothing was changed",
            hint="a saved plan can only carry out what `mlx plan` proposes; make a new one",
        )
    wanted = {_comparable(a) for a in saved}
    return tuple(a for a in fresh if _comparable(a) in wanted)


def _comparable(action: Any) -> str:
    return json.dumps(action.to_json(), sort_keys=True, default=str)


def _saved_actions(saved: dict[str, Any]) -> list[Any]:
    from mlxstate.plan.actions import Action

    try:
        return [Action.from_json(a) for a in saved.get("actions", [])]
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise MlxError(f"the saved plan has a malformed action: {exc}") from None


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


def _report_interrupted(interrupted: Any) -> None:
    import time

    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(interrupted.started))
    doing = ", ".join(
        f"{e.get('action')} ({e.get('kind')} {e.get('subject')})" for e in interrupted.in_flight
    )
    sys.stderr.write(
        f"warning: the previous apply (started {when}) was interrupted"
        + (f" during {doing}" if doing else "")
        + "; planning again from what is on disk now\n"
    )


def _summary(outcomes: list[Any], conflicts: tuple[str, ...] = ()) -> None:
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
