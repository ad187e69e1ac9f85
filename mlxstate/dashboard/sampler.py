"""The snapshot document behind `mlx dashboard`, `mlx menubar` and the agent's
``dashboard.json`` (docs/dashboard.md, "The JSON document").

A :class:`Sampler` keeps state between calls: cheap figures (CPU, memory, the Ollama
daemon, the agent) are read at every call; store scans only every ``stores_every``
seconds or after :meth:`Sampler.stores_changed`; drift comes from the plan summary the
agent recorded after its last reconcile, else from a plan made every ``plan_every``
seconds. Every side effect comes in through the session's seams or a parameter.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxstate.errors import MlxError, SpecError
from mlxstate.text import iso_time

if TYPE_CHECKING:
    import httpx

    from mlxstate.engine import Session
    from mlxstate.facts import Observed, OllamaDaemon
    from mlxstate.mlxyaml.load import LoadedSpec
    from mlxstate.settings import Settings

__all__ = [
    "FORMAT_VERSION",
    "AgentSource",
    "DashboardSettings",
    "Sampler",
    "dashboard_settings",
    "sample",
]

FORMAT_VERSION = "1"
VERSION_EVERY = 30.0  # /api/version changes with a daemon restart; /api/ps at every refresh
SystemSource = Callable[[], dict[str, Any]]
# The agent document (as `mlx status --json` shows it) and the plan summary it recorded.
AgentSource = Callable[["Settings"], tuple[dict[str, Any], dict[str, Any] | None]]


@dataclass(frozen=True)
class DashboardSettings:
    """mlx.yaml's ``dashboard:`` section, in seconds (the defaults without a file)."""

    refresh: float = 1.0
    panels: tuple[str, ...] = ("models", "system", "disk", "benchmarks")
    history: float = 7 * 86400.0


def dashboard_settings(loaded: LoadedSpec | None) -> DashboardSettings:
    if loaded is None:
        return DashboardSettings()
    spec = loaded.spec.dashboard
    return DashboardSettings(
        refresh=spec.refresh.total_seconds(),
        panels=tuple(spec.panels),
        history=spec.history.total_seconds(),
    )


def _read_state(settings: Settings) -> tuple[dict[str, Any], dict[str, Any] | None]:
    from mlxstate.watch.state import read_state

    return read_state(settings.state_dir)


def _host() -> dict[str, Any]:
    from mlxstate.machine import host_facts

    facts = host_facts()
    return {k: facts[k] for k in ("name", "os", "arch", "cpu", "memory_bytes")}


@dataclass
class _Spec:
    """The mlx.yaml the figures are about, loaded again only when its file changes."""

    key: object
    loaded: LoadedSpec | None
    settings: Settings
    error: str | None  # why nothing is declared (no file, an invalid one)


class Sampler:
    """Builds snapshots for one mlx.yaml (or none: stores at their default places)."""

    def __init__(
        self,
        session: Session,
        *,
        system: SystemSource | None = None,
        host: Callable[[], dict[str, Any]] | None = None,
        agent: AgentSource = _read_state,
        client: httpx.Client | None = None,
        stores_every: float = 60.0,
        plan_every: float | None = 60.0,
        bench_every: float = 10.0,
    ) -> None:
        system = system or session.seams.system_figures
        if system is None:
            from mlxstate.dashboard.system import SystemProbe

            system = SystemProbe(platform=session.seams.platform)
        host = host or session.seams.host_facts or _host
        self.session, self.system, self.host, self.agent = session, system, host, agent
        self.clock = session.seams.clock
        self.client = client
        self.stores_every, self.plan_every, self.bench_every = (
            stores_every,
            plan_every,  # None: never plan (the agent: it records its own summary)
            bench_every,
        )
        self._spec: _Spec | None = None
        self._host_doc: dict[str, Any] | None = None
        self._scanned_at: float | None = None  # when the store figures were observed
        self._observation: Observed | None = None  # kept only to compare the next scan with
        self._stale = True  # the stores changed (or were never scanned)
        self._store_docs: list[dict[str, Any]] | None = None  # of the current observation
        self._generation = 0  # bumped when a scan finds the stores different
        self._planned: tuple[float, dict[str, Any]] | None = None
        self._plan_inputs: object = None  # what the last plan was made from
        self._daemon: tuple[float, OllamaDaemon] | None = None
        self._bench: tuple[float, list[dict[str, Any]]] | None = None
        self._agent: tuple[dict[str, Any] | None, dict[str, Any] | None] = (None, None)

    # -- hooks -----------------------------------------------------------------------------

    def stores_changed(self) -> None:
        """Something changed in a store (watchfiles, an apply): scan again at the next call."""
        self._stale = True

    def use_observed(self, observed: Observed, at: float) -> None:
        """A fresh observation made by someone else (the agent's reconcile): no scan needed."""
        self._take(observed, at, self._context())
        self._stale = False

    @property
    def settings(self) -> DashboardSettings:
        return dashboard_settings(self._context().loaded)

    def state_dir(self) -> Path:
        return self._context().settings.state_dir

    def store_roots(self) -> list[Path]:
        """The folders whose changes call for a new scan."""
        settings = self._context().settings
        return [settings.ollama_models_dir, settings.hf_cache_dir]

    # -- the document ----------------------------------------------------------------------

    def sample(self) -> dict[str, Any]:
        now = self.clock()
        spec = self._context()
        agent, summary = self._agent_state(spec.settings)
        if self._host_doc is None:
            self._host_doc = self.host()
        return {
            "format_version": FORMAT_VERSION,
            "time": iso_time(now),
            "host": self._host_doc,
            "system": self.system(),
            "ollama": self._ollama(spec.settings.ollama_host),
            "stores": self._stores(now, spec),
            "drift": self._drift(now, spec, agent, summary),
            "agent": agent,
            "benchmarks": self._benchmarks(now, spec),
        }

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    # -- parts -----------------------------------------------------------------------------

    def _context(self) -> _Spec:
        key = _spec_key(self.session)
        if self._spec is None or self._spec.key != key:
            self._spec = _load(self.session, key)
            self._stale = True
            self._planned = None
        return self._spec

    def _agent_state(
        self, settings: Settings
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        # A registry locked by another process: the last answer stands.
        with contextlib.suppress(Exception):
            self._agent = self.agent(settings)
        return self._agent

    def _ollama(self, host: str) -> dict[str, Any]:
        daemon = self._probe(host)
        return {
            "host": daemon.host,
            "reachable": daemon.reachable,
            "version": daemon.version,
            "error": daemon.error,
            "running": [
                {
                    "name": r.name,
                    "size_bytes": r.size,
                    "vram_bytes": r.size_vram,
                    "expires_at": r.expires_at,
                    "context_length": r.context_length,
                }
                for r in daemon.running
            ],
        }

    def _probe(self, host: str) -> OllamaDaemon:
        from mlxstate.facts import OllamaDaemon
        from mlxstate.observe.scan import port_closed

        if self.client is None and (refused := port_closed(host, timeout=0.2)):
            # Nothing listens: say so without importing httpx or waiting for a timeout.
            self._daemon = None
            return OllamaDaemon(host, False, error=refused)
        from mlxstate._httpx import httpx
        from mlxstate.observe.ollama_api import (
            PROBE_DEADLINE,
            PROBE_TIMEOUT,
            bounded_get,
            probe_daemon,
            running_models,
        )

        if self.client is None:  # kept: one connection per refresh, not a new one each time
            self.client = httpx.Client(timeout=PROBE_TIMEOUT, trust_env=False)
        now = self.clock()
        last = self._daemon
        if last is not None and last[1].host == host and now - last[0] < VERSION_EVERY:
            try:  # the version is known: only /api/ps
                deadline = time.monotonic() + PROBE_DEADLINE
                ps, doc = bounded_get(self.client, f"{host}/api/ps", deadline)
                ps.raise_for_status()
                return replace(last[1], running=running_models(doc))
            except (httpx.HTTPError, ValueError, RecursionError):
                pass  # the full probe says what is wrong
        daemon = probe_daemon(host, self.client)
        self._daemon = (now, daemon) if daemon.reachable else None
        return daemon

    def _stores(self, now: float, spec: _Spec) -> list[dict[str, Any]]:
        due = self._scanned_at is None or now - self._scanned_at >= self.stores_every
        if self._stale or due:
            with contextlib.suppress(MlxError, OSError):  # the last figures stand
                self._take(self._observe(spec), now, spec)
            self._stale = False
        if self._store_docs is None:
            return []
        out = []
        for doc in self._store_docs:  # free space now: one statvfs per store
            space = self.session.seams.disk_space(Path(doc["path"]))
            out.append({**doc, "free_bytes": None if space is None else space.free})
        return out

    def _take(self, observed: Observed, at: float, spec: _Spec) -> None:
        """Store figures from a new observation, computed once (summing 18,000 files at
        every refresh is not free)."""
        from mlxstate.dashboard.stores import store_documents

        previous = self._observation
        if previous is None or _plan_view(previous) != _plan_view(observed):
            self._generation += 1  # the stores are different: drift may be too
        loaded_spec = spec.loaded.spec if spec.loaded else None
        free = self.session.seams.disk_space
        self._store_docs = store_documents(observed, loaded_spec, free, at)
        self._scanned_at = at
        # Kept only to tell whether the next scan differs (a plan is then due). Who plans
        # nothing (the agent) keeps the figures, not the whole observation.
        self._observation = observed if self.plan_every is not None else None

    def _observe(self, spec: _Spec) -> Observed:
        from mlxstate.engine import registry_hash_cache
        from mlxstate.observe.scan import observe

        settings = spec.settings
        return observe(
            settings,
            spec.loaded.spec if spec.loaded else None,
            probe=False,
            hash_cache=registry_hash_cache(settings.state_dir),
            lmstudio_models=self.session.env.lmstudio_home() / "models",
            seams=self.session.seams,
        )

    def _drift(
        self,
        now: float,
        spec: _Spec,
        agent: dict[str, Any] | None,
        summary: dict[str, Any] | None,
    ) -> dict[str, Any]:
        if spec.loaded is None:
            return _drift_doc(None, None, spec.error)
        if summary is not None and (agent or {}).get("running"):
            return _drift_doc(summary, "agent", summary.get("error"))
        if self.plan_every is None:
            return _drift_doc(None, None, "the agent has not reconciled yet")
        # A plan is a function of the file, the stores and the registry: made again every
        # plan_every seconds when one of them changed since the last one, and every ten
        # times that anyway (time alone matters too: a partial download becomes stale).
        inputs = (spec.key, self._generation, _registry_mark(spec.settings.state_dir))
        age = None if self._planned is None else now - self._planned[0]
        if (
            age is None
            or age >= 10 * self.plan_every
            or (age >= self.plan_every and inputs != self._plan_inputs)
        ):
            self._planned, self._plan_inputs = (now, self._plan(now)), inputs
        assert self._planned is not None
        summary = self._planned[1]
        return _drift_doc(summary, "plan", summary.get("error"))

    def _plan(self, now: float) -> dict[str, Any]:
        from mlxstate.watch.state import plan_summary

        try:
            planned = self.session.plan()
        except MlxError as exc:
            return plan_summary(None, (), now, _one_line(exc))
        return plan_summary(planned, planned.plan.actions, now)

    def _benchmarks(self, now: float, spec: _Spec) -> list[dict[str, Any]]:
        from mlxstate.dashboard.bench import benchmark_documents

        if self._bench is None or now - self._bench[0] >= self.bench_every:
            since = now - dashboard_settings(spec.loaded).history
            try:
                self._bench = (now, benchmark_documents(spec.settings.state_dir, since))
            except Exception:  # a locked or older registry: the last answer stands
                if self._bench is None:
                    return []
        return self._bench[1]


def _drift_doc(
    summary: dict[str, Any] | None, source: str | None, error: str | None
) -> dict[str, Any]:
    summary = summary or {}
    return {
        "declared": summary.get("declared"),
        "present": summary.get("present"),
        "pending": summary.get("pending"),
        "source": source if summary else None,
        "at": summary.get("time"),
        "error": error,
    }


def _plan_view(observed: Observed) -> Observed:
    """What a plan depends on: the observation without its time and the access times
    (reading a file can change those, and no plan looks at them)."""
    ollama, hf = observed.ollama, observed.hf
    return replace(
        observed,
        now=0.0,
        ollama=replace(ollama, models=tuple(replace(m, last_used=0.0) for m in ollama.models)),
        hf=replace(hf, repos=tuple(replace(r, last_accessed=0.0) for r in hf.repos)),
    )


def _registry_mark(state_dir: Path) -> tuple[int, ...]:
    """Changes whenever the registry is written (the database or its write-ahead log)."""
    from mlxstate.registry import DB_NAME

    marks = []
    for name in (DB_NAME, f"{DB_NAME}-wal"):
        try:
            st = (state_dir / name).stat()
            marks += [st.st_mtime_ns, st.st_size]
        except OSError:
            marks += [0, 0]
    return tuple(marks)


def _spec_key(session: Session) -> object:
    """What identifies the file's content cheaply: its path and stat, or why there is none."""
    try:
        path, _ = session.find_spec()
    except MlxError as exc:
        return ("none", _one_line(exc))
    try:
        st = path.stat()
    except OSError as exc:
        return ("unreadable", str(path), str(exc))
    return (str(path), st.st_mtime_ns, st.st_size, st.st_ino)


def _load(session: Session, key: object) -> _Spec:
    error: str | None = None
    loaded = None
    try:
        loaded = session.load_optional()
    except SpecError as exc:
        first = exc.diagnostics[0].render() if exc.diagnostics else _one_line(exc)
        error = f"mlx.yaml is invalid ({first}); `mlx validate` shows why"
    except MlxError as exc:
        error = _one_line(exc)
    if loaded is None and error is None:
        error = "no mlx.yaml found: nothing is declared"
    return _Spec(key, loaded, session.settings(loaded), error)


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())


def sample(file: Path | None = None, *, session: Session | None = None) -> dict[str, Any]:
    """One snapshot now, for a one-shot reader (`mlx menubar` without a fresh agent
    snapshot, `mlx dashboard --once`)."""
    if session is None:
        from mlxstate.engine import Session

        session = Session.from_environment(file)
    sampler = Sampler(session)
    try:
        return sampler.sample()
    finally:
        sampler.close()
