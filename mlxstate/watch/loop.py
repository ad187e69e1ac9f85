"""The reconcile loop behind ``mlx watch`` (docs/watch.md).

A reconcile is the engine's apply — the same lock, journal, executor and registry as
`mlx apply` — with destructive actions held unless ``settings.watch.deletes: apply``. The
loop reconciles at start, when the file's content changes, when asked (`mlx reconcile`),
and every ``watch.interval``; failures retry with backoff. After a reconcile, and whenever
one is due, it runs the scheduled benchmarks (mlxstate.bench.due). Its state goes to the
registry after every step so `mlx status` can show it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxstate.errors import MlxError, SpecError
from mlxstate.watch.decide import Schedule, Trigger
from mlxstate.watch.files import git_commit, spec_sha256
from mlxstate.watch.state import HISTORY, AgentStore, iso, set_condition

if TYPE_CHECKING:
    from mlxstate.apply.progress import Display
    from mlxstate.bench.due import Runner, Skipper
    from mlxstate.bench.record import RunRecord
    from mlxstate.dashboard.agent import AgentSnapshots
    from mlxstate.engine import ApplyResult, Session
    from mlxstate.mlxyaml.load import LoadedSpec

__all__ = ["DEFAULT_INTERVAL", "LOCK_WAIT", "POLL", "Agent", "Event"]

DEFAULT_INTERVAL = 600.0
LOCK_WAIT = 30.0  # wait this long for another apply, then count a failure and retry later
POLL = 1.0  # how often the suspend / reconcile flags are read while idle


@dataclass(frozen=True)
class Event:
    time: float
    event: str  # started, reconcile, applied, held, invalid, failed, benchmark, stopped
    message: str
    extra: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {"time": iso(self.time), "event": self.event, "message": self.message, **self.extra}


Emit = Callable[[Event], None]
Wait = Callable[[float], bool]  # block up to N seconds; True: the file may have changed


def _quiet_progress() -> AbstractContextManager[Display]:
    from mlxstate.apply.progress import Display

    return Display(enabled=False)


class Agent:
    """One mlx.yaml kept reconciled. ``wait`` and the session's clock are injected, and so
    is the benchmark runner (the real one by default)."""

    def __init__(
        self,
        session: Session,
        path: Path,
        store: AgentStore,
        emit: Emit,
        bench: tuple[Runner, Skipper] | None = None,
        dashboard: bool = True,
    ) -> None:
        self.session, self.path, self.store, self.emit = session, path, store, emit
        self.clock = session.seams.clock
        self.schedule = Schedule(DEFAULT_INTERVAL)
        self.doc: dict[str, Any] = store.doc()
        self.applying = False  # a signal during an apply abandons it (journal covers it)
        self.benchmarking = False  # ... and during a benchmark, abandons that
        self.ok = True  # the last reconcile's outcome (for --once)
        self.bench = bench
        self.bench_next: float | None = None  # when the next scheduled benchmark is due
        self.bench_marks = True  # the registry may hold schedule marks (until a look says not)
        self.stopping: Callable[[], bool] = lambda: False
        self.dashboard = dashboard  # write dashboard.json after each iteration
        self._snapshots: AgentSnapshots | None = None

    # -- the loop --------------------------------------------------------------------------

    def start(self) -> None:
        now = self.clock()
        self.doc.update(pid=os.getpid(), conditions=[], failures=0)
        set_condition(self.doc["conditions"], "Ready", False, "Starting", "first reconcile", now)
        self._save()
        self._emit("started", f"watching {self.path.absolute()} (pid {os.getpid()})")

    def run(self, wait: Wait, stopping: Callable[[], bool]) -> None:
        """Reconcile now, then whenever something asks for it, until ``stopping()``."""
        self.stopping = stopping
        self.step("start")
        self.snapshot()
        while not stopping():
            event = wait(self._timeout())
            if stopping():
                return
            suspended, requested = self.store.flags()
            sha = spec_sha256(self.path) if event else self.schedule.last_sha
            why = self.schedule.trigger(self.clock(), sha, event, requested)
            if requested:
                self.store.request_reconcile(False)
            if why is not None:
                self.step(why)
            elif self.bench_next is not None and self.clock() >= self.bench_next:
                self.benchmarks()
            if why is None and suspended != self._suspended_shown():
                self._show_suspended(suspended, self.clock())
            self.snapshot()

    def _timeout(self) -> float:
        # Wake at the earliest of the next reconcile and the next benchmark: a 03:00
        # benchmark starts at 03:00, whatever the interval.
        now = self.clock()
        due = [self.schedule.next_run, *([self.bench_next] if self.bench_next else [])]
        return min(POLL, max(min(due) - now, 0.0))

    def stop(self) -> None:
        now = self.clock()
        self.doc["pid"] = None
        self.doc["next_run"] = None
        set_condition(self.doc.setdefault("conditions", []), "Ready", False, "Stopped", "", now)
        set_condition(self.doc["conditions"], "Reconciling", False, "Stopped", "", now)
        self._save()
        self.snapshot(force=True)  # readers see it stopped, not a stale "running"
        if self._snapshots is not None:
            self._snapshots.close()
        self._emit("stopped", "stopped; the apply lock is free")

    # -- the dashboard's snapshot ----------------------------------------------------------

    def snapshot(self, force: bool = False) -> None:
        """Write ``dashboard.json`` (docs/dashboard.md); a failure is logged, never raised."""
        if self._snapshots_ready() is not None:
            assert self._snapshots is not None
            self._snapshots.write(force)

    def _snapshots_ready(self) -> AgentSnapshots | None:
        if self.dashboard and self._snapshots is None:
            try:
                from mlxstate.dashboard.agent import AgentSnapshots

                self._snapshots = AgentSnapshots(self)
            except Exception as exc:  # the loop outlives its dashboard
                self.dashboard = False
                self.emit_log(f"no dashboard snapshots: {_one_line(exc)}")
        return self._snapshots

    def emit_log(self, text: str) -> None:
        self._emit("log", text)

    # -- one reconcile ---------------------------------------------------------------------

    def step(self, why: Trigger | str) -> None:
        self._snapshots_ready()  # before the reconcile: its observation feeds the snapshot
        now = self.clock()
        sha = spec_sha256(self.path)
        self.schedule.last_sha = sha
        suspended, _ = self.store.flags()
        if suspended:
            self.schedule.succeeded(now)
            self._show_suspended(True, now)
            self.benchmarks()  # due ones are recorded as skipped (docs/watch.md)
            return
        attempt = {"time": iso(now), "spec_sha256": sha, "git_commit": git_commit(self.path)}
        set_condition(self._conds(), "Reconciling", True, "Reconciling", str(why), now)
        self.doc["last_attempt"] = {**attempt, "result": "running"}
        self._save()
        try:
            loaded = self.session.load()  # an invalid file is never applied
        except MlxError as exc:  # also gone, a folder, too big, unreadable: wait for an edit
            return self._invalid(attempt, sha, exc)
        self._reconcile(why, attempt, sha, loaded)
        self.benchmarks(loaded)  # after the apply: its lock is free again

    def _reconcile(
        self, why: Trigger | str, attempt: dict[str, Any], sha: str | None, loaded: LoadedSpec
    ) -> None:
        self._emit("reconcile", f"reconciling ({why})", spec_sha256=sha)
        try:
            self.applying = True
            result = self._apply(loaded)
        except (MlxError, OSError) as exc:
            return self._failed(attempt, _one_line(exc))
        except Exception as exc:  # the loop outlives any one reconcile (docs/watch.md)
            return self._failed(attempt, f"{type(exc).__name__}: {exc}")
        finally:
            self.applying = False
        self._finished(attempt, result)

    # -- scheduled benchmarks ---------------------------------------------------------------

    def benchmarks(self, loaded: LoadedSpec | None = None) -> None:
        """Run (or skip, recording why) the scheduled benchmarks due now."""
        from mlxstate.bench.due import run_due

        self.bench_next = None  # an invalid file runs none until a valid one is reconciled
        try:
            loaded = loaded or self.session.load()
        except MlxError:
            return
        scheduled = any(b.schedule is not None for b in loaded.spec.benchmarks.values())
        if not scheduled and not self.bench_marks:
            return  # nothing scheduled now or at the last look: no registry round trip
        self.bench_marks = scheduled  # the last look may have left marks to forget
        self.benchmarking = True
        try:
            runner, skipper = self.bench or _real_runner()
            upcoming = run_due(
                self.session,
                loaded,
                now=self.clock(),
                suspended=self.store.flags()[0],
                runner=runner,
                skipper=skipper,
                on_record=self._benchmark_event,
                stopping=self.stopping,
            )
        except KeyboardInterrupt:
            self._emit("log", "a scheduled benchmark was abandoned: the agent is stopping")
            raise
        except Exception as exc:  # the loop outlives any one benchmark
            self._emit("log", f"scheduled benchmarks: {_one_line(exc)}")
            upcoming = None
        finally:
            self.benchmarking = False
        self.bench_next = upcoming[1] if upcoming else None
        self.doc["next_benchmark"] = (
            {"benchmark": upcoming[0], "time": iso(upcoming[1])} if upcoming else None
        )
        self._save()

    def _benchmark_event(self, record: RunRecord) -> None:
        gen = record.summary()["gen_tps"] if record.status == "ok" else None
        name = f"{record.benchmark}/{record.model}"
        if gen is not None:
            message = f"{name}: {gen.median:.1f} tok/s generation (median of {gen.n})"
        else:
            message = f"{name}: {record.status}" + (f": {record.reason}" if record.reason else "")
        self._emit(
            "benchmark",
            f"{message} ({record.trigger})",
            benchmark=record.benchmark,
            model=record.model,
            status=record.status,
            trigger=record.trigger,
            reason=record.reason,
            run_id=record.id,
            gen_tps=None if gen is None else round(gen.median, 3),
        )

    def _apply(self, loaded: LoadedSpec) -> ApplyResult:
        # Parsed once per reconcile (a third of an idle resync's CPU on a large file went
        # to parsing it three times; docs/watch.md, "Cost").
        watch = loaded.spec.settings.watch
        self.schedule.interval = watch.interval.total_seconds()
        return self.session.apply(
            review=lambda _planned, _actions: True,
            progress=_quiet_progress,
            lock_timeout=LOCK_WAIT,
            hold_destructive=watch.deletes == "hold",
            log=lambda text: self._emit("log", text),
            loaded=loaded,
        )

    def _finished(self, attempt: dict[str, Any], result: ApplyResult) -> None:
        self._summarize(result)
        failed = result.failed
        if failed:
            detail = "; ".join(f"{o.action.id}: {o.detail}" for o in failed)
            return self._failed(attempt, f"{len(failed)} action(s) failed: {detail}")
        now = self.clock()
        self.schedule.succeeded(now)
        done = len(result.outcomes)
        message = f"{done} action(s) applied" if done else "no changes"
        self._emit("applied", message, spec_sha256=attempt["spec_sha256"], actions=done)
        held = [a.id for a in result.held]
        reason, text = ("Applied", message)
        if held:
            text = f"{len(held)} destructive action(s) held: {', '.join(held)}"
            reason = "DeletesHeld"
            self._emit("held", text + "; run `mlx apply` to carry them out", actions=held)
        set_condition(self._conds(), "Ready", True, reason, text, now)
        set_condition(self._conds(), "Stalled", False, "Succeeded", "", now)
        self._record(attempt, "held" if held else "applied", text, applied=True)

    def _summarize(self, result: ApplyResult) -> None:
        """The plan summary the dashboard shows as drift: what is still pending after this
        reconcile (held deletes, failed actions), by kind."""
        from mlxstate.watch.state import plan_summary

        pending = (*result.held, *(o.action for o in result.failed))
        self.doc["plan_summary"] = plan_summary(result.planned, pending, self.clock())
        if self._snapshots is not None:
            self._snapshots.reconciled(result)

    def _invalid(self, attempt: dict[str, Any], sha: str | None, exc: MlxError) -> None:
        now = self.clock()
        diagnostics = exc.diagnostics if isinstance(exc, SpecError) else ()
        first = diagnostics[0].render() if diagnostics else _one_line(exc)
        self.doc["plan_summary"] = plan_summary_error(now, f"mlx.yaml is invalid: {first}")
        # A file that cannot be read has no sha256: its message stands for its content, so
        # a deleted mlx.yaml is reported once, not never.
        if self.schedule.invalid(now, sha or f"unreadable: {first}"):
            self._emit("invalid", f"not applied: {first}", spec_sha256=sha)
        self.ok = False
        set_condition(self._conds(), "Ready", False, "ValidationFailed", first, now)
        self._record(attempt, "invalid", first)

    def _failed(self, attempt: dict[str, Any], message: str) -> None:
        now = self.clock()
        delay = self.schedule.failed(now)
        retry = "waiting for the lock" if "another mlx apply" in message else "retrying"
        failures = self.schedule.failures
        self._emit("failed", f"{message} ({retry} in {delay:.0f}s)", failures=failures)
        self.ok = False
        set_condition(self._conds(), "Ready", False, "ReconcileFailed", message, now)
        if self.schedule.stalled:
            reason = f"{self.schedule.failures} failures in a row; last: {message}"
            set_condition(self._conds(), "Stalled", True, "RepeatedFailures", reason, now)
        self._record(attempt, "failed", message)  # saves the conditions with it

    # -- state -----------------------------------------------------------------------------

    def _record(
        self, attempt: dict[str, Any], result: str, message: str, applied: bool = False
    ) -> None:
        now = self.clock()
        entry = {**attempt, "result": result, "message": message}
        self.doc["last_attempt"] = entry
        if applied:
            self.doc["last_applied"] = entry
            self.ok = True
        self.doc["failures"] = self.schedule.failures
        self.doc["history"] = [*self.doc.get("history", []), entry][-HISTORY:]
        set_condition(self._conds(), "Reconciling", False, "Idle", "", now)
        self._save()

    def _conds(self) -> list[dict[str, Any]]:
        conds: list[dict[str, Any]] = self.doc.setdefault("conditions", [])
        return conds

    def _suspended_shown(self) -> bool:
        return any(c["type"] == "Suspended" and c["status"] == "True" for c in self._conds())

    def _show_suspended(self, suspended: bool, now: float) -> None:
        if suspended == self._suspended_shown():
            return
        text = "suspended by `mlx suspend`; watching, applying nothing" if suspended else ""
        reason = "Suspended" if suspended else "Resumed"
        set_condition(self._conds(), "Suspended", suspended, reason, text, now)
        if suspended:  # a suspended agent never shows Ready
            set_condition(self._conds(), "Ready", False, "Suspended", text, now)
        self._save()
        self._emit("log", text or "resumed")
        if not suspended:
            self.schedule.next_run = now  # resume reconciles at once

    def _save(self) -> None:
        self.doc["next_run"] = iso(self.schedule.next_run) if self.schedule.next_run else None
        try:
            self.store.save(self.doc)
        except (MlxError, sqlite3.Error) as exc:
            # The registry locked by another process (or read-only) for a while: the state
            # is written again at the next step; the loop itself must go on.
            self._emit("log", f"could not record the agent state: {_one_line(exc)}")

    def _emit(self, event: str, message: str, **extra: Any) -> None:
        self.emit(Event(self.clock(), event, message, extra))


def plan_summary_error(now: float, error: str) -> dict[str, Any]:
    from mlxstate.watch.state import plan_summary

    return plan_summary(None, (), now, error)


def _real_runner() -> tuple[Runner, Skipper]:
    from mlxstate.bench.runner import run_benchmarks, skipped_run

    return run_benchmarks, skipped_run


def _one_line(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return " ".join(str(text).split())
