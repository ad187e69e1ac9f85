"""The apply journal: ``<state_dir>/journal.jsonl``, one JSON line per event, fsynced.

Every action is written as ``started`` before its effect and ``done``/``failed``/``skipped``
after; a run ends with ``finished``. A journal whose last run has no ``finished`` line was
interrupted: the next apply says which action was in flight and re-plans from the observed
state (every effect is idempotent, so re-planning is always safe).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxstate.apply import failpoints

__all__ = ["Interrupted", "Journal", "close_interrupted", "read_interrupted"]

JOURNAL_NAME = "journal.jsonl"
ROTATE_BYTES = 1 << 20
MAX_READ = 4 * ROTATE_BYTES  # a journal is rotated at 1 MiB: more than this is not ours


@dataclass(frozen=True)
class Interrupted:
    """What an apply that never finished was doing."""

    run: str
    started: float
    in_flight: tuple[dict[str, Any], ...]  # actions started and never ended
    workspace: str | None = None  # whose apply it was: what it installed is that one's


def read_interrupted(state_dir: Path) -> Interrupted | None:
    """The last run of the journal, if it did not finish.

    The journal is mlx's own file, but it is read as untrusted data: torn lines, bytes that
    are not UTF-8, JSON that is not an event, and absurd nesting are skipped, never fatal."""
    path = state_dir / JOURNAL_NAME
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_READ)
    except FileNotFoundError:
        return None
    except OSError as exc:
        from mlxstate.errors import MlxError

        raise MlxError(
            f"cannot read the apply journal {path}: {exc.strerror or exc}",
            hint="move it away; mlx starts a new one",
        ) from None
    events = [e for line in raw.splitlines() if (e := _event(line)) is not None]
    runs = [e for e in events if e["event"] == "run"]
    if not runs:
        return None
    last = runs[-1].get("run")
    mine = [e for e in events if e.get("run") == last]
    if any(e["event"] == "finished" for e in mine):
        return None
    open_actions: dict[str, dict[str, Any]] = {}
    for e in mine:
        action = e.get("action")
        if not isinstance(action, str):
            continue
        if e["event"] == "started":
            open_actions[action] = dict(e)
        elif e["event"] == "applied" and action in open_actions:
            open_actions[action]["applied"] = True  # the effect finished (adoption evidence)
        elif e["event"] in ("done", "failed", "skipped"):
            open_actions.pop(action, None)
    ws = runs[-1].get("workspace")
    return Interrupted(
        str(last),
        _number(runs[-1].get("time")),
        tuple(open_actions.values()),
        ws if isinstance(ws, str) else None,
    )


def _event(line: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError):
        return None  # a line torn by the crash itself, or not ours
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return None
    return event


def _number(value: object) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def close_interrupted(state_dir: Path, interrupted: Interrupted) -> None:
    """Mark the interrupted run as recovered once its bookkeeping is finished. Without this
    line it stays "the last run" until an apply with actions starts a new one, and every
    apply in between adopted its install again: a model the user `mlx forget`s, or removes
    and pulls again by hand, became managed again and was pruned."""
    fd = _open_for_append(state_dir / JOURNAL_NAME)
    try:
        record = {"run": interrupted.run, "event": "finished", "time": time.time()}
        os.write(fd, (json.dumps({**record, "recovered": True}) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _open_for_append(path: Path) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        from mlxstate.errors import MlxError

        raise MlxError(
            f"cannot write the apply journal {path}: {exc.strerror or exc}",
            hint="it must be a file mlx can write; move whatever is there away",
        ) from None
    # A line torn by a crash has no newline: the next line must not be glued to it, or the
    # run (or recovered) line it carries is lost and an old interrupted run looks current.
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.write(fd, b"\n")
    return fd


class Journal:
    """Appends events of one run; each line is flushed and fsynced before the effect runs."""

    def __init__(self, state_dir: Path, workspace: str | None = None) -> None:
        from mlxstate.registry import ensure_state_dir

        ensure_state_dir(state_dir)
        self.path = state_dir / JOURNAL_NAME
        self.run = uuid.uuid4().hex[:12]
        try:
            if self.path.stat().st_size > ROTATE_BYTES:  # keep one old journal, not all
                os.replace(self.path, self.path.with_name(JOURNAL_NAME + ".1"))
        except OSError:
            pass  # no journal yet, or the old one cannot move: keep appending to this one
        self._fd = _open_for_append(self.path)
        # Opens the run: read_interrupted() finds runs by this line, and adopts what a killed
        # run installed for the workspace that ran it, not for whichever file runs next.
        self.write("run", workspace=workspace)

    def write(self, event: str, **fields: Any) -> None:
        record = {"run": self.run, "event": event, "time": time.time(), **fields}
        os.write(self._fd, (json.dumps(record, default=str) + "\n").encode())
        os.fsync(self._fd)

    def started(self, action: Any) -> None:
        # The whole action, so that a later apply can finish the bookkeeping of an action
        # a kill interrupted (see executor.adopt_interrupted).
        self.write(
            "started",
            action=action.id,
            op=action.op,
            kind=action.kind,
            subject=action.subject,
            spec=action.to_json(),
        )
        failpoints.hit("journal.started")

    def ended(self, action: Any, outcome: str, detail: str = "") -> None:
        self.write(outcome, action=action.id, detail=detail)
        failpoints.hit(f"journal.{outcome}")

    def close(self, finished: bool) -> None:
        if finished:
            self.write("finished")
        os.close(self._fd)
