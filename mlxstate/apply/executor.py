"""The executor: carries out a plan's actions, each journaled before and after, each
re-checking its precondition first, each recorded in the registry in the same step.

Failure policy: a failed action stops the actions that depend on it; independent ones go
on. Model actions are independent of each other (later action kinds — links — depend on
the model they point at).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlxstate.apply import failpoints
from mlxstate.apply.context import ApplyContext, Handler, source_of
from mlxstate.apply.dedup_effects import doomed_paths, restore_symlinked
from mlxstate.apply.handlers import HANDLERS, record_dedup
from mlxstate.apply.hf_effects import HfEffects
from mlxstate.apply.journal import Interrupted, Journal
from mlxstate.apply.ollama_effects import OllamaEffects
from mlxstate.apply.progress import Display
from mlxstate.apply.result import Result
from mlxstate.errors import MlxError
from mlxstate.keys import hf_key, ollama_key
from mlxstate.lock.use import LockUse
from mlxstate.mlxyaml.models import Spec
from mlxstate.observe.ollama_store import scan_ollama_store
from mlxstate.observe.scan import scan_hf
from mlxstate.plan.actions import Action
from mlxstate.plan.params import DedupParams, LinkParams
from mlxstate.registry import Registry
from mlxstate.seams import DEFAULT, Seams
from mlxstate.settings import Settings
from mlxstate.sources import HfSource, OllamaSource
from mlxstate.workspace import LEGACY

__all__ = ["Executor", "Outcome", "adopt_interrupted"]

Status = Literal["done", "noop", "failed", "skipped"]  # of an action in this apply


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: Status
    detail: str = ""


class Executor:
    def __init__(
        self,
        settings: Settings,
        registry: Registry,
        journal: Journal,
        display: Display,
        ollama: OllamaEffects | None = None,
        hf: HfEffects | None = None,
        spec: Spec | None = None,
        seams: Seams = DEFAULT,
        lock: LockUse | None = None,
    ) -> None:
        self.spec, self.seams, self.lock = spec, seams, lock
        self.settings, self.registry, self.journal, self.display = (
            settings,
            registry,
            journal,
            display,
        )
        self.ollama = ollama or OllamaEffects(settings.ollama_host, settings.ollama_models_dir)
        self.hf = hf or HfEffects(settings.hf_cache_dir, settings.hf_token, settings.hf_endpoint)

    def execute(self, actions: Sequence[Action]) -> list[Outcome]:
        ctx = ApplyContext(
            self.settings,
            self.registry,
            self.display,
            self.ollama,
            self.hf,
            self.spec,
            self.seams,
            lock=self.lock,
        )
        outcomes: list[Outcome] = []
        failed: set[str] = set()
        for action in actions:
            blockers = [d for d in _depends_on(action) if d in failed]
            if blockers:
                self.journal.ended(action, "skipped", f"needs {', '.join(blockers)}")
                outcomes.append(
                    Outcome(action, "skipped", f"skipped: {', '.join(blockers)} failed")
                )
                failed.add(action.id)
                continue
            outcome = self._one(action, ctx)
            outcomes.append(outcome)
            if outcome.status == "failed":
                failed.add(action.id)
        return outcomes

    def _one(self, action: Action, ctx: ApplyContext) -> Outcome:
        self.journal.started(action)
        self.display.log(f"{action.symbol} {action.id}: {action.kind} {action.subject}")
        handler = HANDLERS[action.kind]
        try:
            self._keep_dedups_readable(action)
            result = handler.effect(action, ctx)
            # The evidence that mlx's own action produced what is in the store now: a kill
            # before the registry write below adopts the result only with this line.
            self.journal.write("applied", action=action.id, status=result.status)
            failpoints.hit("effect.done")
            self._record(action, result, handler)
        except Exception as exc:  # an action's failure stays that action's failure
            message = _failure_text(action, exc)
            self.journal.ended(action, "failed", message)
            self.display.log(f"  failed: {message}")
            return Outcome(action, "failed", message)
        failpoints.hit("registry.recorded")
        self.journal.ended(action, "done", result.detail)
        return Outcome(action, result.status, result.detail)

    def _record(self, action: Action, result: Result, handler: Handler) -> None:
        """What mlx manages from now on, in one transaction: the folders made for links,
        then what the action's kind records (docs/apply.md, "Ownership")."""
        ws = self.settings.workspace or LEGACY
        app = action.params.app if isinstance(action.params, LinkParams) else ""
        with self.registry.transaction():
            for folder in result.dirs_made:
                self.registry.add_dir(folder, app)
            for folder in result.dirs_removed:
                self.registry.remove_dir(folder)
            handler.record(action, result, self.registry, ws)

    def _keep_dedups_readable(self, action: Action) -> None:
        """Files dedup symlinked to what this action deletes become real files first."""
        doomed = doomed_paths(action, self.settings.ollama_models_dir, self.settings.hf_cache_dir)
        restored = restore_symlinked(doomed, self.registry.facts().dedups) if doomed else []
        if not restored:
            return
        with self.registry.transaction():
            for path in restored:
                self.registry.remove_dedup(path)
                self.display.log(f"  {path} is a real file again (its kept copy goes)")


def _adopt_dedup(registry: Registry, action: Action, log: Callable[[str], None]) -> None:
    """A dedup whose link is in place (same inode, or mlx's symlink) is recorded."""
    p = action.params_as(DedupParams)
    dup, keep = Path(action.subject), Path(p.canonical)
    try:
        linked = os.path.samefile(dup, keep)
    except OSError:
        return
    if linked:
        record_dedup(registry, action, p.mechanism)
        log(f"  {dup} was deduplicated before the interruption: recorded")


def _adopt_link(registry: Registry, action: Action, log: Callable[[str], None]) -> None:
    """A link made (or retargeted) exactly as planned before the kill is mlx's: record it."""
    p = action.params_as(LinkParams)
    path = Path(action.subject)
    if not p.target or not path.is_symlink():
        return  # a link sync of a model: the next plan re-derives it from the model
    if Path(os.path.normpath(os.path.join(path.parent, os.readlink(path)))) == Path(p.target):
        registry.add_link(path, Path(p.target), p.app, action.model or "")
        log(f"  {path} was linked before the interruption: recorded")


def _remove_own_temps(path: Path, settings: Settings, log: Callable[[str], None]) -> None:
    """Temp files mlx makes beside a file it replaces (``.<name>.mlx-…``) and the seed of a
    zero-copy pull (``.mlx-seed-…`` in the Ollama models dir): a kill between making one
    and renaming it leaves it behind. They are mlx's own, never a user's."""
    candidates = list(path.parent.glob(f".{path.name}.mlx-*")) if path.name else []
    candidates += list(settings.ollama_models_dir.glob(".mlx-seed-*"))
    for temp in candidates:
        with contextlib.suppress(OSError):
            temp.unlink()
            log(f"  removed {temp}, left by the interrupted apply")


def _failure_text(action: Action, exc: Exception) -> str:
    """One line for the summary; anything unexpected also goes to the crash log."""
    if isinstance(exc, MlxError):
        return exc.message
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        return f"{action.kind} failed:{where}: {exc.strerror or exc}"
    from mlxstate.cli._errors import write_crash_log

    log = write_crash_log(exc)
    return f"unexpected error in {action.kind}: {type(exc).__name__}: {exc} (details: {log})"


def _depends_on(action: Action) -> tuple[str, ...]:
    p = action.params
    return (p.depends_on or ()) if isinstance(p, LinkParams) else ()


def adopt_interrupted(
    interrupted: Interrupted, settings: Settings, registry: Registry, log: Callable[[str], None]
) -> None:
    """Finish the bookkeeping of actions a killed apply was in the middle of.

    A create whose model is now in the store is recorded as managed only with evidence that
    mlx's own action produced it: the journal's ``applied`` line, written right after the
    effect finished and before the registry write the kill prevented. Without it (killed
    before or during the download, then the user pulled the model by hand) the model stays
    the user's. An HF download killed half-way is mlx's too: its ``*.incomplete`` blobs are
    the library's marker of a download in progress, which a finished pull by hand does not
    leave. A delete whose model is gone is forgotten. Anything else is left to the new
    plan, made from what is on disk now.
    """
    ollama = {ollama_key(m) for m in scan_ollama_store(settings.ollama_models_dir).models}
    cache = scan_hf(settings.hf_cache_dir)
    fold = cache.case_insensitive
    hf = {hf_key(r, fold) for r in cache.repos if r.repo_type == "model"}
    # huggingface_hub's own marker of a download in progress: a repo with *.incomplete blobs
    # is the killed download's, not a finished pull by hand.
    partial = {hf_key(r, fold) for r in cache.repos if r.repo_type == "model" and r.incomplete}
    ws = interrupted.workspace or settings.workspace or LEGACY
    with registry.transaction():
        for event in interrupted.in_flight:
            src = source_of(str(event.get("subject", "")))
            present = (isinstance(src, OllamaSource) and ollama_key(src) in ollama) or (
                isinstance(src, HfSource) and hf_key(src, fold) in hf
            )
            name = str(event.get("action", "")).removeprefix("model/")
            applied = event.get("applied") is True or (
                isinstance(src, HfSource) and hf_key(src, fold) in partial
            )
            if event.get("op") in ("create", "replace") and present and not applied:
                if str(event.get("kind")) in ("ollama.pull", "hf.download"):
                    log(
                        f"  {event['subject']} is in the store, but nothing shows mlx finished "
                        "installing it: left to you (`mlx import` makes it managed)"
                    )
            elif event.get("op") in ("create", "replace") and present:
                registry.add_model(str(event["subject"]), name, None, ws)
                log(f"  {event['subject']} was installed before the interruption: now managed")
            elif str(event.get("kind", "")).endswith(".delete") and not present:
                registry.remove_model(str(event["subject"]))
            elif event.get("kind") == "dedup.link" and isinstance(event.get("spec"), dict):
                _adopt_dedup(registry, Action.from_json(event["spec"]), log)
            elif event.get("kind") in ("link.create", "link.update") and isinstance(
                event.get("spec"), dict
            ):
                _adopt_link(registry, Action.from_json(event["spec"]), log)
            _remove_own_temps(Path(str(event.get("subject", ""))), settings, log)
