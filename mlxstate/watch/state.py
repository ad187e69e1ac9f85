"""The watch agent's state in the registry (docs/watch.md, "Reading its state").

One row: a JSON document the agent writes (pid, last attempt, last applied, next run,
conditions, failures, history) and two flags other commands set (``mlx suspend``/``resume``,
``mlx reconcile``) that the agent polls with one cheap query.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxstate.errors import MlxError
from mlxstate.registry import DB_NAME, Registry, ensure_state_dir
from mlxstate.text import iso_time

if TYPE_CHECKING:
    from mlxstate.engine import PlannedRun
    from mlxstate.plan.actions import Action

__all__ = [
    "AGENT_LOCK",
    "CONDITION_TYPES",
    "HISTORY",
    "AgentStore",
    "agent_document",
    "agent_lock",
    "agent_lock_held",
    "iso",
    "pid_alive",
    "plan_summary",
    "read_agent",
    "read_state",
    "set_condition",
]

CONDITION_TYPES = ("Ready", "Reconciling", "Stalled", "Suspended")
HISTORY = 10  # reconciles kept in the history
AGENT_LOCK = "agent.lock"  # held by the one `mlx watch` of a state folder while it runs


@contextlib.contextmanager
def agent_lock(state_dir: Path) -> Iterator[None]:
    """One agent per state folder: a second `mlx watch` would apply every change twice and
    overwrite the first one's state. A kernel lock, not the recorded pid: it dies with its
    holder (even by SIGKILL) and a reused pid cannot fake it."""
    ensure_state_dir(state_dir)
    path = state_dir / AGENT_LOCK
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise MlxError(
            f"cannot open the agent lock {path}: {exc.strerror or exc}",
            hint="it must be a file mlx can write; move whatever is there away",
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MlxError(
                f"another mlx watch is already running for the state folder {state_dir}",
                hint="one agent per state folder; stop the other one first (`mlx status`)",
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def agent_lock_held(state_dir: Path) -> bool:
    """True while an `mlx watch` holds the agent lock of ``state_dir``."""
    try:
        fd = os.open(state_dir / AGENT_LOCK, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False  # never created: no agent ever ran here
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


def pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive, though not ours to signal
    return True


def set_condition(
    conditions: list[dict[str, Any]],
    kind: str,
    status: bool,
    reason: str,
    message: str,
    now: float,
) -> None:
    """Set one condition in place; ``since`` moves only when its status changes."""
    text = "True" if status else "False"
    for cond in conditions:
        if cond["type"] == kind:
            if cond["status"] != text:
                cond["since"] = iso(now)
            cond.update(status=text, reason=reason, message=message)
            return
    conditions.append(
        {"type": kind, "status": text, "reason": reason, "message": message, "since": iso(now)}
    )


class AgentStore:
    """The agent row of an open registry."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.suspended = False  # the last flag read, kept while the registry is locked

    def doc(self) -> dict[str, Any]:
        row = self.registry.conn.execute("SELECT doc FROM agent WHERE id = 1").fetchone()
        try:
            doc = json.loads(row[0]) if row else {}
        except ValueError:
            doc = {}  # a damaged row is rebuilt by the next write, never a crash
        return doc if isinstance(doc, dict) else {}

    def save(self, doc: dict[str, Any]) -> None:
        with self.registry.transaction() as conn:
            conn.execute("UPDATE agent SET doc = ? WHERE id = 1", (json.dumps(doc),))

    def flags(self) -> tuple[bool, bool]:
        """(suspended, reconcile requested): the query the loop makes every poll."""
        try:
            row = self.registry.conn.execute(
                "SELECT suspended, reconcile_requested FROM agent WHERE id = 1"
            ).fetchone()
        except sqlite3.Error:
            # Locked by another process for longer than the timeout: never a crash of the
            # loop, and never "not suspended" by mistake — the last answer stands.
            return self.suspended, False
        if row:
            self.suspended = bool(row[0])
        return (self.suspended, bool(row[1])) if row else (False, False)

    def set_suspended(self, suspended: bool) -> None:
        with self.registry.transaction() as conn:
            conn.execute("UPDATE agent SET suspended = ? WHERE id = 1", (int(suspended),))

    def request_reconcile(self, wanted: bool = True) -> None:
        with self.registry.transaction() as conn:
            conn.execute("UPDATE agent SET reconcile_requested = ? WHERE id = 1", (int(wanted),))


def agent_document(doc: dict[str, Any], suspended: bool, locked: bool = True) -> dict[str, Any]:
    """The ``agent`` key of ``mlx status --json`` (docs/status-json.md). ``locked``: the
    agent lock is held; a pid alone may be stale (kill -9) and reused by another process."""
    pid = doc.get("pid")
    running = locked and pid_alive(pid)
    conditions = [dict(c) for c in doc.get("conditions", [])] if running else []
    for cond in conditions:
        if suspended and cond.get("type") == "Ready" and cond.get("status") == "True":
            # Whatever the agent wrote last, a suspended agent is never shown ready.
            cond.update(status="False", reason="Suspended", message="suspended by `mlx suspend`")
    return {
        "running": running,
        "pid": pid if running else None,
        "suspended": suspended,
        "last_attempt": doc.get("last_attempt"),
        "last_applied": doc.get("last_applied"),
        "next_run": doc.get("next_run") if running else None,
        "next_benchmark": doc.get("next_benchmark") if running else None,
        "conditions": conditions,
        "failures": int(doc.get("failures", 0)),
        "history": list(doc.get("history", []))[-HISTORY:],
    }


def read_agent(state_dir: Path) -> dict[str, Any]:
    """The agent document without creating a registry where there is none."""
    path = state_dir / DB_NAME
    if not path.exists():
        return agent_document({}, False)
    with Registry.open(state_dir) as registry:
        store = AgentStore(registry)
        return agent_document(store.doc(), store.flags()[0], agent_lock_held(state_dir))


def plan_summary(
    planned: PlannedRun | None, pending: tuple[Action, ...], now: float, error: str | None = None
) -> dict[str, Any]:
    """What the agent records after each reconcile for the dashboard's drift figures
    (docs/dashboard.md): models declared and present, and the actions still pending (held
    or failed) counted by kind. ``planned`` None: no plan could be made (``error`` says why)."""
    if planned is None:
        nothing = {"declared": None, "present": None, "pending": None}
        return {"time": iso_time(now), **nothing, "error": error}
    from mlxstate.status import missing_models

    spec = planned.loaded.spec
    declared = sum(m.ensure == "present" for m in spec.models.values())
    kinds: dict[str, int] = {}
    for action in pending:
        kinds[action.kind] = kinds.get(action.kind, 0) + 1
    return {
        "time": iso_time(now),
        "declared": declared,
        "present": declared - len(missing_models(planned.observed, spec)),
        "pending": {"total": len(pending), **dict(sorted(kinds.items()))},
        "error": error,
    }


def read_state(state_dir: Path) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The agent document and the plan summary it recorded last (None: none yet), without
    creating a registry where there is none."""
    if not (state_dir / DB_NAME).exists():
        return agent_document({}, False), None
    with Registry.open(state_dir) as registry:
        store = AgentStore(registry)
        doc = store.doc()
        agent = agent_document(doc, store.flags()[0], agent_lock_held(state_dir))
    summary = doc.get("plan_summary")
    return agent, summary if isinstance(summary, dict) else None
