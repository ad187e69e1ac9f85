"""Typed values of ``mlx.yaml`` scalars: durations, sizes, schedules, paths.

Each parser takes the raw YAML value and returns a typed value or raises ``ValueError``
with a message that says what was expected. The pydantic models wrap them as
``Annotated`` types so the JSON Schema still documents the string form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ValidationInfo, WithJsonSchema

from mlxstate.paths import expand_path_text

__all__ = [
    "Duration",
    "ExpandedPath",
    "Schedule",
    "ScheduleField",
    "parse_duration",
    "parse_schedule",
]

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION_PART = r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)"
_DURATION_RE = re.compile(rf"^(?:{_DURATION_PART})+$")
_DURATION_PART_RE = re.compile(_DURATION_PART)
DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d|w))+$"

# Named schedules map to the cron line they mean (same meaning as in crontab(5)).
_NAMED_SCHEDULES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0"}
SCHEDULE_FORMS = "a 5-field cron line ('0 3 * * *'), @hourly, @daily, @weekly or '@every DURATION'"


def parse_duration(value: object) -> timedelta:
    """``30s``, ``5m``, ``6h``, ``7d``, ``1h30m``, ``500ms`` → ``timedelta`` (> 0)."""
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str) or isinstance(value, bool):
        raise ValueError(f"expected a duration such as 30s, 5m, 6h or 7d, got {value!r}")
    text = value.strip()
    if not _DURATION_RE.fullmatch(text):
        raise ValueError(
            f"invalid duration {value!r}; expected a number and a unit: 30s, 5m, 6h, 7d"
        )
    seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION_PART_RE.findall(text))
    if seconds <= 0:
        raise ValueError(f"duration {value!r} must be greater than zero")
    if seconds > 100 * 365 * 86400:
        raise ValueError(f"duration {value!r} is longer than 100 years")
    return timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Schedule:
    """When a benchmark runs: a cron line or a fixed interval."""

    kind: Literal["cron", "every"]
    text: str
    cron: str | None = None
    interval: timedelta | None = None

    def __str__(self) -> str:
        return self.text


def parse_schedule(value: object) -> Schedule:
    """Parse a ``schedule:`` value; cron lines are checked by ``cronsim``."""
    if isinstance(value, Schedule):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected {SCHEDULE_FORMS}, got {value!r}")
    text = " ".join(value.split())
    if text in _NAMED_SCHEDULES:
        return Schedule(kind="cron", text=text, cron=_NAMED_SCHEDULES[text])
    if text.startswith("@every"):
        arg = text.removeprefix("@every").strip()
        if not arg:
            raise ValueError("'@every' needs a duration, e.g. '@every 6h'")
        interval = parse_duration(arg)
        if interval.total_seconds() < 60:
            raise ValueError(f"'@every {arg}' is too often; benchmarks run at most once a minute")
        return Schedule(kind="every", text=text, interval=interval)
    if text.startswith("@"):
        raise ValueError(f"unknown schedule {value!r}; expected {SCHEDULE_FORMS}")
    if len(text.split(" ")) != 5:
        raise ValueError(f"cron line {value!r} must have 5 fields; expected {SCHEDULE_FORMS}")
    _check_cron(text, value)
    return Schedule(kind="cron", text=text, cron=text)


def _check_cron(text: str, original: str) -> None:
    # cronsim is small and fast to import (validate runs on every editor save).
    from cronsim import CronSim, CronSimError

    try:
        CronSim(text, _EPOCH)
    except CronSimError as exc:
        raise ValueError(f"invalid cron line {original!r}: {exc}") from None


def expand_path(value: object, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    return expand_path_text(value, Path(base) if base else None)


def _schema(**schema: Any) -> WithJsonSchema:
    return WithJsonSchema(schema)


_EPOCH = datetime(2000, 1, 1)

Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    _schema(type="string", pattern=DURATION_PATTERN, examples=["30s", "5m", "6h", "7d"]),
]
ScheduleField = Annotated[
    Schedule,
    BeforeValidator(parse_schedule),
    _schema(
        type="string",
        description="5-field cron line, @hourly, @daily, @weekly or '@every DURATION'",
        examples=["0 3 * * *", "@daily", "@every 6h"],
    ),
]
ExpandedPath = Annotated[
    Path,
    BeforeValidator(expand_path),
    _schema(type="string", description="a path; ~ and $VARS are expanded"),
]
