"""The planner: a pure function of (spec, observed state, registry facts) → Plan.

No I/O here — observers collected every fact first (observers never decide, the planner
never reads). Rules (docs/apply.md, "What mlx deletes — and never deletes"):

- declared and absent → create (``ollama.pull`` / ``hf.download``); ``file://`` sources are
  only checked: a missing path is a plan problem, never an action;
- present but broken (missing or short blob, dangling snapshot link, files the hub listing
  and include/exclude say should be there) → update (repair);
- an HF revision that is not cached (a pinned commit, a branch not fetched, or — with remote
  facts from ``--refresh`` — a branch whose hub head moved) → update, old → new in the reason;
- ``ensure: absent`` → delete, managed or not; ``prune: true`` → delete MANAGED undeclared
  models only; a managed name now declared with another source → replace (with prune);
- ``protect: true`` on anything the plan would delete or replace → problem;
- ``disk.min_free`` against known download sizes per filesystem → problem with the numbers.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from mlxstate.match import hf_key, ollama_key
from mlxstate.plan.actions import OP_ORDER, Action, Plan, PlanProblem, ReasonCode
from mlxstate.plan.cleanup import plan_cleanups
from mlxstate.plan.dedup import plan_dedup
from mlxstate.plan.files import wanted_files
from mlxstate.plan.links import plan_links
from mlxstate.plan.params import DeleteParams, DownloadParams, PullParams
from mlxstate.registry import ManagedModel, RegistryFacts
from mlxstate.sources import FileSource, HfSource, OllamaSource, Source, parse_source
from mlxstate.spec.models import ModelSpec, Spec
from mlxstate.state import (
    HfFile,
    HfRepo,
    HfRevision,
    Observed,
    OllamaModel,
    RemoteFile,
    RemoteRepo,
)
from mlxstate.text import human_bytes
from mlxstate.workspace import LEGACY

__all__ = ["RemoteRepo", "fingerprint", "make_plan", "wanted_files"]

_COMMIT = re.compile(r"[0-9a-f]{40}")


class _Planner:
    def __init__(
        self,
        spec: Spec,
        observed: Observed,
        facts: RegistryFacts,
        remote: Mapping[tuple[str, str], RemoteRepo],
    ) -> None:
        self.spec, self.observed, self.facts, self.remote = spec, observed, facts, remote
        self.actions: list[Action] = []
        self.targets: tuple[str, ...] = ()
        self.problems: list[PlanProblem] = []
        self.warnings: list[str] = []
        self.fold = observed.hf.case_insensitive
        self.ollama = {ollama_key(m): m for m in observed.ollama.models}
        self.hf = {hf_key(r, self.fold): r for r in observed.hf.repos if r.repo_type == "model"}
        self.declared = {self._key(m.parsed_source): name for name, m in spec.models.items()}

    # -- declared models -------------------------------------------------------------------

    def model(self, name: str, m: ModelSpec) -> None:
        src = m.parsed_source
        if isinstance(src, FileSource):
            if src.path not in self.observed.existing_files:
                self.problems.append(
                    PlanProblem(
                        f"models.{name}: {src} does not exist "
                        "(file:// sources are never downloaded)",
                        name,
                        "source",
                    )
                )
            return
        if m.ensure == "absent":
            self._delete(name, src, "ensure: absent", "ensure-absent")
            return
        replaced = self._replaced(name, src)
        if isinstance(src, OllamaSource):
            action = self._ollama(name, src, self.ollama.get(ollama_key(src)))
        else:
            assert isinstance(src, HfSource)
            action = self._hf(name, m, src, self.hf.get(self._key(src)))
        if replaced is not None and self._release(
            replaced, f"source changed: {replaced.source} → {src}"
        ):
            replaced = None  # another workspace still owns the old source: it stays
        if replaced is not None and not self._old_present(replaced):
            self._forget(replaced, f"source changed: {replaced.source} → {src}; the old one")
            replaced = None
        if action is not None and replaced is not None and action.op == "create":
            action = self._as_replace(name, m, action, replaced)
        elif replaced is not None and (old := _parse(replaced.source)) is not None:
            # The new source is already there (or only needs a repair): the old one, which
            # mlx installed under this name, just goes.
            reason = f"source changed: {replaced.source} → {src} (prune: true)"
            self._protect_problem(name, m, reason, "delete")
            self._delete(None, old, reason, "source-changed", f"prune/{replaced.source}", was=name)
        if action is not None:
            self.actions.append(action)
        if action is None or action.op == "update":
            self._claim(name, src)

    def _claim(self, name: str, src: Source) -> None:
        """A declared model that is present and managed, but not by this workspace: this
        file claims it too, so another file's prune can no longer delete it from under us.
        A model mlx does not manage stays the user's (``mlx import`` makes it managed)."""
        managed = self.facts.find(str(src), self.fold)
        ws = self.facts.workspace
        if managed is None or ws is None or ws in managed.owner_names:
            return
        if self._present_size(src) is None:
            return
        others = [w for w in managed.owner_names if w != LEGACY]
        why = (
            f"managed by {', '.join(others)}; declared here too: shared from now on"
            if others
            else "installed by mlx before workspaces existed; this file declares it: now its own"
        )
        self.actions.append(
            Action(
                f"claim/{name}",
                "update",
                "registry.claim",
                str(src),
                0,
                0,
                why,
                name,
                reason_code="claim",
            )
        )

    def _ollama(self, name: str, src: OllamaSource, model: OllamaModel | None) -> Action | None:
        if model is None:
            local = self._hf_gguf_for(src)
            if local is not None:
                reason = (
                    f"declared, not present; its GGUF ({human_bytes(local.size)}) is in the HF "
                    "cache and will be linked, not downloaded"
                )
                extra = PullParams(
                    seed_blob=local.blob_file, seed_sha256=local.blob, seed_size=local.size
                )
                return Action(
                    f"model/{name}",
                    "create",
                    "ollama.pull",
                    str(src),
                    None,
                    0,
                    reason,
                    name,
                    extra,
                    "declared-not-present",
                )
            return Action(
                f"model/{name}",
                "create",
                "ollama.pull",
                str(src),
                None,
                0,
                "declared, not present",
                name,
                reason_code="declared-not-present",
            )
        if model.status == "broken":
            missing = sum(x.size for x in model.all_layers if not x.ok)
            reason = "repair: " + "; ".join(model.problems)
            return Action(
                f"model/{name}",
                "update",
                "ollama.pull",
                str(src),
                missing,
                0,
                reason,
                name,
                reason_code="repair",
            )
        return None

    def _hf_gguf_for(self, src: OllamaSource) -> HfFile | None:
        """For ``ollama://hf.co/ORG/REPO:QUANT``: the cached LFS GGUF of that repo whose name
        carries the quant (its blob name is the sha256 Ollama will ask for)."""
        if not src.is_huggingface:
            return None
        # Ollama lowercases hf.co names: the repo it pulls is the cached one of any case.
        wanted = f"{src.namespace}/{src.model}".lower()
        repo = next((r for r in self.hf.values() if r.repo_id.lower() == wanted), None)
        if repo is None:
            return None
        quant = src.tag.lower()
        files = [
            f
            for rev in repo.revisions
            for f in rev.files
            if f.present
            and f.is_lfs
            and f.path.lower().endswith(".gguf")
            and quant in f.path.lower()
        ]
        return min(files, key=lambda f: f.path) if len(files) >= 1 and quant != "latest" else None

    def _hf(self, name: str, m: ModelSpec, src: HfSource, repo: HfRepo | None) -> Action | None:
        want = m.revision or "main"
        pinned = bool(_COMMIT.fullmatch(want))
        local = want if pinned else (repo.ref(want) if repo else None)
        remote = self.remote.get((src.repo_id.lower(), want))
        target = remote.commit if remote is not None and not pinned else local
        opts = DownloadParams(
            revision=want,
            include=None if m.include is None else tuple(m.include),
            exclude=None if m.exclude is None else tuple(m.exclude),
        )
        rev = repo.revision(target) if repo is not None and target else None
        listing = remote.files if remote is not None and remote.commit == target else None
        if rev is None:
            size = _download_size(listing, m, repo) if listing is not None else None
            if repo is None:
                return Action(
                    f"model/{name}",
                    "create",
                    "hf.download",
                    str(src),
                    size,
                    0,
                    "declared, not present",
                    name,
                    opts,
                    "declared-not-present",
                )
            reason, code = _revision_reason(want, pinned, local, remote)
            return _hf_update(name, src, size, reason, replace(opts, commit=target), code)
        expected = listing if listing is not None else rev.remote
        # A dangling file the patterns exclude is never fetched by apply: not a repair.
        dangling = {f.path for f in wanted_files(_as_listing(rev), m.include, m.exclude)}
        absent = (set(rev.dangling) & dangling) | _missing_files(rev, expected, m)
        missing = sorted(absent)
        if not missing:
            return None
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        size = (
            _download_size([f for f in expected or () if f.path in absent], m, repo)
            if expected
            else None
        )
        reason = f"repair: {len(missing)} file{'s' if len(missing) != 1 else ''} missing ({shown})"
        return _hf_update(name, src, size, reason, replace(opts, commit=rev.commit), "repair")

    # -- deletes ---------------------------------------------------------------------------

    def _release(self, managed: ManagedModel, why: str) -> bool:
        """Prune of a model other workspaces own too: only this workspace's claim goes."""
        others = [w for w in managed.owner_names if w not in (self.facts.workspace, LEGACY)]
        if not others:
            return False
        reason = f"{why}; also owned by {', '.join(others)}: only this file's claim is dropped"
        self.actions.append(
            Action(
                f"release/{managed.source}",
                "update",
                "registry.release",
                managed.source,
                0,
                0,
                reason,
                None,
                DeleteParams(was=managed.name_in(self.facts.workspace or "") or managed.name),
                "release",
            )
        )
        return True

    def _old_present(self, managed: ManagedModel) -> bool:
        src = _parse(managed.source)
        return src is None or self._present_size(src) is not None

    def _forget(self, managed: ManagedModel, why: str) -> None:
        """A model this workspace owns is gone from its store (removed by hand): its claim
        goes too. Kept, it would make a copy the user later pulls by hand look installed by
        mlx, and prune (or a source change) would delete that copy."""
        ws = self.facts.workspace
        if ws is None:
            return
        self.actions.append(
            Action(
                f"forget/{managed.source}",
                "update",
                "registry.release",
                managed.source,
                0,
                0,
                f"{why}: forgotten (files it finds again later are yours)",
                None,
                DeleteParams(was=managed.name_in(ws) or managed.name),
                "forget",
            )
        )

    def _delete(
        self,
        name: str | None,
        src: Source,
        why: str,
        code: ReasonCode,
        ident: str | None = None,
        was: str = "",
    ) -> None:
        key = self._key(src)
        ident = ident or f"model/{name}"
        extra = DeleteParams(was=was or None)
        if isinstance(src, OllamaSource) and (model := self.ollama.get(key)):
            self.actions.append(
                Action(
                    ident,
                    "delete",
                    "ollama.delete",
                    str(src),
                    0,
                    model.size,
                    why,
                    name,
                    extra,
                    code,
                )
            )
        elif isinstance(src, HfSource) and (repo := self.hf.get(key)):
            self.actions.append(
                Action(
                    ident,
                    "delete",
                    "hf.delete",
                    str(src),
                    0,
                    repo.size_on_disk,
                    why,
                    name,
                    extra,
                    code,
                )
            )

    def _replaced(self, name: str, src: Source) -> ManagedModel | None:
        """The managed model this name used to stand for, if its source changed (prune only)."""
        if not self.spec.settings.prune:
            return None
        ws = self.facts.workspace or ""
        for managed in self.facts.owned():
            key = self._managed_key(managed)
            if managed.name_in(ws) == name and key != self._key(src) and key not in self.declared:
                return managed
        return None

    def _as_replace(self, name: str, m: ModelSpec, action: Action, old: ManagedModel) -> Action:
        old_src = _parse(old.source)
        freed = self._present_size(old_src) if old_src else None
        if not freed:
            return action
        reason = f"source changed: {old.source} → {action.subject}"
        self._protect_problem(name, m, reason, "replace")
        p = action.params
        assert isinstance(p, PullParams | DownloadParams)  # only model installs are replaced
        return Action(
            action.id,
            "replace",
            action.kind,
            action.subject,
            action.download_bytes,
            freed,
            reason,
            name,
            replace(p, replaces=old.source),
            "source-changed",
        )

    def _protect_problem(self, name: str, m: ModelSpec, reason: str, verb: str) -> None:
        if m.protect and (not self.targets or name in self.targets):
            self.problems.append(
                PlanProblem(
                    f"models.{name} is protected (protect: true) but the plan would {verb} it "
                    f"({reason})",
                    name,
                    "protect",
                )
            )

    def _present_size(self, src: Source) -> int | None:
        if isinstance(src, OllamaSource) and (model := self.ollama.get(self._key(src))):
            return model.size
        if isinstance(src, HfSource) and (repo := self.hf.get(self._key(src))):
            return repo.size_on_disk
        return None

    def prune(self) -> None:
        self._legacy_warning()
        undeclared = [m for m in self.facts.owned() if self._managed_key(m) not in self.declared]
        replaced = {
            m.source
            for name, spec_m in self.spec.models.items()
            if (m := self._replaced(name, spec_m.parsed_source))
        }
        pending = [
            m for m in undeclared if m.source not in replaced and _parse(m.source) is not None
        ]
        present = [m for m in pending if self._present_size(_parse(m.source)) is not None]  # type: ignore[arg-type]
        for managed in pending:
            if managed not in present:
                self._forget(managed, "no longer in mlx.yaml and gone from its store")
        if not self.spec.settings.prune:
            if present:
                names = ", ".join(m.source for m in present)
                self.warnings.append(
                    f"installed by mlx but no longer declared: {names} "
                    "(prune: true would delete them)"
                )
            return
        for managed in present:
            src = _parse(managed.source)
            assert src is not None
            if self._release(managed, "no longer in mlx.yaml (prune: true)"):
                continue
            self._delete(
                None,
                src,
                "installed by mlx, no longer in mlx.yaml (prune: true)",
                "prune",
                f"prune/{managed.source}",
                # The name this file gave it, not whichever file recorded the row last.
                was=managed.name_in(self.facts.workspace or "") or managed.name,
            )

    def _key(self, src: Source) -> str:
        return _key(src, self.fold)

    def _managed_key(self, managed: ManagedModel) -> str:
        return _managed_key(managed, self.fold)

    def _legacy_warning(self) -> None:
        legacy = [
            m.source
            for m in self.facts.models
            if m.owner_names == (LEGACY,)
            and self._managed_key(m) not in self.declared
            and (src := _parse(m.source)) is not None
            and self._present_size(src) is not None
        ]
        if legacy and self.facts.workspace is not None:
            self.warnings.append(
                f"installed by mlx before workspaces existed, not declared here: "
                f"{', '.join(legacy)}; no file prunes them until one claims them "
                "(`mlx import SOURCE` to own one here, `mlx forget SOURCE` to leave it to you)"
            )

    # -- whole-plan checks ------------------------------------------------------------------

    def check_min_free(self) -> None:
        need: dict[int, list[int]] = {}
        roots = {"ollama": self.observed.ollama.root, "hf": self.observed.hf.root}
        for action in self.actions:
            if action.family == "link":
                continue
            store = self._store_of(action)
            # A replace frees space where the OLD source lives, which may be the other store.
            old = action.replaces or ""
            freed_store = ("ollama" if old.startswith("ollama://") else "hf") if old else store
            for side, root, amount in (
                (1, roots[store], action.download_bytes or 0),
                (2, roots[freed_store], action.free_bytes or 0),
            ):
                disk = self.observed.disk_for(root)
                if disk is not None:
                    need.setdefault(disk.device, [disk.free, 0, 0])[side] += amount
        minimum = int(self.spec.settings.disk.min_free)
        for device, (free, download, freed) in need.items():
            after = free + freed - download
            if download and after < minimum:
                path = next(d.path for d in self.observed.disk if d.device == device)
                self.problems.append(
                    PlanProblem(
                        f"not enough disk space on the filesystem of {path}: downloads need "
                        f"{human_bytes(download)}, {human_bytes(free)} free now, "
                        f"{human_bytes(max(after, 0))} after the plan; "
                        f"settings.disk.min_free is {human_bytes(minimum)}",
                        where=("settings", "disk", "min_free") if self._min_free_set() else (),
                    )
                )

    def _store_of(self, action: Action) -> str:
        """Which store's filesystem an action downloads to or frees space on."""
        if action.family == "ollama":
            return "ollama"
        if action.family in ("cleanup", "dedup"):
            subject = Path(action.subject)
            return "ollama" if subject.is_relative_to(self.observed.ollama.root) else "hf"
        return "hf"

    def _min_free_set(self) -> bool:
        return "min_free" in self.spec.settings.disk.model_fields_set

    def check_protected(self) -> None:
        for action in self.actions:
            if action.op == "delete" and action.model and self.spec.models[action.model].protect:
                self.problems.append(
                    PlanProblem(
                        f"models.{action.model} is protected but the plan would delete it",
                        action.model,
                        "protect",
                    )
                )


def make_plan(
    spec: Spec,
    observed: Observed,
    facts: RegistryFacts,
    *,
    targets: Sequence[str] = (),
    remote: Mapping[tuple[str, str], RemoteRepo] | None = None,
) -> Plan:
    """Diff ``spec`` against ``observed`` (and the registry); no I/O."""
    planner = _Planner(spec, observed, facts, remote or {})
    planner.targets = tuple(targets)
    unknown = [t for t in targets if t not in spec.models]
    for target in unknown:
        planner.problems.append(
            PlanProblem(f"--target {target}: no model named {target!r} in mlx.yaml")
        )
    for name, model in spec.models.items():
        planner.model(name, model)
    planner.prune()
    links = plan_links(spec, observed, facts, planner.actions)
    # What the observers could not read (an unreadable manifest, a bad app folder) decides
    # what the plan can see: say so here too, not only in `mlx status`.
    planner.warnings += [*observed.ollama.warnings, *observed.hf.warnings, *links.warnings]
    cleanups = plan_cleanups(spec, observed) if not targets else []
    done = frozenset((str(d.path), str(d.canonical)) for d in facts.dedups)
    dedups, dedup_warnings = plan_dedup(spec, observed, done) if not targets else ([], [])
    planner.warnings += dedup_warnings
    actions = planner.actions + list(links.actions) + cleanups + dedups
    if targets:
        actions = [a for a in actions if a.model in targets]
        planner.warnings.insert(
            0, f"partial plan: only {', '.join(targets)} (--target); other changes are not shown"
        )
    planner.actions = _exclusive_ollama_frees(sorted(actions, key=_order), observed)
    planner.check_protected()
    planner.check_min_free()
    planner.warnings += _unknown_size_warnings(planner.actions)
    return Plan(
        tuple(planner.actions),
        tuple(planner.warnings),
        tuple(planner.problems),
        bool(targets),
        conflicts=links.conflicts,
    )


def _order(action: Action) -> tuple[int, int, str]:
    """Links to remove first (before their model goes), then models (deletes first: they
    free space), then the links that point at the models just installed."""
    phase = 1
    if action.family in ("cleanup", "dedup"):
        phase = -1  # garbage and duplicates go first: they free space for the downloads
    elif action.family == "link":
        phase = 0 if action.op == "delete" else 2
    return phase, OP_ORDER[action.op], action.id


def _hf_update(
    name: str, src: HfSource, size: int | None, reason: str, opts: DownloadParams, code: ReasonCode
) -> Action:
    return Action(
        f"model/{name}", "update", "hf.download", str(src), size, 0, reason, name, opts, code
    )


def _exclusive_ollama_frees(actions: list[Action], observed: Observed) -> list[Action]:
    """An Ollama delete (or the old side of a replace) frees only blobs no remaining model
    uses (models share layers: `ollama cp` aliases share all of them), counted once."""

    def removed(action: Action) -> Source | None:
        if action.kind == "ollama.delete":
            return _parse(action.subject)
        old = action.replaces or ""
        return _parse(old) if action.op == "replace" and old.startswith("ollama://") else None

    by_key = {ollama_key(m): m for m in observed.ollama.models}
    gone = {_key(s) for a in actions if (s := removed(a)) is not None}
    kept = {d.digest for k, m in by_key.items() if k not in gone for d in m.all_layers}
    counted: set[str] = set()
    out = []
    for action in actions:
        src = removed(action)
        model = by_key.get(_key(src)) if src is not None else None
        if model is not None:
            sizes = {x.digest: x.on_disk or 0 for x in model.all_layers}
            freed = sum(n for d, n in sizes.items() if d not in kept and d not in counted)
            counted |= set(sizes)
            action = replace(action, free_bytes=freed)
        out.append(action)
    return out


def _unknown_size_warnings(actions: Sequence[Action]) -> list[str]:
    ollama = sum(a.download_bytes is None and a.kind == "ollama.pull" for a in actions)
    hf = sum(a.download_bytes is None and a.kind == "hf.download" for a in actions)
    out = []
    if ollama:
        out.append(
            f"download size unknown for {ollama} Ollama pull{'s' if ollama != 1 else ''} "
            "(the registry is only asked during the pull)"
        )
    if hf:
        out.append(
            f"download size unknown for {hf} Hugging Face repo{'s' if hf != 1 else ''} "
            "not listed locally; `mlx plan --refresh` asks the hub"
        )
    return out


def _managed_key(managed: ManagedModel, fold: bool = False) -> str:
    """A registry row's source in canonical form (``ollama://llama3`` = ``…llama3:latest``)."""
    src = _parse(managed.source)
    return _key(src, fold) if src is not None else managed.source


def _key(src: Source, fold: bool = False) -> str:
    if isinstance(src, OllamaSource):
        return ollama_key(src)
    if isinstance(src, HfSource):
        return hf_key(src, fold)
    return str(src)


def _parse(source: str) -> Source | None:
    try:
        return parse_source(source)
    except ValueError:
        return None


def _as_listing(rev: HfRevision) -> list[RemoteFile]:
    return [RemoteFile(f.path, f.size, f.blob) for f in rev.files]


def _missing_files(
    rev: HfRevision, expected: Iterable[RemoteFile] | None, m: ModelSpec
) -> set[str]:
    if expected is None:
        return set()
    return {
        f.path for f in wanted_files(expected, m.include, m.exclude) if not rev.has_file(f.path)
    }


def _download_size(files: Iterable[RemoteFile], m: ModelSpec, repo: HfRepo | None) -> int:
    """Bytes to fetch: wanted files whose blob the repo does not hold yet (blobs are shared
    across revisions, so a new revision only costs its new blobs)."""
    have = {f.blob for r in repo.revisions for f in r.files if f.present} if repo else set()
    blobs = {f.blob: f.size for f in wanted_files(files, m.include, m.exclude)}
    return sum(size for blob, size in blobs.items() if blob not in have)


def _revision_reason(
    want: str, pinned: bool, local: str | None, remote: RemoteRepo | None
) -> tuple[str, ReasonCode]:
    if pinned:
        return f"pinned commit {want[:12]} is not cached", "revision-not-cached"
    if remote is not None and local and remote.commit != local:
        return f"{want}: {local[:12]} → {remote.commit[:12]} (new on the hub)", "revision-moved"
    if local:
        return f"{want} points to {local[:12]}, which is not cached", "revision-not-cached"
    return f"revision {want!r} is not cached", "revision-not-cached"


def fingerprint(spec: Spec, observed: Observed, facts: RegistryFacts) -> str:
    """sha256 over the observed facts a plan depends on: the declared and managed models'
    store entries, the registry's managed set, and which file:// sources exist. Times and
    free space are left out (free space is re-checked right before each download)."""
    fold = observed.hf.case_insensitive
    keys = {_key(m.parsed_source, fold) for m in spec.models.values()} | {
        _managed_key(m, fold) for m in facts.models
    }
    digest = hashlib.sha256()

    def feed(item: object) -> None:
        digest.update(json.dumps(item, sort_keys=True, default=str).encode())
        digest.update(b"\n")

    for model in observed.ollama.models:
        if ollama_key(model) in keys:
            feed(["ollama", model.name, model.manifest_digest, model.problems])
    for repo in observed.hf.repos:
        if repo.repo_type == "model" and hf_key(repo, fold) in keys:
            feed(["hf", repo.repo_id, repo.refs])
            for rev in repo.revisions:
                feed([rev.commit, [(f.path, f.blob, f.present) for f in rev.files]])
                # The hub listing decides repairs, so it is a fact the plan depends on.
                feed([(f.path, f.blob, f.size) for f in rev.remote or ()])
    feed(sorted((m.source, m.name, m.owners) for m in facts.models))
    feed(facts.workspace)
    feed(sorted(str(p) for p in observed.existing_files))
    return digest.hexdigest()
