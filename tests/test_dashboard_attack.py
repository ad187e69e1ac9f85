"""`mlx dashboard` and `mlx menubar` against hostile input: names rich would read as markup,
numbers no figure can be (400 digits, NaN, infinity), terminals too small for one panel, an
Ollama that drips its answer or sends megabytes, a FIFO named with -f, garbage from pmset
and macmon, psutil raising, and `p` pressed again and again."""

from __future__ import annotations

import json
import math
import os
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from rich.console import Console

from mlxstate.dashboard import tui
from mlxstate.dashboard.menubar import render
from mlxstate.dashboard.menubar_source import state_dir_if_default
from mlxstate.dashboard.render import Trends, screen
from mlxstate.dashboard.system import SystemProbe, macmon_figures, pmset_thermal
from mlxstate.observe.ollama_api import probe_daemon, running_models
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import mlx
from tests.helpers.dashboard_doc import MARKUP_NAMES, hostile_doc, snapshot_doc
from tests.helpers.swiftbar import check

PANELS = ["models", "system", "disk", "benchmarks"]
HOSTILE_NUMBERS = [10**400, -(10**400), math.nan, math.inf, -math.inf]


def draw(doc: dict[str, Any] | None, width: int, height: int) -> str:
    console = Console(width=width, height=height, record=True, file=open(os.devnull, "w"))  # noqa: SIM115
    trends = Trends(timedelta(days=7))
    if doc is not None:
        trends.add(doc)
    console.print(screen(doc, PANELS, trends, width=width, height=height))
    return console.export_text()


def test_names_that_look_like_rich_markup_are_shown_as_text() -> None:
    # A table cell given as a string is parsed as markup: "[/]" stopped the dashboard.
    text = draw(hostile_doc(1), 160, 48)
    for name in MARKUP_NAMES:
        assert name in text


@pytest.mark.parametrize("number", HOSTILE_NUMBERS, ids=["int400", "-int400", "nan", "inf", "-inf"])
def test_numbers_no_figure_can_be_are_unknown_not_a_crash(number: Any) -> None:
    doc = hostile_doc(number)
    screen_text = draw(doc, 160, 48)
    assert "[/]" in screen_text and "n/a" in screen_text
    menu = render(json.loads(json.dumps(doc)), "/usr/local/bin/mlx", None)
    check(menu)
    assert "Present unknown of unknown declared" in menu


@pytest.mark.parametrize(("width", "height"), [(20, 5), (80, 4), (10, 3), (1, 1)])
def test_a_terminal_too_small_for_one_panel_says_so(width: int, height: int) -> None:
    # Every panel hidden used to leave a layout drawing itself: RecursionError.
    text = draw(snapshot_doc(), width, height)
    if height > 3:
        assert "enlarge" in text


def test_ollama_counts_beyond_int64_are_not_figures() -> None:
    (model,) = running_models({"models": [{"name": "a", "size": 10**400, "size_vram": 2**63}]})
    assert (model.size, model.size_vram) == (0, 0)


def test_hostile_ollama_answer_through_once_and_menubar(
    ollama_server: FakeOllama, capsys: pytest.CaptureFixture[str]
) -> None:
    ollama_server.running["x"] = {
        "name": "[/]x[bold]y",
        "size": 10**400,
        "size_vram": 10**400,
        "expires_at": "9999-12-31T23:59:59Z",
        "context_length": 10**400,
    }
    once = mlx(capsys, "dashboard", "--once")
    assert once.code == 0, once.err
    assert "[/]x[bold]y" in once.out
    menubar = mlx(capsys, "menubar")
    assert menubar.code == 0, menubar.err
    assert check(menubar.out).header[0].text.startswith("[/]x[bold]y")


def test_an_ollama_dripping_its_answer_is_cut_at_the_deadline(ollama_server: FakeOllama) -> None:
    # Four bytes a second: each read comes within the read timeout, the answer never ends
    # in time (the version alone takes five seconds, the running models minutes).
    ollama_server.running.update({f"m{i}": {"name": f"m{i}" * 20} for i in range(20)})
    ollama_server.throttle(4)
    daemon = probe_daemon(ollama_server.url)
    assert (daemon.reachable, daemon.error) == (False, "timed out")


def test_an_oversized_answer_is_not_read_whole() -> None:
    pad = "x" * (2 * 1024 * 1024)  # twice what a probe reads

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/version":
            return httpx.Response(200, json={"version": "0.12.3"})
        return httpx.Response(200, json={"models": [], "pad": pad})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        daemon = probe_daemon("http://ollama.test", client)
    assert not daemon.reachable
    assert daemon.error == "not an Ollama API (an answer over 1024 kB)"


def test_a_fifo_named_with_f_does_not_hold_the_plugin(tmp_path: Path) -> None:
    fifo = tmp_path / "mlx.yaml"
    os.mkfifo(fifo)
    result: list[object] = []
    reader = threading.Thread(
        target=lambda: result.append(state_dir_if_default(fifo, {})), daemon=True
    )
    reader.start()
    reader.join(30)
    if reader.is_alive():  # free the blocked open so the test run can end
        with open(fifo, "wb"):
            pass
    assert result == [None]  # left to the loader, which says what is wrong


def test_garbage_from_pmset_and_macmon_is_no_figure() -> None:
    assert pmset_thermal("CPU_Speed_Limit = " + "9" * 5000) == "nominal"
    assert macmon_figures("[" * 100_000) is None
    assert macmon_figures('{"gpu_power": 1' + "0" * 400 + "}") is None
    gpu, temps = macmon_figures('{"gpu_power": 2.5, "temp": {"cpu_temp_avg": 1e999}}') or ({}, {})
    assert gpu["power_w"] == 2.5 and temps == {}
    probe = SystemProbe(
        platform="darwin",
        runner=lambda argv, timeout: "[" * 100_000 if argv[0] == "macmon" else "\x00garbage",
        which=lambda name: f"/opt/homebrew/bin/{name}",
    )
    doc = probe()
    json.dumps(doc, allow_nan=False)
    assert doc["gpu"] is None and doc["unavailable"]["gpu"] == "`macmon pipe` gave no sample"


def test_psutil_raising_for_battery_and_sensors_is_not_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken() -> Any:
        raise ValueError("invalid literal for int() with base 10: 'Unknown'")

    monkeypatch.setattr(psutil, "sensors_battery", broken)
    monkeypatch.setattr(psutil, "sensors_temperatures", broken, raising=False)
    doc = SystemProbe(platform="linux", which=lambda name: None)()
    assert doc["power"] == {"source": None, "battery_percent": None}
    assert "power" in doc["unavailable"] and doc["temperatures_c"] is None


def test_pressing_p_again_while_the_plan_runs_starts_no_second_plan() -> None:
    started, release = [], threading.Event()

    def plan() -> str:
        started.append(1)
        release.wait(30)
        return "no changes"

    waker = tui._Waker()
    sampler = tui._Sampler(snapshot_doc, 60.0, waker.wake)
    settings = type("S", (), {"refresh": 1.0, "panels": PANELS, "history": 60.0})()
    loop = tui._Loop(0, waker, sampler, settings, plan)
    try:
        for keys in (b"p", b"x", b"p", b"x", b"p"):
            assert loop.keys(keys)
        assert len(started) == 1 and loop.plan_fetch is loop.last_fetch
    finally:
        release.set()
        waker.close()


def test_an_escape_sequence_in_an_app_path_is_shown_not_run(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("app\x1b[2Jx").mkdir()
    Path("mlx.yaml").write_text(
        'version: 1\napps:\n  myapp:\n    path: "./app\\e[2Jx"\n    models: []\n'
    )
    once = mlx(capsys, "dashboard", "--once")
    assert once.code == 0, once.err
    assert "\x1b" not in once.out and "app\\x1b[2Jx" in once.out


def test_a_closed_stdin_is_not_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", None)  # what Python makes of `mlx dashboard <&-`
    result = mlx(capsys, "dashboard")
    assert result.code == 1
    assert result.err.splitlines()[0] == "error: mlx dashboard needs a terminal"


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_a_snapshot_time_at_the_ends_of_the_calendar_draws(
    when: str, zone: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its local time (14 h ahead, 11 h behind) does not exist: the header leaves it out.
    monkeypatch.setenv("TZ", zone)
    time.tzset()
    try:
        text = draw(snapshot_doc(time=when), 80, 24)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert text.startswith("mlx dashboard · studio\n") or text.startswith("mlx dashboard · studio ")


def test_quitting_ends_a_plan_still_being_computed() -> None:
    import subprocess

    from mlxstate.cli import dashboard as cli_dashboard

    slow = subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL, text=True)
    cli_dashboard._PLANS.add(slow)  # what a `p` keeps while its `mlx plan` runs
    try:
        cli_dashboard._stop_plans()  # registered with atexit by the first `p`
        assert slow.wait(timeout=10) == -9
    finally:
        cli_dashboard._PLANS.discard(slow)
        if slow.poll() is None:
            slow.kill()
