"""``mlx plan``: what apply would do, Terraform style. Changes nothing (docs/commands.md)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, NoColorOpt, QuietOpt, Run, VerboseOpt
from mlxstate.cli._output import emit_json, show_plan
from mlxstate.errors import PlanError

__all__ = ["PlannedRun", "command", "compute_plan"]


class PlannedRun:
    """Everything a plan was made from, kept for rendering, --out and apply."""

    def __init__(
        self,
        loaded: Any,
        settings: Any,
        observed: Any,
        facts: Any,
        plan: Any,
        fp: str,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.loaded, self.settings, self.observed = loaded, settings, observed
        self.facts, self.plan, self.fingerprint = facts, plan, fp
        self.options = options or {"refresh": False, "targets": []}

    def document(self) -> dict[str, Any]:
        from mlxstate.plan.render import plan_json

        doc = plan_json(
            self.plan,
            spec_path=str(self.loaded.path),
            spec_sha256=self.loaded.sha256,
            fingerprint=self.fingerprint,
        )
        # Added fields (format 1 allows additions): who owns what this plan installs, and how
        # it was made, so `mlx apply PLANFILE` can make the same plan again to check it.
        doc["workspace"] = self.settings.workspace
        doc["options"] = dict(self.options)
        return doc


def compute_plan(run: Run, targets: list[str], refresh: bool) -> PlannedRun:
    """Load the spec, observe, read the registry, plan. Raises PlanError on plan problems."""
    from mlxstate.cli._common import _registry_hash_cache
    from mlxstate.observe.run import observe
    from mlxstate.plan.planner import fingerprint, make_plan
    from mlxstate.registry import read_facts
    from mlxstate.spec.load import load_spec

    path, shown = run.find_spec()
    loaded = load_spec(path, run.env, display=shown)
    settings = run.settings(loaded)
    # No daemon probe (plan stays offline), and the duplicate search (which may hash plain
    # app files, cached in the registry) only when settings.dedup asks for it.
    dedup_on = loaded.spec.settings.dedup != "off"
    facts = read_facts(settings.state_dir, settings.workspace)
    observed = observe(
        settings,
        loaded.spec,
        probe=False,
        duplicates=dedup_on,
        hash_cache=_registry_hash_cache(settings.state_dir) if dedup_on else None,
        managed_links=tuple((link.app, link.path) for link in facts.links),
    )
    remote = _refresh(loaded.spec, settings) if refresh else None
    plan = make_plan(loaded.spec, observed, facts, targets=targets, remote=remote)
    if (shared := _shared_workspace(settings.workspace, loaded.path, facts)) is not None:
        plan = replace(plan, warnings=(*plan.warnings, shared))
    if plan.problems:
        raise _plan_error(plan, loaded)
    return PlannedRun(
        loaded,
        settings,
        observed,
        facts,
        plan,
        fingerprint(loaded.spec, observed, facts),
        {"refresh": refresh, "targets": list(targets)},
    )


def _shared_workspace(workspace: str | None, path: Path, facts: Any) -> str | None:
    """settings.workspace names a workspace another mlx.yaml applied last: both files now
    own (and may prune) the same models. Deliberate for one dotfiles repo cloned twice; a
    surprise otherwise."""
    last = dict(facts.workspace_files).get(workspace)
    if last is None or os.path.realpath(last) == os.path.realpath(path):
        return None
    return (
        f"workspace {workspace} was last applied from {last}: both files own the same "
        "models (set a different settings.workspace unless they are one dotfiles repo)"
    )


def _plan_error(plan: Any, loaded: Any) -> PlanError:
    """Every problem on one line each, with the mlx.yaml position of the model it is about."""
    lines = []
    for problem in plan.problems:
        if problem.model or problem.where:
            path = problem.where or (
                "models",
                problem.model,
                *((problem.key,) if problem.key else ()),
            )
            line, col = loaded.position(*path)
            lines.append(f"{loaded.display}:{line}:{col}: {problem.message}")
        else:
            lines.append(problem.message)
    noun = "problem" if len(lines) == 1 else "problems"
    return PlanError(
        f"cannot make a plan ({len(lines)} {noun}):\n  " + "\n  ".join(lines),
        hint="nothing was changed; fix the problems above and run `mlx plan` again",
    )


def _refresh(spec: Any, settings: Any) -> Any:
    from mlxstate.observe.hub import hub_facts

    return hub_facts(spec, settings)


def command(
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
    run = Run.make(file, no_color, quiet, verbose)
    planned = compute_plan(run, target or [], refresh)
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
