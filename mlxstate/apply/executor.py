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
from mlxstate.apply.cleanup_effects import (
    check_cache_file,
    delete_ollama_file,
    delete_revision,
    delete_stale_file,
    hf_blob_in_use,
)
from mlxstate.apply.dedup_effects import dedup, doomed_paths, forget_hashes, restore_symlinked
from mlxstate.apply.hf_effects import HfEffects, seed_ollama_blob
from mlxstate.apply.journal import Interrupted, Journal
from mlxstate.apply.link_effects import create_link, remove_link, retarget_link
from mlxstate.apply.ollama_effects import OllamaEffects
from mlxstate.apply.progress import Display
from mlxstate.errors import ActionError, MlxError
from mlxstate.match import hf_key, ollama_key
from mlxstate.observe.hf_cache import repo_folder_name
from mlxstate.observe.ollama_store import read_one_model, scan_ollama_store
from mlxstate.observe.run import disk_space, scan_hf
from mlxstate.plan.actions import Action
from mlxstate.registry import Registry, RegistryFacts
from mlxstate.settings import Settings
from mlxstate.sources import HfSource, OllamaSource, Source, parse_source
from mlxstate.spec.models import Spec
from mlxstate.text import human_bytes
from mlxstate.workspace import LEGACY

__all__ = ["Executor", "Outcome", "adopt_interrupted"]

Status = Literal["done", "noop", "failed", "skipped"]


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
    ) -> None:
        self.spec = spec
        self._links_made: list[tuple[Path, Path]] = []  # by the link.create being recorded
        self._links_removed: list[Path] = []
        self._dirs_made: list[Path] = []  # folders mlx created for links (recorded, removable)
        self._dirs_removed: list[Path] = []
        self.settings, self.registry, self.journal, self.display = (
            settings,
            registry,
            journal,
            display,
        )
        self.ollama = ollama or OllamaEffects(settings.ollama_host, settings.ollama_models_dir)
        self.hf = hf or HfEffects(settings.hf_cache_dir, settings.hf_token, settings.hf_endpoint)

    def run(self, actions: Sequence[Action]) -> list[Outcome]:
        forget_hashes()  # a hash memo lives for one apply only
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
            outcome = self._one(action)
            outcomes.append(outcome)
            if outcome.status == "failed":
                failed.add(action.id)
        return outcomes

    def _one(self, action: Action) -> Outcome:
        self.journal.started(action)
        self.display.log(f"{action.symbol} {action.id}: {action.kind} {action.subject}")
        try:
            status, detail = self._effect(action)
            # The evidence that mlx's own action produced what is in the store now: a kill
            # before the registry write below adopts the result only with this line.
            self.journal.write("applied", action=action.id, status=status)
            failpoints.hit("effect.done")
            self._record(action, status)
        except Exception as exc:  # an action's failure stays that action's failure
            message = _failure_text(action, exc)
            self._dirs_made, self._dirs_removed = [], []
            self.journal.ended(action, "failed", message)
            self.display.log(f"  failed: {message}")
            return Outcome(action, "failed", message)
        failpoints.hit("registry.recorded")
        self.journal.ended(action, "done", detail)
        return Outcome(action, status, detail)

    # -- effects, each re-checking its precondition ---------------------------------------

    def _effect(self, action: Action) -> tuple[Status, str]:
        self._keep_dedups_readable(action)
        src = _source(action.subject)
        if action.kind == "ollama.pull" and isinstance(src, OllamaSource):
            return self._pull(action, src)
        if action.kind == "ollama.delete" and isinstance(src, OllamaSource):
            if self._ollama_present(src) is None:
                return "noop", "already gone"
            return "done", self.ollama.delete(src)
        if action.kind == "hf.download" and isinstance(src, HfSource):
            return self._download(action, src)
        if action.kind.startswith("link."):
            return self._link(action)
        if action.kind.startswith("cleanup."):
            return self._cleanup(action)
        if action.kind == "dedup.link":
            done = dedup(action, self._roots())
            if done.startswith("left as is"):
                # Recorded all the same, so the plan stops proposing what cannot be done here.
                self._record_dedup(action, "unsupported")
                return "noop", done
            return ("noop" if done.startswith("already") else "done"), done
        if action.kind == "registry.claim":
            if src is None or self._present(src) is None:
                raise ActionError(f"{action.subject} is no longer in its store; nothing to claim")
            return "done", f"now owned by workspace {self.settings.workspace}"
        if action.kind == "registry.release":
            return "done", f"workspace {self.settings.workspace} no longer owns it (files kept)"
        if action.kind == "hf.delete" and isinstance(src, HfSource):
            freed = self.hf.delete(src.repo_id)
            return ("done", f"freed {human_bytes(freed)}") if freed else ("noop", "already gone")
        raise ActionError(f"{action.id}: mlx cannot carry out {action.kind} on {action.subject}")

    def _pull(self, action: Action, src: OllamaSource) -> tuple[Status, str]:
        present = self._ollama_present(src)
        if present == "ok" and action.op in ("create", "replace"):
            return "noop", "already present" + self._delete_replaced(action)
        self._check_space(action, self.settings.ollama_models_dir)
        if action.param("seed_blob"):
            self.display.log(f"  {seed_ollama_blob(action, self.settings.ollama_models_dir)}")
        self.ollama.pull(src, self.display.task(f"pull {src.name}"))
        return "done", "pulled" + self._delete_replaced(action)

    def _download(self, action: Action, src: HfSource) -> tuple[Status, str]:
        self._check_space(action, self.settings.hf_cache_dir)
        include, exclude = action.param("include"), action.param("exclude")
        revision = action.param("commit") or action.param("revision") or "main"
        commit = self.hf.download(
            src.repo_id, revision, include, exclude, self.display.task(f"download {src.repo_id}")
        )
        return "done", f"downloaded {commit[:12]}" + self._delete_replaced(action)

    def _link(self, action: Action) -> tuple[Status, str]:
        path, target = Path(action.subject), action.param("target")
        if action.kind == "link.delete":
            app_root = self._app_root(action)
            removed = remove_link(
                path, Path(target), app_root, self.registry.owned_dirs(), self._dirs_removed
            )
            return ("done", "removed") if removed else ("noop", "already gone")
        if action.kind == "link.update":
            old = next((x.target for x in self._facts().links if x.path == path), None)
            retarget_link(path, old or Path(), Path(target), self._app_root(action))
            return "done", f"now → {target}"
        if not target:
            return self._sync_links(action)
        made = create_link(path, Path(target), self._app_root(action), self._dirs_made)
        self._links_made = [(path, Path(target))]
        return ("done", "linked") if made else ("noop", "already linked")

    def _sync_links(self, action: Action) -> tuple[Status, str]:
        """The links of a model installed or updated earlier in this apply, now that its
        files are known: create the missing ones, retarget mlx's own that point at the old
        files, remove mlx's own the model no longer needs. Never touches anything else."""
        from mlxstate.plan.links import owns_link

        app, facts = str(action.param("app")), self._facts()
        ours = {
            x.path: x
            for x in facts.links_of_mine()
            if x.app == app
            and x.model == action.model
            and (self.spec is None or owns_link(x, self.spec, facts))
        }
        wanted = self._resolve_links(action)
        changed = 0
        for path, target in wanted:
            mine = ours.get(path)
            if mine is not None and os.path.islink(path) and mine.target != target:
                retarget_link(path, mine.target, target, self._app_root(action))
                changed += 1
            elif create_link(path, target, self._app_root(action), self._dirs_made):
                changed += 1
        gone = [p for p in ours if p not in {w for w, _ in wanted}]
        owned = self.registry.owned_dirs() | set(self._dirs_made)
        for path in gone:
            root = self._app_root(action)
            if remove_link(path, ours[path].target, root, owned, self._dirs_removed):
                changed += 1
        self._links_made = wanted
        self._links_removed = gone
        return ("done", f"{changed} link(s) changed") if changed else ("noop", "already linked")

    def _cleanup(self, action: Action) -> tuple[Status, str]:
        if action.kind == "cleanup.revision":
            freed = delete_revision(
                self.settings.hf_cache_dir,
                str(action.param("repo_type")),
                str(action.param("repo")),
                str(action.param("commit")),
            )
            return ("done", f"freed {human_bytes(freed)}") if freed else ("noop", "already gone")
        path = Path(action.subject)
        if path.parent == self.settings.ollama_models_dir / "blobs":
            removed = delete_ollama_file(action, self.settings.ollama_models_dir)
        else:  # then it must be a file in a repo's blobs/ folder of the HF cache
            check_cache_file(self.settings.hf_cache_dir, path)
            in_use = action.kind == "cleanup.orphan" and hf_blob_in_use(
                self.settings.hf_cache_dir, path
            )
            removed = delete_stale_file(action, in_use)
        return ("done", "removed") if removed else ("noop", "already gone")

    def _resolve_links(self, action: Action) -> list[tuple[Path, Path]]:
        """The links of a model installed earlier in this apply: observe it now."""
        from mlxstate.observe.run import observe
        from mlxstate.plan.links import wanted_links

        if self.spec is None:
            raise ActionError(f"{action.id}: cannot resolve the links without mlx.yaml")
        observed = observe(self.settings, self.spec, probe=False, duplicates=False)
        wanted, _ = wanted_links(self.spec, observed, set(), self._facts())
        app = action.param("app")
        mine = [w for w in wanted if w.app == app and w.model == action.model]
        pairs = [(w.path, w.target) for w in mine if w.covered_by is None]
        return [(p, t) for p, t in pairs if t is not None]

    def _app_root(self, action: Action) -> Path:
        app = action.param("app")
        if self.spec is not None and app in self.spec.apps:
            return self.spec.apps[app].path
        return Path(action.subject).parent  # the app left mlx.yaml: remove nothing above

    def _roots(self) -> list[Path]:
        """Where mlx may replace files: the stores and the declared app folders."""
        apps = [a.path for a in self.spec.apps.values()] if self.spec is not None else []
        return [self.settings.ollama_models_dir, self.settings.hf_cache_dir, *apps]

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

    def _record_dedup(self, action: Action, mechanism: str) -> None:
        with self.registry.transaction():
            record_dedup(self.registry, action, mechanism)

    def _delete_replaced(self, action: Action) -> str:
        """A replace deletes the old source only after the new one is in place. The new one
        is installed either way: a failed delete of the old one is reported, and the old one
        stays managed (the next plan proposes its delete again)."""
        old = action.param("replaces")
        if action.op != "replace" or not old:
            return ""
        old_src = _source(old)
        try:
            if isinstance(old_src, OllamaSource) and self._ollama_present(old_src) is not None:
                self.ollama.delete(old_src)
            elif isinstance(old_src, HfSource):
                self.hf.delete(old_src.repo_id)
        except (MlxError, OSError) as exc:
            text = exc.message if isinstance(exc, MlxError) else str(exc)
            self.display.log(f"  could not delete the replaced {old}: {text}")
            return f"; the replaced {old} is still there ({text})"
        with self.registry.transaction():
            self.registry.remove_model(old)
        return f"; deleted {old}"

    def _present(self, src: Source) -> str | None:
        if isinstance(src, OllamaSource):
            return self._ollama_present(src)
        if isinstance(src, HfSource):
            # The exact on-disk folder: a case variant is another repo.
            snapshots = self.settings.hf_cache_dir / repo_folder_name(src.repo_id) / "snapshots"
            return "ok" if snapshots.is_dir() and any(snapshots.iterdir()) else None
        return None

    def _ollama_present(self, src: OllamaSource) -> str | None:
        parts = (src.host, src.namespace, src.model, src.tag)
        model = read_one_model(self.settings.ollama_models_dir, parts)
        return None if model is None else model.status

    def _check_space(self, action: Action, root: Path) -> None:
        """disk.min_free again, right before the download (the plan may be old)."""
        disk = disk_space(root)
        if disk is None:
            return
        # Size unknown (every fresh Ollama pull): refuse at least when already below the floor.
        after = disk.free - (action.download_bytes or 0)
        if after < self.settings.min_free:
            size = human_bytes(action.download_bytes) if action.download_bytes else "size unknown"
            raise ActionError(
                f"not enough disk space for {action.subject}: {size} "
                f"to download, {human_bytes(disk.free)} free, settings.disk.min_free is "
                f"{human_bytes(self.settings.min_free)}"
            )

    def _facts(self) -> RegistryFacts:
        return self.registry.facts(self.settings.workspace)

    def _record(self, action: Action, status: Status) -> None:
        """What mlx manages from now on (docs/apply.md, "Ownership"): what it installed, owned
        by this workspace; deletions forget; claims and releases change only the owners."""
        ws = self.settings.workspace or LEGACY
        with self.registry.transaction():
            for folder in self._dirs_made:
                self.registry.add_dir(folder, str(action.param("app") or ""))
            for folder in self._dirs_removed:
                self.registry.remove_dir(folder)
            self._dirs_made, self._dirs_removed = [], []
            if action.kind == "link.delete":
                self.registry.remove_link(Path(action.subject))
            elif action.kind == "link.update":
                app = str(action.param("app"))
                self.registry.add_link(
                    Path(action.subject), Path(action.param("target")), app, action.model or "", ws
                )
            elif action.kind == "link.create":
                app = str(action.param("app"))
                for path, target in self._links_made:
                    self.registry.add_link(path, target, app, action.model or "", ws)
                for path in self._links_removed:
                    self.registry.remove_link(path)
                self._links_made, self._links_removed = [], []
            elif action.kind == "dedup.link" and status == "done":
                record_dedup(self.registry, action, str(action.param("mechanism")))
            elif action.kind in ("ollama.delete", "hf.delete"):
                self.registry.remove_model(action.subject)
            elif action.kind == "registry.claim":
                self.registry.claim(action.subject, ws, action.model or "")
            elif action.kind == "registry.release":
                self.registry.release(action.subject, ws)
            elif action.op in ("create", "replace") and status == "done":
                self.registry.add_model(
                    action.subject, action.model or "", action.param("revision"), ws
                )


def record_dedup(registry: Registry, action: Action, mechanism: str) -> None:
    dev, ino, size, mtime_ns = action.param("dup")
    registry.add_dedup(
        Path(action.subject),
        Path(str(action.param("canonical"))),
        str(action.param("sha256")),
        mechanism,
        dev,
        ino,
        size,
        mtime_ns,
    )


def _adopt_dedup(registry: Registry, action: Action, log: Callable[[str], None]) -> None:
    """A dedup whose link is in place (same inode, or mlx's symlink) is recorded."""
    dup, keep = Path(action.subject), Path(str(action.param("canonical")))
    try:
        linked = os.path.samefile(dup, keep)
    except OSError:
        return
    if linked:
        record_dedup(registry, action, str(action.param("mechanism")))
        log(f"  {dup} was deduplicated before the interruption: recorded")


def _adopt_link(registry: Registry, action: Action, log: Callable[[str], None]) -> None:
    """A link made (or retargeted) exactly as planned before the kill is mlx's: record it."""
    target = action.param("target")
    path = Path(action.subject)
    if not target or not path.is_symlink():
        return  # a link sync of a model: the next plan re-derives it from the model
    if Path(os.path.normpath(os.path.join(path.parent, os.readlink(path)))) == Path(target):
        registry.add_link(path, Path(target), str(action.param("app")), action.model or "")
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
    return tuple(action.param("depends_on") or ())


def _source(text: str) -> Source | None:
    try:
        return parse_source(text)
    except ValueError:
        return None


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
            src = _source(str(event.get("subject", "")))
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
