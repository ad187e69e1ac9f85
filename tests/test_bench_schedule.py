"""When scheduled benchmarks are due: plain values, a fixed time zone, no clock, no sleep
(docs/benchmarks.md, "Schedules")."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from mlxstate.bench.schedule import (
    GRACE,
    Mark,
    evaluate,
    latest_due,
    local_zone,
    next_due,
    upcoming,
)
from mlxstate.mlxyaml.types import parse_schedule

BERLIN = ZoneInfo("Europe/Berlin")  # DST: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00


def at(year: int, month: int, day: int, hour: int, minute: int, fold: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN, fold=fold).timestamp()


NIGHTLY = parse_schedule("0 3 * * *")


def test_a_schedule_seen_first_counts_from_now_and_runs_nothing_past() -> None:
    now = at(2026, 5, 4, 12, 0)
    result = evaluate({"nightly": NIGHTLY}, {}, now, BERLIN)
    assert result.due == ()
    assert result.marks == {"nightly": Mark("0 3 * * *", now)}
    assert result.changed == {"nightly"}
    assert upcoming({"nightly": NIGHTLY}, result.marks, BERLIN) == ("nightly", at(2026, 5, 5, 3, 0))


def test_on_time_is_schedule_and_the_mark_moves_to_the_due_time() -> None:
    marks = {"nightly": Mark("0 3 * * *", at(2026, 5, 4, 12, 0))}
    assert evaluate({"nightly": NIGHTLY}, marks, at(2026, 5, 5, 2, 59), BERLIN).due == ()
    now = at(2026, 5, 5, 3, 0) + GRACE - 1
    result = evaluate({"nightly": NIGHTLY}, marks, now, BERLIN)
    assert [(d.benchmark, d.trigger, d.due) for d in result.due] == [
        ("nightly", "schedule", at(2026, 5, 5, 3, 0))
    ]
    assert result.marks["nightly"] == Mark("0 3 * * *", at(2026, 5, 5, 3, 0))
    # Handled: the same moment evaluated again runs nothing.
    assert evaluate({"nightly": NIGHTLY}, result.marks, now + 30, BERLIN).due == ()


def test_a_late_wake_up_is_a_catch_up() -> None:
    marks = {"nightly": Mark("0 3 * * *", at(2026, 5, 4, 3, 0))}
    result = evaluate({"nightly": NIGHTLY}, marks, at(2026, 5, 5, 3, 0) + GRACE + 1, BERLIN)
    assert [d.trigger for d in result.due] == ["catch-up"]


def test_a_day_off_runs_once_as_catch_up_never_once_per_missed_slot() -> None:
    hourly = parse_schedule("@hourly")
    start = at(2026, 5, 1, 3, 0)
    marks = {"nightly": Mark("0 3 * * *", start), "hourly": Mark("@hourly", start)}
    now = at(2026, 5, 4, 9, 30)  # three nights and 78 hours later
    result = evaluate({"nightly": NIGHTLY, "hourly": hourly}, marks, now, BERLIN)
    assert sorted((d.benchmark, d.trigger, d.due) for d in result.due) == [
        ("hourly", "catch-up", at(2026, 5, 4, 9, 0)),
        ("nightly", "catch-up", at(2026, 5, 4, 3, 0)),
    ]
    after = evaluate({"nightly": NIGHTLY, "hourly": hourly}, result.marks, now + 60, BERLIN)
    assert after.due == ()
    assert upcoming({"nightly": NIGHTLY, "hourly": hourly}, after.marks, BERLIN) == (
        "hourly",
        at(2026, 5, 4, 10, 0),
    )


def test_every_counts_from_the_last_due_time_and_keeps_its_phase() -> None:
    every = parse_schedule("@every 6h")
    base = at(2026, 5, 4, 1, 17)
    marks = {"e": Mark("@every 6h", base)}
    on_time = evaluate({"e": every}, marks, base + 6 * 3600 + 5, BERLIN)
    assert [(d.trigger, d.due) for d in on_time.due] == [("schedule", base + 6 * 3600)]
    missed = evaluate({"e": every}, marks, base + 18 * 3600 + 100, BERLIN)
    assert [(d.trigger, d.due) for d in missed.due] == [("catch-up", base + 18 * 3600)]
    assert next_due(every, missed.marks["e"].last_due, BERLIN) == base + 24 * 3600


def test_cron_is_local_time_across_dst() -> None:
    spring = at(2026, 3, 28, 3, 0)
    # 03:00 stays 03:00 on the wall clock: the night of the change is 23 hours long.
    assert next_due(NIGHTLY, spring, BERLIN) == at(2026, 3, 29, 3, 0)
    assert at(2026, 3, 29, 3, 0) - spring == 23 * 3600
    autumn = at(2026, 10, 24, 3, 0)
    assert next_due(NIGHTLY, autumn, BERLIN) == autumn + 25 * 3600
    # 02:30 does not exist on 29 March: it runs once, at 03:00 (the first minute after).
    half = parse_schedule("30 2 * * *")
    marks = {"b": Mark("30 2 * * *", at(2026, 3, 28, 2, 30))}
    result = evaluate({"b": half}, marks, at(2026, 3, 29, 3, 0), BERLIN)
    assert [(d.trigger, d.due) for d in result.due] == [("schedule", at(2026, 3, 29, 3, 0))]
    # 02:30 happens twice on 25 October: it runs at the first one only.
    marks = {"b": Mark("30 2 * * *", at(2026, 10, 24, 2, 30))}
    first = evaluate({"b": half}, marks, at(2026, 10, 25, 2, 30), BERLIN)
    assert [d.trigger for d in first.due] == ["schedule"]
    again = at(2026, 10, 25, 2, 30, fold=1)
    assert again - at(2026, 10, 25, 2, 30) == 3600
    assert evaluate({"b": half}, first.marks, again, BERLIN).due == ()
    assert latest_due(half, 0.0, again, BERLIN) == at(2026, 10, 25, 2, 30)


def test_a_changed_schedule_counts_from_now() -> None:
    marks = {"nightly": Mark("0 4 * * *", at(2026, 5, 1, 4, 0))}
    now = at(2026, 5, 4, 12, 0)  # the old line missed three nights: none of them is run
    result = evaluate({"nightly": NIGHTLY}, marks, now, BERLIN)
    assert result.due == ()
    assert result.marks["nightly"] == Mark("0 3 * * *", now)
    assert "nightly" in result.changed


def test_a_removed_benchmark_is_forgotten() -> None:
    marks = {"nightly": Mark("0 3 * * *", 0.0), "gone": Mark("@hourly", 0.0)}
    now = at(2026, 5, 4, 12, 0)
    result = evaluate({}, marks, now, BERLIN)
    assert result.forget == ("gone", "nightly")
    assert result.due == () and result.marks == {}
    assert upcoming({}, marks, BERLIN) is None


def test_a_clock_set_back_resets_the_base() -> None:
    marks = {"nightly": Mark("0 3 * * *", at(2026, 5, 4, 3, 0))}
    now = at(2026, 5, 1, 12, 0)
    result = evaluate({"nightly": NIGHTLY}, marks, now, BERLIN)
    assert result.due == () and result.marks["nightly"].last_due == now


def test_the_local_zone_has_dst_rules(tmp_path: Path) -> None:
    zone = local_zone(Path("/usr/share/zoneinfo/Europe/Berlin"))
    winter = datetime(2026, 1, 1, tzinfo=zone).utcoffset()
    summer = datetime(2026, 7, 1, tzinfo=zone).utcoffset()
    assert winter is not None and summer is not None
    assert summer.total_seconds() - winter.total_seconds() == 3600
    fixed = local_zone(tmp_path / "none")  # no zone file: the current offset, never a crash
    assert datetime(2026, 1, 1, tzinfo=fixed).utcoffset() is not None
