"""The engine: one :class:`Session` that every front-end calls (docs/architecture.md).

The CLI, the watch agent, the dashboard and the Python API all plan, apply and observe
through a Session, so the rules that keep a machine safe — ownership, confinement, the
apply lock, the journal — live in one place. A Session computes and returns typed values;
it prints nothing. Front-ends render those values and ask their user through callbacks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxstate.errors import PlanError, SpecNotFound

if TYPE_CHECKING:
    from mlxstate.apply.executor import Outcome
    from mlxstate.apply.journal import Interrupted
    from mlxstate.apply.progress import Display
    from mlxstate.facts import Observed
    from mlxstate.hosts import Host
    from mlxstate.lock.use import LockMode, LockUse
    from mlxstate.mlxyaml.load import LoadedSpec
    from mlxstate.observe.duplicates import HashCache
    from mlxstate.observe.hash_progress import HashProgress
    from mlxstate.one_model import ResolvedModel
    from mlxstate.ownership import Forgotten, Imported
    from mlxstate.plan.actions import Action, Plan
    from mlxstate.registry import Registry, RegistryFacts
    from mlxstate.saved_plan import SavedPlan
    from mlxstate.seams import Seams
    from mlxstate.settings import Environment, Settings
    from mlxstate.verify import VerifyReport

__all__ = [
    "ApplyResult",
    "PlanOptions",
    "PlannedRun",
    "Session",
    "StatusReport",
    "is_destructive",
]

Log = Callable[[str], None]
# Called once the plan is known (its actions may be empty): show it, ask if needed; False
# stops the apply before anything changes.
Review = Callable[["PlannedRun", "tuple[Action, ...]"], bool]
Progress = Callable[[], AbstractContextManager["Display"]]


@dataclass(frozen=True)
class PlanOptions:
    targets: tuple[str, ...] = ()  # --target: only these models
    refresh: bool = False  # --refresh: ask the hub for branch heads and sizes
    lock: LockMode = "off"  # --locked / --frozen: follow mlx.lock (docs/lock.md)
    host: Host | None = None  # --host: plan as that machine (None: this one)
    cleanup_only: bool = False  # `mlx clean`: every cleanup, nothing else (plan/cleanup.py)


@dataclass(frozen=True)
class PlannedRun:
    """Everything a plan was made from, kept for rendering, ``--out`` and apply."""

    loaded: LoadedSpec
    settings: Settings
    observed: Observed
    facts: RegistryFacts
    plan: Plan
    fingerprint: str
    options: PlanOptions
    host: Host
    lock: LockUse | None = None  # the mlx.lock this plan follows

    def document(self) -> dict[str, Any]:
        """The plan JSON (docs/plan-json.md)."""
        from mlxstate.plan.render import plan_json

        doc = plan_json(
            self.plan,
            spec_path=str(self.loaded.path),
            spec_sha256=self.loaded.sha256,
            fingerprint=self.fingerprint,
        )
        doc["workspace"] = self.settings.workspace
        doc["host"] = self.host.document()
        doc["options"] = {
            "refresh": self.options.refresh,
            "targets": list(self.options.targets),
            "locked": self.options.lock == "locked",
            "frozen": self.options.lock == "frozen",
        }
        if self.lock is not None:  # a saved plan runs only against these lock bytes
            doc["lock"] = {"path": str(self.lock.path), "sha256": self.lock.sha256}
        return doc


@dataclass(frozen=True)
class ApplyResult:
    planned: PlannedRun
    actions: tuple[Action, ...]  # what was carried out (all of the plan, or a saved plan's)
    outcomes: tuple[Outcome, ...]
    proceeded: bool = True  # False: the review said no (nothing changed)
    held: tuple[Action, ...] = ()  # destructive actions left out (hold_destructive)

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.status in ("failed", "skipped"))


@dataclass(frozen=True)
class StatusReport:
    """The ``mlx status`` document (docs/status-json.md) and how it was made."""

    document: dict[str, Any]


class Session:
    """One mlx.yaml (or none) on this machine, with the environment it was found in."""

    def __init__(
        self, env: Environment, file: Path | None = None, seams: Seams | None = None
    ) -> None:
        from mlxstate.seams import CURRENT

        self.env, self.file = env, file
        # Side effects (clock, free space, cloner) come in here, never through patches.
        self.seams = seams or CURRENT.get()

    @classmethod
    def from_environment(cls, file: Path | None = None) -> Session:
        from mlxstate.settings import read_environment

        return cls(read_environment(), file)

    # -- the file and its settings ---------------------------------------------------------

    def find_spec(self) -> tuple[Path, str]:
        """(path, how to show it) of the mlx.yaml to use, or :class:`SpecNotFound`
        (docs/mlx-yaml.md, "How the file is found")."""
        if self.file is not None:
            if self.file.exists() or self.file.is_symlink():
                return self.file, str(self.file)
            raise SpecNotFound([self.file])
        from mlxstate.settings import spec_candidates

        candidates = spec_candidates(self.env)
        if self.env.MLX_FILE:
            # An explicit $MLX_FILE that names no file is a mistake, not a hint to look
            # elsewhere: silently using another mlx.yaml would act on the wrong machine state.
            chosen = candidates[0]
            if chosen.exists():
                return chosen, str(chosen)
            raise SpecNotFound([f"{chosen} (from $MLX_FILE)"])
        for place in candidates:
            if place.is_file():
                return place, str(place)
        raise SpecNotFound(candidates)

    def load(self) -> LoadedSpec:
        from mlxstate.mlxyaml.load import load_spec

        path, shown = self.find_spec()
        return load_spec(path, self.env, display=shown)

    def load_optional(self) -> LoadedSpec | None:
        """The spec if one is found (it must be valid); ``None`` when there is none at all."""
        try:
            return self.load()
        except SpecNotFound:
            if self.file is not None or self.env.MLX_FILE:
                raise  # asked for by name: its absence is an error
            return None

    def settings(self, loaded: LoadedSpec | None) -> Settings:
        from mlxstate.settings import resolve

        if loaded is None:
            return resolve(None, self.env)
        return resolve(loaded.spec.settings, self.env, loaded.path)

    # -- plan ------------------------------------------------------------------------------

    def plan(
        self,
        targets: Sequence[str] = (),
        refresh: bool = False,
        lock: LockMode = "off",
        host: Host | None = None,
        cleanup_only: bool = False,
    ) -> PlannedRun:
        """Load, observe, read the registry, plan. Changes nothing; PlanError on problems.
        ``lock``: ``locked`` refuses a missing or stale mlx.lock, ``frozen`` uses it as is.
        ``host``: plan as that machine would (``mlx plan --host``). ``cleanup_only``: the
        plan of ``mlx clean`` (every cleanup, nothing else)."""
        loaded = self.load()
        options = PlanOptions(tuple(targets), refresh, lock, host, cleanup_only)
        return self._plan(loaded, self.settings(loaded), None, options)

    def host(self) -> Host:
        """This machine as ``when:`` sees it: ``$MLX_HOST`` or the short hostname, its
        memory and OS (docs/mlx-yaml.md, "Hosts")."""
        from mlxstate.errors import MlxError
        from mlxstate.hosts import Host, host_name, os_of

        try:
            name = host_name(self.env.MLX_HOST)
        except ValueError as exc:
            raise MlxError(f"$MLX_HOST: {exc}") from None
        return Host(name, self.seams.memory_total(), os_of(self.seams.platform))

    def _plan(
        self,
        loaded: LoadedSpec,
        settings: Settings,
        registry: Registry | None,
        options: PlanOptions,
    ) -> PlannedRun:
        from mlxstate.lock.use import load_lock_use
        from mlxstate.observe.scan import observe
        from mlxstate.plan.fingerprint import fingerprint
        from mlxstate.plan.planner import make_plan
        from mlxstate.registry import read_facts

        # Before anything is observed: a missing or stale lock stops here (exit 1).
        lock = load_lock_use(options.lock, loaded.path, loaded.spec.models)
        facts = (
            registry.facts(settings.workspace)
            if registry is not None
            else read_facts(settings.state_dir, settings.workspace)
        )
        # No daemon probe (plan stays offline), and the duplicate search (which may hash
        # plain app files, cached in the registry) only when settings.dedup asks for it.
        dedup_on = loaded.spec.settings.dedup != "off" and not options.cleanup_only
        observed = observe(
            settings,
            loaded.spec,
            probe=False,
            duplicates=dedup_on,
            hash_cache=registry_hash_cache(settings.state_dir, registry) if dedup_on else None,
            managed_links=tuple((link.app, link.path) for link in facts.links),
            seams=self.seams,
        )
        host = options.host or self.host()
        # Snapshots mlx.lock pins are made by commit (no ref names them): even when the lock
        # is not followed, they are never cleaned up as detached revisions.
        detached = options.cleanup_only or loaded.spec.settings.cleanup.detached_revisions
        kept = _lock_commits(loaded.path) if lock is None and detached else None
        if options.cleanup_only:
            from mlxstate.plan.cleanup import cleanup_plan

            plan = cleanup_plan(loaded.spec, observed, kept)
            fp = fingerprint(loaded.spec, observed, facts)
            return PlannedRun(loaded, settings, observed, facts, plan, fp, options, host)
        remote = _hub_facts(loaded, settings) if options.refresh else None
        plan = make_plan(
            loaded.spec,
            observed,
            facts,
            targets=options.targets,
            remote=remote,
            pins=lock.pins if lock is not None else None,
            host=host,
            kept_commits=kept,
        )
        if plan.problems:
            raise plan_error(plan, loaded)
        if notes := _lock_warnings(lock, loaded.path, options.targets):
            plan = replace(plan, warnings=(*plan.warnings, *notes))
        if (shared := _shared_workspace(settings.workspace, loaded.path, facts)) is not None:
            plan = replace(plan, warnings=(*plan.warnings, shared))
        fp = fingerprint(loaded.spec, observed, facts)
        return PlannedRun(loaded, settings, observed, facts, plan, fp, options, host, lock)

    # -- apply -----------------------------------------------------------------------------

    def apply(
        self,
        *,
        review: Review,
        progress: Progress,
        targets: Sequence[str] = (),
        saved: SavedPlan | None = None,
        lock_timeout: float = 0.0,
        log: Log = lambda _: None,
        hold_destructive: bool = False,
        loaded: LoadedSpec | None = None,
        lock: LockMode = "off",
        cleanup_only: bool = False,
    ) -> ApplyResult:
        """Plan under the apply lock and carry the plan out (or the saved plan's actions a
        fresh plan also contains). The spec is parsed once and the registry opened once.
        ``hold_destructive``: leave out what deletes or replaces bytes or links (the watch
        agent's ``deletes: hold``) and return those actions as ``held``. ``loaded``: the
        spec the caller already parsed (the watch agent: what it validated is what runs).
        ``lock``: follow mlx.lock (``locked``/``frozen``); a saved plan brings its own.
        ``cleanup_only``: carry out ``mlx clean``'s plan (see :meth:`clean`)."""
        from mlxstate.apply.lock import apply_lock
        from mlxstate.registry import Registry

        if saved is not None and self.file is None:
            self.file = saved.spec_path
        if loaded is None:
            loaded = self.load()
        settings = self.settings(loaded)
        warnings: list[str] = []
        with apply_lock(settings.state_dir, lock_timeout, warnings):
            for warning in warnings:
                log(f"warning: {warning}")
            with Registry.open(settings.state_dir) as registry:
                self._recover(settings, registry, log)
                options = (
                    PlanOptions(saved.targets, saved.refresh, saved.lock)
                    if saved is not None
                    else PlanOptions(tuple(targets), lock=lock, cleanup_only=cleanup_only)
                )
                planned = self._plan(loaded, settings, registry, options)
                actions = self._authorized(planned, saved)
                held: tuple[Action, ...] = ()
                if hold_destructive:
                    held = tuple(a for a in actions if is_destructive(a))
                    actions = tuple(a for a in actions if not is_destructive(a))
                if not review(planned, actions):
                    return ApplyResult(planned, actions, (), proceeded=False, held=held)
                if not actions:
                    return ApplyResult(planned, actions, (), held=held)
                outcomes = self._execute(planned, registry, actions, progress)
        return ApplyResult(planned, actions, outcomes, held=held)

    def clean(
        self,
        *,
        review: Review,
        progress: Progress,
        lock_timeout: float = 0.0,
        log: Log = lambda _: None,
    ) -> ApplyResult:
        """``mlx clean``: plan every cleanup (stale partials, orphan blobs, detached
        revisions), whatever ``settings.cleanup`` says, and carry them out like ``apply``
        does: the same lock, journal, executor and re-checks, so the same confinement."""
        return self.apply(
            review=review, progress=progress, lock_timeout=lock_timeout, log=log, cleanup_only=True
        )

    def _authorized(self, planned: PlannedRun, saved: SavedPlan | None) -> tuple[Action, ...]:
        if saved is None:
            return planned.plan.actions
        from mlxstate.saved_plan import authorized, check_fresh, check_host, check_lock_fresh

        check_host(saved, planned.host.name)
        check_fresh(saved, planned.loaded.path, planned.loaded.display, planned.fingerprint)
        check_lock_fresh(saved, planned.lock.sha256 if planned.lock is not None else None)
        return authorized(saved, planned.plan.actions)

    def _recover(self, settings: Settings, registry: Registry, log: Log) -> Interrupted | None:
        """Finish the bookkeeping of an apply that was killed, once."""
        from mlxstate.apply.executor import adopt_interrupted
        from mlxstate.apply.journal import close_interrupted, read_interrupted

        interrupted = read_interrupted(settings.state_dir)
        if interrupted is not None:
            log(interrupted_text(interrupted))
            adopt_interrupted(interrupted, settings, registry, log)
            # Adopted once: a later apply must not adopt it again (journal.py).
            close_interrupted(settings.state_dir, interrupted)
        return interrupted

    def _execute(
        self,
        planned: PlannedRun,
        registry: Registry,
        actions: tuple[Action, ...],
        progress: Progress,
    ) -> tuple[Outcome, ...]:
        from mlxstate.apply.executor import Executor
        from mlxstate.apply.journal import Journal

        settings = planned.settings
        if settings.workspace:
            with registry.transaction():  # which file this workspace applies from
                registry.seen_workspace(settings.workspace, planned.loaded.path.resolve())
        journal = Journal(settings.state_dir, settings.workspace)
        with progress() as display:
            executor = Executor(
                settings,
                registry,
                journal,
                display,
                spec=planned.loaded.spec,
                seams=self.seams,
                lock=planned.lock,
            )
            outcomes = executor.execute(actions)
        journal.close(finished=True)
        return tuple(outcomes)

    # -- one model (`mlx which`, the Python API) --------------------------------------------

    def resolve(self, name: str, loaded: LoadedSpec | None = None) -> ResolvedModel:
        """What the declared model ``name`` (or a declared source) is on disk: reads only its
        manifest or repo folder, offline. NotDeclared when mlx.yaml has no such model.
        ``loaded``: the spec the caller already parsed (the API keeps one per file content)."""
        from mlxstate.one_model import resolve_declared

        loaded = loaded or self.load()
        return resolve_declared(loaded, self.settings(loaded), name)

    def ensure(
        self,
        name: str,
        progress: Progress,
        lock_timeout: float = 0.0,
        log: Log = lambda _: None,
    ) -> ResolvedModel:
        """Install one declared model if it is not complete on disk: ``apply --target NAME``
        (the same lock, journal and executor), then resolve it again."""
        from mlxstate.errors import EnsureFailed, NotPresent
        from mlxstate.one_model import declared_name, resolve_declared

        loaded = self.load()
        settings = self.settings(loaded)
        name = declared_name(loaded.spec, name)
        if loaded.spec.models[name].ensure == "absent":
            raise NotPresent(f"{name} is declared `ensure: absent` in mlx.yaml: not installing it")
        found = resolve_declared(loaded, settings, name)
        if found.present:
            return found  # nothing to do: no lock taken, nothing journaled
        result = self.apply(
            review=lambda _planned, _actions: True,
            progress=progress,
            targets=[name],
            loaded=loaded,
            lock_timeout=lock_timeout,
            log=log,
        )
        if result.failed:
            why = "; ".join(f"{o.action.id}: {o.detail or o.status}" for o in result.failed)
            raise EnsureFailed(f"could not install {name}: {why}")
        found = resolve_declared(loaded, settings, name)
        if not found.present:
            skipped = any(s.id == f"model/{name}" for s in result.planned.plan.skipped)
            why = "its `when:` leaves it off this host" if skipped else "the plan had nothing to do"
            raise NotPresent(f"{name} is not installed: {why}")
        return found

    # -- ownership -------------------------------------------------------------------------

    def import_model(self, source: str, name: str | None = None, wait: float = 0.0) -> Imported:
        """``mlx import``: make an installed model managed by this mlx.yaml's workspace."""
        from mlxstate.ownership import import_model

        loaded = self.load()
        return import_model(loaded, self.settings(loaded), source, name, wait)

    def forget(self, source: str, wait: float = 0.0) -> Forgotten:
        """``mlx forget``: drop this workspace's claim on a model; files stay."""
        from mlxstate.ownership import forget_model

        return forget_model(self.settings(self.load()), source, wait)

    # -- verify ----------------------------------------------------------------------------

    def verify(
        self,
        names: Sequence[str] = (),
        progress: HashProgress | None = None,
        use_cache: bool = True,
        jobs: int | None = None,
    ) -> VerifyReport:
        """``mlx verify``: re-hash the stored files of ``names`` (mlx.yaml names or sources;
        none: every model in the Ollama store and the HF cache) against their names. Reads
        the stores only; the registry's hash cache learns what it hashed."""
        from mlxstate.errors import MlxError
        from mlxstate.keys import declared_by_key
        from mlxstate.observe.ollama_store import scan_ollama_store
        from mlxstate.observe.scan import scan_hf
        from mlxstate.verify import checks_of, model_keys, run_checks

        loaded = self.load_optional()
        settings = self.settings(loaded)
        declared = {n: k for k, n in declared_by_key(loaded.spec if loaded else None).items()}
        keys = model_keys(names, declared)
        seen: set[str] = set()

        def wanted(key: str) -> bool:
            if not names or key.lower() in keys.values():
                seen.add(key.lower())
                return True
            return False

        ollama = scan_ollama_store(settings.ollama_models_dir)
        hf = scan_hf(settings.hf_cache_dir, self.seams.folds_case)
        checks, missing = checks_of(ollama, hf, wanted)
        if unknown := [n for n, k in keys.items() if k not in seen]:
            raise MlxError(
                f"not installed: {', '.join(unknown)} (neither in the Ollama store nor the "
                "HF cache)",
                hint="name a model of mlx.yaml or a source `mlx status` lists",
            )
        cache = registry_hash_cache(settings.state_dir) if use_cache else None
        report = run_checks(checks, cache, progress, jobs)
        return replace(report, problems=(*missing, *report.problems))

    # -- stats -----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """The ``mlx stats`` document (docs/commands.md): bytes per store, saved by dedup
        and links, reclaimable, reclaimed over time. Only reads."""
        from mlxstate.observe.scan import observe
        from mlxstate.registry import read_facts
        from mlxstate.stats import build_stats
        from mlxstate.status import reclaimable

        loaded = self.load_optional()
        settings = self.settings(loaded)
        spec = loaded.spec if loaded else None
        facts = read_facts(settings.state_dir, settings.workspace)
        observed = observe(
            settings,
            spec,
            probe=False,
            hash_cache=registry_hash_cache(settings.state_dir),
            lmstudio_models=self.env.lmstudio_home() / "models",
            seams=self.seams,
        )
        return build_stats(observed, facts, reclaimable(observed, spec), settings.state_dir)

    # -- status ----------------------------------------------------------------------------

    def status(self) -> StatusReport:
        """Observe everything and build the ``mlx status`` document. Only reads: an invalid
        mlx.yaml hides the declarations, not the inventory."""
        from mlxstate.errors import SpecError
        from mlxstate.observe.scan import observe
        from mlxstate.registry import read_facts
        from mlxstate.status import build_status

        invalid: tuple[Path, str, int] | None = None
        try:
            loaded = self.load_optional()
        except SpecError as exc:
            path, shown = self.find_spec()
            loaded, invalid = None, (path.absolute(), shown, max(1, len(exc.diagnostics)))
        settings = self.settings(loaded)
        facts = read_facts(settings.state_dir, settings.workspace)
        spec = loaded.spec if loaded else None
        observed = observe(
            settings,
            spec,
            hash_cache=registry_hash_cache(settings.state_dir),
            lmstudio_models=self.env.lmstudio_home() / "models",
            seams=self.seams,
        )
        spec_path = loaded.path if loaded else None
        document = build_status(observed, spec, facts, spec_path, invalid_spec=invalid)
        from mlxstate.watch.state import read_agent

        document["agent"] = read_agent(settings.state_dir)  # docs/watch.md
        document["host"] = self.host().document()  # what `when:` matches (docs/mlx-yaml.md)
        return StatusReport(document)


# -- helpers -------------------------------------------------------------------------------


def is_destructive(action: Action) -> bool:
    """Does ``action`` delete or replace bytes or links? Dropping a registry claim frees
    nothing and loses no data, so it is not; every cleanup is, whatever its op."""
    if action.kind == "registry.release":
        return False
    return action.op in ("delete", "replace") or action.family == "cleanup"


def registry_hash_cache(state_dir: Path, registry: Registry | None = None) -> HashCache:
    """The hash cache in the registry: ``registry`` if open, else opened only if a file
    actually needs hashing."""
    from mlxstate.registry import Registry

    holder: list[Registry] = [registry] if registry is not None else []

    def open_registry() -> Registry:
        if not holder:
            holder.append(Registry.open(state_dir))
        return holder[0]

    def lookup(dev: int, ino: int, size: int, mtime_ns: int) -> str | None:
        return open_registry().cached_hash(dev, ino, size, mtime_ns)

    def store(dev: int, ino: int, size: int, mtime_ns: int, sha256: str) -> None:
        open_registry().remember_hash(dev, ino, size, mtime_ns, sha256)

    return lookup, store


def plan_error(plan: Plan, loaded: LoadedSpec) -> PlanError:
    """Every problem on one line each, with the mlx.yaml position of the model it is about."""
    lines = []
    for problem in plan.problems:
        if problem.model or problem.where:
            path: tuple[str, ...] = problem.where or (
                "models",
                problem.model or "",
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


def interrupted_text(interrupted: Interrupted) -> str:
    import time

    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(interrupted.started))
    doing = ", ".join(
        f"{e.get('action')} ({e.get('kind')} {e.get('subject')})" for e in interrupted.in_flight
    )
    return (
        f"warning: the previous apply (started {when}) was interrupted"
        + (f" during {doing}" if doing else "")
        + "; planning again from what is on disk now"
    )


def _lock_warnings(lock: LockUse | None, spec_path: Path, targets: Sequence[str]) -> list[str]:
    """Say when mlx.lock is there but not followed, and (--frozen) which models it does not
    pin: those are installed as mlx.yaml says, unpinned."""
    from mlxstate.lock.model import lock_path

    if lock is None:
        there = lock_path(spec_path)
        if there.is_file():
            return [f"{there.name} is not followed: pass --locked or --frozen to install its pins"]
        return []
    return [
        f"{name}: not pinned by {lock.path.name} (--frozen): planned from mlx.yaml as is"
        for name in lock.unpinned
        if not targets or name in targets
    ]


def _hub_facts(loaded: LoadedSpec, settings: Settings) -> Any:
    from mlxstate.observe.hub import hub_facts

    return hub_facts(loaded.spec, settings)


def _shared_workspace(workspace: str | None, path: Path, facts: RegistryFacts) -> str | None:
    """settings.workspace names a workspace another mlx.yaml applied last: both files now
    own (and may prune) the same models. Deliberate for one dotfiles repo cloned twice; a
    surprise otherwise."""
    import os

    last = dict(facts.workspace_files).get(workspace or "")
    if last is None or os.path.realpath(last) == os.path.realpath(path):
        return None
    return (
        f"workspace {workspace} was last applied from {last}: both files own the same "
        "models (set a different settings.workspace unless they are one dotfiles repo)"
    )


def _lock_commits(spec_path: Path) -> dict[str, str] | None:
    """Model name -> HF commit of the mlx.lock beside ``spec_path``, read only to keep what
    it pins; none there: None. A lock mlx cannot read stops the plan (what it pins is then
    unknown, and a cleanup could delete it)."""
    from mlxstate.lock.model import lock_path, read_lock
    from mlxstate.lock.use import locked_commits

    found = read_lock(lock_path(spec_path))
    return None if found is None else locked_commits(found.models)
