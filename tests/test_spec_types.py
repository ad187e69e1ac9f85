from datetime import timedelta

import pytest

from mlxstate.mlxyaml.types import parse_duration, parse_schedule


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("6h", 21600),
        ("7d", 604800),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("2w", 1209600),
        ("1.5h", 5400),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["", "5", "5 minutes", "-5s", "0s", "h", 5, None, True, "1y"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_schedules() -> None:
    daily = parse_schedule("@daily")
    assert (daily.kind, daily.cron) == ("cron", "0 0 * * *")
    every = parse_schedule("@every 6h")
    assert (every.kind, every.interval) == ("every", timedelta(hours=6))
    cron = parse_schedule("  0  3 * * 1-5 ")
    assert cron.cron == "0 3 * * 1-5"


@pytest.mark.parametrize(
    ("bad", "phrase"),
    [
        ("61 * * * *", "invalid cron line"),
        ("* * * *", "must have 5 fields"),
        ("0 0 * * * *", "must have 5 fields"),
        ("@yearly", "unknown schedule"),
        ("@every", "needs a duration"),
        ("@every soon", "invalid duration"),
        (3, "expected"),
    ],
)
def test_bad_schedules(bad: object, phrase: str) -> None:
    with pytest.raises(ValueError, match=phrase):
        parse_schedule(bad)
