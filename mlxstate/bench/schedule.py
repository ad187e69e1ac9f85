"""When scheduled benchmarks are due (docs/benchmarks.md, "Schedules").

Pure: the time and the time zone come in as values, and what was handled before comes in
as a :class:`Mark` per benchmark (the registry's ``bench_schedule`` rows). The watch agent
stores the marks this returns, then runs what is due.

- A schedule seen for the first time (or whose text changed) counts from now: nothing in
  the past is run for it.
- One or more due times passed while nobody ran them (the agent was off, or it woke more
  than :data:`GRACE` late): the benchmark runs once, ``catch-up`` — never once per slot.
- Otherwise a due benchmark runs with trigger ``schedule``.
- Cron lines are local wall-clock time (the time zone passed in, DST included: a time
  skipped by a spring-forward runs at the first minute after it, a time repeated by a
  fall-back runs once); ``@every`` counts from the last due time, so it keeps its phase.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Literal

from mlxstate.mlxyaml.types import Schedule

__all__ = [
    "GRACE",
    "Due",
    "Evaluation",
    "Mark",
    "evaluate",
    "latest_due",
    "local_zone",
    "next_due",
    "upcoming",
]

GRACE = 60.0  # seconds past a due time that still count as on time

ScheduledTrigger = Literal["schedule", "catch-up"]


@dataclass(frozen=True, slots=True)
class Mark:
    """What was handled for one benchmark: its schedule text and the latest due time."""

    schedule: str
    last_due: float


@dataclass(frozen=True, slots=True)
class Due:
    benchmark: str
    trigger: ScheduledTrigger
    due: float  # the (latest) due time this run stands for


@dataclass(frozen=True, slots=True)
class Evaluation:
    due: tuple[Due, ...]
    marks: dict[str, Mark]  # every scheduled benchmark, after this evaluation
    changed: frozenset[str]  # marks to write (new, reset or advanced)
    forget: tuple[str, ...]  # marks of benchmarks no longer scheduled


def next_due(schedule: Schedule, after: float, tz: tzinfo) -> float | None:
    """The first due time strictly after ``after`` (None: the cron line never matches)."""
    if schedule.kind == "every":
        assert schedule.interval is not None
        return after + schedule.interval.total_seconds()
    assert schedule.cron is not None
    from cronsim import CronSim, CronSimError

    try:
        return next(CronSim(schedule.cron, datetime.fromtimestamp(after, tz))).timestamp()
    except (StopIteration, CronSimError):
        return None


def latest_due(schedule: Schedule, base: float, now: float, tz: tzinfo) -> float | None:
    """The latest due time at or before ``now``; ``@every`` slots are counted from ``base``
    (a due time itself)."""
    if schedule.kind == "every":
        assert schedule.interval is not None
        step = schedule.interval.total_seconds()
        return base + math.floor((now - base) / step) * step if now >= base else None
    assert schedule.cron is not None
    from cronsim import CronSim, CronSimError

    # cronsim's reverse walk starts strictly before its start: start just after now.
    start = datetime.fromtimestamp(now, tz) + timedelta(microseconds=1)
    try:
        for when in CronSim(schedule.cron, start, reverse=True):
            if when.timestamp() <= now:
                return when.timestamp()
    except CronSimError:
        return None
    return None


def evaluate(
    schedules: Mapping[str, Schedule], marks: Mapping[str, Mark], now: float, tz: tzinfo
) -> Evaluation:
    """What is due at ``now`` for the declared ``schedules`` given the stored ``marks``."""
    due: list[Due] = []
    result: dict[str, Mark] = {}
    changed: set[str] = set()
    for name, schedule in schedules.items():
        mark = marks.get(name)
        # New, edited, or from a clock that was set back: count from now, run nothing past.
        if mark is None or mark.schedule != schedule.text or mark.last_due > now:
            result[name] = Mark(schedule.text, now)
            changed.add(name)
            continue
        result[name] = mark
        first = next_due(schedule, mark.last_due, tz)
        if first is None or first > now:
            continue
        last = latest_due(schedule, mark.last_due, now, tz)
        last = first if last is None or last < first else last
        late = last > first or now - last > GRACE
        due.append(Due(name, "catch-up" if late else "schedule", last))
        result[name] = Mark(schedule.text, last)
        changed.add(name)
    forget = tuple(sorted(set(marks) - set(schedules)))
    return Evaluation(tuple(due), result, frozenset(changed), forget)


def upcoming(
    schedules: Mapping[str, Schedule], marks: Mapping[str, Mark], tz: tzinfo
) -> tuple[str, float] | None:
    """The benchmark due next and when (for the agent's wake-up and ``mlx status``)."""
    best: tuple[str, float] | None = None
    for name, schedule in sorted(schedules.items()):
        mark = marks.get(name)
        if mark is None:
            continue
        when = next_due(schedule, mark.last_due, tz)
        if when is not None and (best is None or when < best[1]):
            best = (name, when)
    return best


def local_zone(localtime: Path = Path("/etc/localtime")) -> tzinfo:
    """The system's time zone with its rules (a fixed UTC offset would put a 03:00 run at
    02:00 or 04:00 after a DST change); the current offset only when the system has none."""
    from zoneinfo import ZoneInfo

    try:
        with localtime.open("rb") as data:
            return ZoneInfo.from_file(data)
    except (OSError, ValueError):
        return datetime.now().astimezone().tzinfo or UTC
