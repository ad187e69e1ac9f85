"""The dashboard's pure render functions: snapshot document -> text, at a fixed size."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from rich.console import Console
from syrupy.assertion import SnapshotAssertion

from mlxstate.dashboard.render import (
    Trends,
    agent_line,
    allot,
    duration_text,
    plan_view,
    screen,
    sparkline,
    stacked,
)
from tests.helpers.dashboard_doc import snapshot_doc

PANELS = ["models", "system", "disk", "benchmarks"]


@pytest.fixture(autouse=True)
def _utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The header shows the snapshot's time in local time: UTC here, on every machine."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def _text(renderable: Any, width: int = 80, height: int = 24, color: bool = False) -> str:
    """What a terminal of that size receives (``color``: a colour terminal, escapes kept)."""
    out = io.StringIO()
    console = Console(
        width=width,
        height=height,
        color_system="standard" if color else None,
        force_terminal=color,
        file=out,
    )
    console.print(renderable)
    return out.getvalue()


def _trends(*docs: dict[str, Any]) -> Trends:
    trends = Trends(timedelta(days=7))
    for doc in docs:
        trends.add(doc)
    return trends


def _screen(doc: dict[str, Any] | None, width: int, height: int, panels: list[str] = PANELS) -> str:
    trends = _trends(doc) if doc else _trends()
    return _text(screen(doc, panels, trends, width=width, height=height), width, height)


def test_sparkline_scales_cuts_and_shows_gaps() -> None:
    assert sparkline([0, 50, 100], 10, 0, 100) == "▁▅█"
    assert sparkline([1, 2, 3, 4, 5, 6, 7, 8], 3) == "▁▅█"  # the last 3, in their own range
    assert sparkline([5, 5, 5], 5) == "▄▄▄"  # flat: a level line
    assert sparkline([None, 10, None, 20], 4) == " ▁ █"
    assert sparkline([250, -5], 2, 0, 100) == "█▁"  # out of range: clamped
    assert sparkline([], 5) == ""
    assert sparkline([None], 5) == " "
    assert sparkline([1, 2], 0) == ""


def test_duration_text() -> None:
    assert [duration_text(s) for s in (-3, 45, 250, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)] == [
        "0s",
        "45s",
        "4m 10s",
        "3h 5m",
        "2d 4h",
    ]


def test_allot_fits_shrinks_and_drops() -> None:
    assert allot([5, 6], 20) == [5, 15]  # everything fits: the last takes the rest
    assert allot([10, 4, 8], 16) == [6, 4, 6]  # the tallest shrink first
    assert allot([5, 5, 5, 5], 7) == [3, 4, 0, 0]  # no room for 3 lines: not drawn
    assert allot([1], 2) == [0]
    assert allot([], 10) == []


def test_trends_keep_the_history_window_and_skip_repeats() -> None:
    trends = Trends(timedelta(minutes=1))
    for second, cpu in ((0, 10.0), (30, 20.0), (30, 99.0), (90, 30.0)):
        minute, sec = divmod(second, 60)
        system = {"cpu_percent": cpu, "memory": {"percent": 50.0}, "swap": {}}
        trends.add({"time": f"2026-11-30T15:0{minute}:{sec:02d}Z", "system": system})
    assert trends.series("cpu") == [20.0, 30.0]  # 0 s fell out of the 1 min window
    assert trends.series("swap") == [None, None]  # no swap figures: gaps, not zeros


def _agent(**agent: Any) -> dict[str, Any]:
    base = snapshot_doc()["agent"]
    return snapshot_doc(agent=base | agent)


def _style_of(text: Any, word: str) -> str:
    plain = text.plain
    start = plain.index(word)
    styles = [str(s.style) for s in text.spans if s.start <= start < s.end]
    return " ".join(styles)


def test_agent_suspended_is_yellow_never_green_or_ready() -> None:
    ready = {"type": "Ready", "status": "True", "reason": "Applied"}
    line = agent_line(_agent(suspended=True, conditions=[ready]))
    assert line.plain.startswith("agent suspended")
    assert "ready" not in line.plain
    assert "yellow" in _style_of(line, "suspended")
    assert "green" not in " ".join(str(s.style) for s in line.spans)


def test_agent_stalled_is_red_with_its_message() -> None:
    stalled = {"type": "Stalled", "status": "True", "message": "apply failed: disk full"}
    line = agent_line(_agent(failures=3, conditions=[stalled]))
    assert "stalled (3 failures)" in line.plain
    assert "red" in _style_of(line, "stalled")
    assert line.plain.endswith("apply failed: disk full")


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        ({"running": False, "conditions": []}, "agent not running · last run applied"),
        ({}, "agent ready · last run applied · next in 5m 0s"),
        (
            {"conditions": [{"type": "Reconciling", "status": "True"}]},
            "agent reconciling · last run applied · next in 5m 0s",
        ),
    ],
)
def test_agent_states(agent: dict[str, Any], expected: str) -> None:
    assert agent_line(_agent(**agent)).plain == expected


def test_no_agent_known() -> None:
    assert agent_line(None).plain == "agent not known"


@pytest.mark.parametrize(("width", "height"), [(80, 24), (160, 48), (60, 12)])
def test_screen_fits_exactly(width: int, height: int, snapshot: SnapshotAssertion) -> None:
    text = _screen(snapshot_doc(), width, height)
    lines = text.rstrip("\n").split("\n")
    assert len(lines) == height
    assert all(len(line) == width for line in lines)  # cut, never wrapped
    assert text == snapshot


def test_screen_shows_the_figures() -> None:
    text = _screen(snapshot_doc(), 80, 24)
    for figure in ("qwen2.5:7b", "5.4 GB", "4m 10s", "48.2", "120 ms", "/srv/models/ollama"):
        assert figure in text
    assert "declared 5 · present 4 · 2 pending (1 install, 1 delete)" in text
    assert "pressure normal · thermal nominal · power ac" in text


def test_unavailable_figures_say_so() -> None:
    doc = snapshot_doc()
    doc["system"].update(memory_pressure=None, thermal=None, power={"source": None})
    doc["system"]["unavailable"] = {"thermal": "no sensors", "memory_pressure": "no PSI"}
    text = _screen(doc, 160, 48)
    assert "pressure n/a · thermal n/a · power n/a" in text
    assert "n/a: memory_pressure (no PSI), thermal (no sensors)" in text


def test_ollama_unreachable_and_nothing_yet() -> None:
    doc = snapshot_doc(
        ollama={"host": "http://127.0.0.1:1", "reachable": False, "error": "connection refused"},
        stores=[],
        benchmarks=[],
        drift={"error": "mlx.yaml: line 3: unknown key"},
    )
    text = _screen(doc, 80, 24)
    assert "Ollama at http://127.0.0.1:1: connection refused" in text
    assert "no store found" in text
    assert "no benchmark run yet" in text
    assert "drift: mlx.yaml: line 3: unknown key" in text


def test_before_the_first_sample() -> None:
    text = _screen(None, 80, 24)
    assert text.startswith("mlx dashboard · sampling…")
    assert "─ models ─" not in text


def test_hostile_text_is_escaped() -> None:
    doc = snapshot_doc()
    doc["ollama"]["running"][0]["name"] = "evil\x1b[2Jname"
    text = _screen(doc, 80, 24)
    assert "\x1b" not in text
    assert "evil\\x1b[2Jname" in text


def test_plan_view(snapshot: SnapshotAssertion) -> None:
    view = plan_view(snapshot_doc(), "Plan: 1 to install, 1 to delete.\n  + ollama://qwen")
    assert _text(view, 80, 10) == snapshot
    assert "computing the plan…" in _text(plan_view(snapshot_doc(), None), 80, 10)


def test_stacked_text_has_every_panel() -> None:
    text = _text(stacked(snapshot_doc(), PANELS, _trends(snapshot_doc())), 100, 200)
    assert [t for t in PANELS if f"─ {t} ─" in text] == PANELS


def test_no_color_has_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    doc = snapshot_doc()
    colored = _text(screen(doc, PANELS, _trends(doc), width=80, height=24), color=True)
    assert "\x1b[34m" in colored  # blue borders
    monkeypatch.setenv("NO_COLOR", "1")
    plain = _text(screen(doc, PANELS, _trends(doc), width=80, height=24), color=True)
    assert "\x1b[3" not in plain
