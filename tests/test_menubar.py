"""`mlx menubar`: the plugin output of snapshot documents, checked against SwiftBar's line
grammar (tests/helpers/swiftbar.py), and where the snapshot comes from."""

from __future__ import annotations

import copy
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from syrupy.assertion import SnapshotAssertion

from mlxstate.dashboard.menubar import render, render_error
from mlxstate.dashboard.menubar_source import (
    MAX_BYTES,
    default_state_dir,
    produce,
    read_fresh,
    state_dir_if_default,
)
from mlxstate.seams import Seams
from tests.helpers import mlx, state_dir
from tests.helpers.swiftbar import Menu, check

MLX = "/opt/homebrew/bin/mlx"
SPEC = "/Users/x/dotfiles/mlx.yaml"
NOW = 1_800_000_000.0


def snapshot_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format_version": "1",
        "time": "2026-11-30T15:00:00Z",
        "host": {"name": "studio", "os": "darwin 25.1", "arch": "arm64"},
        "system": {"cpu_percent": 12.5, "memory_pressure": "normal", "unavailable": {}},
        "ollama": {
            "host": "http://127.0.0.1:11434",
            "reachable": True,
            "version": "0.12.3",
            "error": None,
            "running": [
                {
                    "name": "qwen2.5:7b",
                    "size_bytes": 4_700_000_000,
                    "vram_bytes": 4_100_000_000,
                    "expires_at": "2026-11-30T15:04:00Z",
                    "context_length": 4096,
                }
            ],
        },
        "stores": [
            {
                "kind": "ollama",
                "path": "/Users/x/.ollama/models",
                "size_bytes": 12_300_000_000,
                "free_bytes": 100_000_000_000,
                "reclaimable_bytes": 1_200_000_000,
                "models": 3,
                "scanned_at": "2026-11-30T14:59:00Z",
            }
        ],
        "drift": {
            "declared": 5,
            "present": 4,
            "pending": {"total": 0},
            "source": "agent",
            "at": "2026-11-30T14:59:00Z",
            "error": None,
        },
        "agent": {"running": True, "pid": 42, "suspended": False, "conditions": []},
        "benchmarks": [
            {
                "model": "qwen2.5:7b",
                "benchmark": "nightly",
                "engine": "ollama",
                "latest": {
                    "time": "2026-11-30T13:00:00Z",
                    "status": "ok",
                    "gen_tps": 48.2,
                    "ttft_ms": 120.0,
                },
                "history": [],
            }
        ],
    }
    doc.update(changes)
    return doc


def rendered(doc: Any, spec: str | None = SPEC, mlx_path: str = MLX) -> Menu:
    return check(render(doc, mlx_path, spec))


def header(menu: Menu) -> str:
    assert len(menu.header) == 1
    return menu.header[0].text


# -- the header at a glance -------------------------------------------------------------


def test_header_shows_the_running_model_and_its_last_tokens_per_second() -> None:
    menu = rendered(snapshot_doc())
    assert header(menu) == "qwen2.5:7b 48 tok/s"
    assert menu.header[0].params["sfimage"] == "cpu"
    assert menu.header[0].params["dropdown"] == "false"


def test_header_shows_a_warning_with_the_count_of_pending_changes() -> None:
    doc = snapshot_doc(drift={"declared": 5, "present": 3, "pending": {"total": 2, "install": 2}})
    doc["ollama"]["running"] = []
    menu = rendered(doc)
    assert header(menu) == "⚠ 2"
    assert menu.header[0].params["sfimage"] == "exclamationmark.triangle"
    assert menu.header[0].params["color"] == "#c93400,#ff9f0a"
    assert menu.find("Pending changes: 2 (2 install)").params["sfimage"]


def test_a_stalled_agent_is_marked_red_and_says_why() -> None:
    stalled = {"type": "Stalled", "status": "True", "reason": "Failing", "message": "disk full"}
    doc = snapshot_doc(agent={"running": True, "suspended": False, "conditions": [stalled]})
    menu = rendered(doc)
    assert header(menu).endswith("stalled")
    assert menu.header[0].params["sfimage"] == "exclamationmark.octagon"
    assert menu.find("Agent stalled: disk full").params["color"] == "#d70015,#ff453a"


def test_a_suspended_agent_is_never_shown_green_and_offers_resume() -> None:
    ready = {"type": "Ready", "status": "True", "reason": "Applied", "message": "ok"}
    doc = snapshot_doc(agent={"running": True, "suspended": True, "conditions": [ready]})
    menu = rendered(doc)
    assert header(menu).endswith("suspended")
    assert menu.header[0].params["sfimage"] == "pause.circle"
    assert menu.find("Agent suspended").params["color"] == "#6e6e73,#98989d"
    assert menu.find("Resume agent").argv == [MLX, "resume", "-f", SPEC]
    assert not [i for i in menu.items if i.text == "Suspend agent"]


def test_nothing_running_and_nothing_pending_reads_mlx_with_a_checkmark() -> None:
    doc = snapshot_doc()
    doc["ollama"]["running"] = []
    menu = rendered(doc)
    assert header(menu) == "mlx"
    assert menu.header[0].params["sfimage"] == "checkmark.circle"
    assert menu.find("none loaded")


# -- the menu ---------------------------------------------------------------------------


def test_menu_lists_models_drift_disk_benchmarks_and_the_agent() -> None:
    menu = rendered(snapshot_doc())
    texts = [item.text for item in menu.items]
    assert "qwen2.5:7b · 4.1 GB VRAM · unloads in 4m" in texts
    assert "Present 4 of 5 declared" in texts
    assert "In sync" in texts
    assert "ollama 12.3 GB" in texts
    assert "Free 100.0 GB" in texts and "Reclaimable 1.2 GB" in texts
    assert "qwen2.5:7b 48.2 tok/s · 2h ago" in texts
    assert "Agent running" in texts
    submenu = [i.text for i in menu.items if i.depth == 1]
    assert "Context 4096" in submenu and "First token 120 ms" in submenu


def test_actions_run_the_absolute_mlx_with_the_absolute_spec() -> None:
    menu = rendered(snapshot_doc())
    dash = menu.find("Open dashboard")
    assert dash.argv == [MLX, "dashboard", "-f", SPEC]
    assert dash.params["terminal"] == "true"
    assert menu.find("Plan").argv == [MLX, "plan", "-f", SPEC]
    assert menu.find("Apply").params["terminal"] == "true"
    reconcile = menu.find("Reconcile now")
    assert reconcile.argv == [MLX, "reconcile", "-f", SPEC]
    assert (reconcile.params["terminal"], reconcile.params["refresh"]) == ("false", "true")
    assert menu.find("Suspend agent").argv == [MLX, "suspend", "-f", SPEC]


def test_without_a_known_spec_the_actions_have_no_file_option() -> None:
    menu = rendered(snapshot_doc(), spec=None)
    assert menu.find("Plan").argv == [MLX, "plan"]


def test_mlx_started_through_python_is_passed_as_bash_and_params() -> None:
    menu = check(render(snapshot_doc(), ["/usr/bin/python3", "-m", "mlxstate"], SPEC))
    assert menu.find("Plan").argv == ["/usr/bin/python3", "-m", "mlxstate", "plan", "-f", SPEC]


@pytest.mark.parametrize(
    "spec",
    [
        "/Users/x/My Models/mlx.yaml",
        "/Users/x/it's/mlx.yaml",
        '/Users/x/say "hi"/mlx.yaml',
        "/Users/x/a|b/mlx.yaml",
        "/Users/x/a=b c/mlx.yaml",
        "/Users/x/ünïcødé 模型/mlx.yaml",
        "/Users/x/back\\slash/mlx.yaml",
    ],
)
def test_spec_paths_with_spaces_quotes_and_bars_survive_the_round_trip(spec: str) -> None:
    menu = rendered(snapshot_doc(), spec=spec)
    assert menu.find("Plan").argv == [MLX, "plan", "-f", spec]


def test_a_path_no_quoting_can_carry_leaves_the_action_out_instead_of_breaking_it() -> None:
    spec = """/Users/x/both ' and "/mlx.yaml"""
    menu = rendered(snapshot_doc(), spec=spec)
    assert menu.find("Plan…: path not usable here").argv == []
    assert all(not item.argv or item.argv[-1] != spec for item in menu.items)


@pytest.mark.parametrize(
    "name",
    [
        "evil | bash=/bin/rm param1=-rf",
        "two\nlines\n---\nfake item | bash=/bin/sh",
        "quote\" and 'single",
        "--looks-like-a-submenu",
        "---",
        "tab\tand\rcarriage\x1b[31m",
        "模型:7b 🚀 ñ",
        ":rocket: :cpu:",
        "back\\nslash",
        "x" * 5000,
        "",
    ],
)
def test_hostile_model_names_stay_one_plain_item(name: str) -> None:
    doc = snapshot_doc()
    doc["ollama"]["running"][0]["name"] = name
    doc["benchmarks"][0]["model"] = name
    doc["stores"][0]["path"] = name
    doc["drift"]["error"] = name
    menu = rendered(doc)
    assert not [i for i in menu.items if i.argv and i.argv[0] != MLX]
    model_line = next(i for i in menu.items if i.params.get("sfimage") == "cpu")
    assert "bash" not in model_line.params and len(model_line.text) <= 120
    if ":" in model_line.text:
        assert model_line.params["symbolize"] == "false"


@settings(max_examples=150, deadline=None)
@given(name=st.text(max_size=60), path=st.text(min_size=1, max_size=60))
def test_any_text_renders_to_valid_output(name: str, path: str) -> None:
    doc = snapshot_doc()
    doc["ollama"]["running"][0]["name"] = name
    doc["agent"]["conditions"] = [{"type": "Stalled", "status": "True", "message": name}]
    spec = "/" + path
    menu = rendered(doc, spec=spec)
    plan = next(i for i in menu.items if i.text.startswith("Plan"))
    assert plan.argv in ([MLX, "plan", "-f", spec], [])


# -- unknown is never 0 ------------------------------------------------------------------


def test_missing_figures_read_unknown_never_zero() -> None:
    doc = snapshot_doc(drift={"declared": None, "present": None, "pending": None})
    doc["ollama"]["running"][0].update(vram_bytes=None, expires_at=None, context_length=None)
    doc["stores"][0].update(size_bytes=None, free_bytes=None, reclaimable_bytes=None)
    doc["benchmarks"][0]["latest"].update(gen_tps=None, ttft_ms=None)
    menu = rendered(doc)
    texts = [item.text for item in menu.items]
    assert "qwen2.5:7b · unknown VRAM · unloads unknown" in texts
    assert "Present unknown of unknown declared" in texts
    assert "Pending changes: unknown" in texts
    assert "ollama unknown" in texts and "Free unknown" in texts
    assert "Context unknown" in texts and "First token unknown" in texts
    assert any(t.startswith("qwen2.5:7b unknown tok/s") for t in texts)
    assert header(menu) == "qwen2.5:7b"
    assert not [t for t in texts if " 0 B" in t or "0.0 tok/s" in t]


@pytest.mark.parametrize(
    "doc",
    [
        None,
        [],
        "text",
        42,
        {"format_version": "1"},
        {"ollama": [], "stores": {}, "drift": "x", "agent": 3, "benchmarks": "y"},
        {"ollama": {"running": [1, "a", None, {"name": 5, "vram_bytes": "big"}]}},
        {"drift": {"pending": {"total": True, "install": "2", "delete": float("nan")}}},
        {"stores": [{"size_bytes": -1, "free_bytes": float("inf"), "path": ["x"]}]},
        {"benchmarks": [{"latest": {"gen_tps": "fast", "time": "yesterday"}}]},
        {"agent": {"conditions": [{"type": "Stalled", "status": "True", "message": {}}]}},
        {"time": "2026-13-99", "ollama": {"running": [{"expires_at": "x" * 10_000}]}},
    ],
)
def test_wrong_types_render_without_error(doc: Any) -> None:
    menu = rendered(doc)
    assert menu.find("Open dashboard").argv == [MLX, "dashboard", "-f", SPEC]


def test_render_error_is_valid_output_with_the_problem_in_the_menu() -> None:
    menu = check(render_error("dashboard.json is not JSON | bash=/bin/sh", MLX, SPEC))
    assert header(menu) == "mlx ⚠"
    assert menu.items[0].text == "dashboard.json is not JSON ¦ bash=/bin/sh"
    assert "bash" not in menu.items[0].params


# -- snapshots ---------------------------------------------------------------------------


def _variants() -> dict[str, Any]:
    pending = snapshot_doc(drift={"declared": 5, "present": 3, "pending": {"total": 3}})
    pending["drift"]["pending"].update(install=2, delete=1)
    down = copy.deepcopy(pending)
    down["ollama"] = {"reachable": False, "error": "connection refused", "running": []}
    down["agent"] = {"running": False, "suspended": True, "conditions": []}
    return {"running": snapshot_doc(), "pending_ollama_down": down}


@pytest.mark.parametrize("variant", sorted(_variants()))
def test_output_snapshot(variant: str, snapshot: SnapshotAssertion) -> None:
    out = render(_variants()[variant], MLX, SPEC, origin="from the agent")
    check(out)
    assert out == snapshot


def test_error_output_snapshot(snapshot: SnapshotAssertion) -> None:
    out = render_error("No fresh snapshot: dashboard.json is stale (95 s old)", MLX, SPEC)
    assert out == snapshot


# -- where the snapshot comes from -------------------------------------------------------


def _write(path: Path, data: bytes | str, age: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    os.utime(path, (NOW - age, NOW - age))
    return path


def test_a_fresh_snapshot_is_read(tmp_path: Path) -> None:
    path = _write(tmp_path / "dashboard.json", json.dumps(snapshot_doc()), age=10)
    assert read_fresh(path, NOW) == (snapshot_doc(), None)


def test_no_file_is_no_problem(tmp_path: Path) -> None:
    assert read_fresh(tmp_path / "dashboard.json", NOW) == (None, None)


@pytest.mark.parametrize(
    ("data", "age", "problem"),
    [
        ("{}", 31, "dashboard.json is stale (31 s old)"),
        ("{}", -60, "dashboard.json is stale (-60 s old)"),
        ("not json", 1, "dashboard.json is not JSON (JSONDecodeError)"),
        (b"\xff\xfe{", 1, "dashboard.json is not JSON (UnicodeDecodeError)"),
        ("[" * 200_000 + "]" * 200_000, 1, "dashboard.json is nested too deeply"),
        ("[1, 2]", 1, "dashboard.json is not a JSON object"),
        ('{"format_version": "2"}', 1, "dashboard.json has an unknown format_version"),
        (" " * (MAX_BYTES + 1), 1, f"dashboard.json is too large ({MAX_BYTES + 1} bytes)"),
    ],
)
def test_unusable_snapshots_say_why(
    tmp_path: Path, data: str | bytes, age: float, problem: str
) -> None:
    path = _write(tmp_path / "dashboard.json", data, age=age)
    assert read_fresh(path, NOW) == (None, problem)


def test_a_fifo_or_a_symlink_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo" / "dashboard.json"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    assert read_fresh(fifo, NOW) == (None, "dashboard.json is not a regular file")
    link = tmp_path / "link" / "dashboard.json"
    link.parent.mkdir()
    link.symlink_to(_write(tmp_path / "elsewhere.json", json.dumps(snapshot_doc())))
    doc, problem = read_fresh(link, NOW)
    assert doc is None and problem is not None and problem.startswith("dashboard.json: ")


def test_produce_renders_the_agent_snapshot_without_sampling(tmp_path: Path) -> None:
    _write(tmp_path / "dashboard.json", json.dumps(snapshot_doc()))

    def never() -> Any:
        raise AssertionError("sampled although the snapshot is fresh")

    menu = check(produce(tmp_path, NOW, (MLX,), SPEC, never))
    assert header(menu) == "qwen2.5:7b 48 tok/s"
    assert menu.items[-1].text == "Snapshot 2026-11-30T15:00:00Z (from the agent)"


def test_produce_samples_when_the_file_is_corrupt(tmp_path: Path) -> None:
    _write(tmp_path / "dashboard.json", "{garbage")
    menu = check(produce(tmp_path, NOW, (MLX,), SPEC, lambda: snapshot_doc()))
    assert header(menu) == "qwen2.5:7b 48 tok/s"
    footer = "(sampled now; dashboard.json is not JSON (JSONDecodeError))"
    assert menu.items[-1].text.endswith(footer)


def test_produce_without_sampler_or_with_a_failing_one_shows_the_warning(
    tmp_path: Path,
) -> None:
    menu = check(produce(tmp_path, NOW, (MLX,), SPEC, None))
    assert header(menu) == "mlx ⚠"
    assert menu.items[0].text.startswith("No fresh snapshot: no dashboard.json")

    def broken() -> Any:
        raise OSError("psutil exploded")

    menu = check(produce(tmp_path, NOW, (MLX,), SPEC, broken))
    assert header(menu) == "mlx ⚠"
    assert menu.items[0].text == "Sampling failed: OSError: psutil exploded"


# -- the state folder --------------------------------------------------------------------


@pytest.mark.parametrize("xdg", ["set", "unset"])
def test_default_state_dir_is_what_settings_resolve(
    xdg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlxstate.settings import read_environment, resolve

    if xdg == "unset":
        monkeypatch.delenv("XDG_STATE_HOME")
    expected = resolve(None, read_environment()).state_dir
    assert default_state_dir(os.environ) == expected


def test_a_spec_that_may_set_state_dir_is_left_to_the_loader(tmp_path: Path) -> None:
    plain = tmp_path / "plain.yaml"
    plain.write_text("version: 1\nmodels: {}\n")
    assert state_dir_if_default(plain, os.environ) == default_state_dir(os.environ)
    custom = tmp_path / "custom.yaml"
    custom.write_text("version: 1\nsettings:\n  state_dir: /somewhere\n")
    assert state_dir_if_default(custom, os.environ) is None
    escaped = tmp_path / "escaped.yaml"
    escaped.write_text('version: 1\nsettings:\n  "state\\x5fdir": /somewhere\n')
    assert state_dir_if_default(escaped, os.environ) is None


# -- the command -------------------------------------------------------------------------


def test_mlx_menubar_reads_the_agent_snapshot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "mlx.yaml"
    spec.write_text("version: 1\nmodels: {}\n")
    _write(state_dir() / "dashboard.json", json.dumps(snapshot_doc()))
    result = mlx(capsys, "menubar", "-f", str(spec), seams=Seams(clock=lambda: NOW))
    assert result.code == 0, result.err
    menu = check(result.out)
    assert header(menu) == "qwen2.5:7b 48 tok/s"
    assert menu.find("Plan").argv[-2:] == ["-f", str(spec)]


def test_mlx_menubar_uses_the_state_dir_the_spec_sets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    custom = tmp_path / "custom-state"
    spec = tmp_path / "mlx.yaml"
    spec.write_text(f"version: 1\nsettings:\n  state_dir: {custom}\nmodels: {{}}\n")
    doc = snapshot_doc()
    doc["ollama"]["running"][0]["name"] = "from-custom-state"
    _write(custom / "dashboard.json", json.dumps(doc))
    result = mlx(capsys, "menubar", "-f", str(spec), seams=Seams(clock=lambda: NOW))
    assert header(check(result.out)).startswith("from-custom-state")


def test_mlx_menubar_with_a_missing_spec_shows_the_problem_in_the_menu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = mlx(capsys, "menubar", "-f", str(tmp_path / "nope.yaml"))
    assert result.code == 0
    menu = check(result.out)
    assert header(menu) == "mlx ⚠"
    assert "nope.yaml" in menu.items[0].text


def test_the_plugin_call_imports_neither_the_parser_nor_pydantic(tmp_path: Path) -> None:
    """What keeps `mlx menubar` fast with a fresh snapshot: no option parser, no models."""
    import subprocess

    spec = tmp_path / "mlx.yaml"
    spec.write_text("version: 1\nmodels: {}\n")
    written = _write(state_dir() / "dashboard.json", json.dumps(snapshot_doc()))
    os.utime(written)  # now: the subprocess reads the real clock
    code = (
        "import sys; from mlxstate.cli.main import main; rc = main(sys.argv[1:]);"
        "print([m for m in ('typer', 'pydantic', 'yaml', 'ruamel') if m in sys.modules], rc)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "menubar", "-f", str(spec)],
        capture_output=True,
        text=True,
        check=True,
    )
    *menu, last = done.stdout.splitlines()
    assert last == "[] 0"
    assert check("\n".join(menu) + "\n").header[0].text == "qwen2.5:7b 48 tok/s"


@pytest.mark.parametrize(
    ("running", "source"),
    [
        ("qwen2.5:7b", "ollama://qwen2.5:7b"),
        ("qwen2.5:latest", "ollama://qwen2.5"),
        ("qwen2.5:latest", "ollama://registry.ollama.ai/library/qwen2.5"),
        ("hf.co/org/repo:Q4_K_M", "ollama://hf.co/org/repo:Q4_K_M"),
    ],
)
def test_the_header_finds_the_benchmark_of_a_running_model_by_its_source(
    running: str, source: str
) -> None:
    doc = snapshot_doc()
    doc["ollama"]["running"][0]["name"] = running
    doc["benchmarks"][0].update(model="declared-name", source=source)
    assert header(rendered(doc)) == f"{running} 48 tok/s"
    doc["benchmarks"][0]["source"] = "ollama://other:1b"
    assert header(rendered(doc)) == running


def test_a_stale_snapshot_is_replaced_by_a_sample_of_this_mlx_yaml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    spec = tmp_path / "mlx.yaml"
    spec.write_text("version: 1\nmodels: {}\n")
    _write(state_dir() / "dashboard.json", json.dumps(snapshot_doc()), age=300)
    asked: list[Path | None] = []

    def sample(file: Path | None = None) -> dict[str, Any]:
        asked.append(file)
        doc = snapshot_doc()
        doc["ollama"]["running"][0]["name"] = "sampled-now"
        return doc

    fake = types.ModuleType("mlxstate.dashboard.sampler")
    fake.sample = sample  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mlxstate.dashboard.sampler", fake)
    result = mlx(capsys, "menubar", "-f", str(spec), seams=Seams(clock=lambda: NOW))
    menu = check(result.out)
    assert asked == [spec]
    assert header(menu).startswith("sampled-now")
    assert menu.items[-1].text.endswith("(sampled now; dashboard.json is stale (300 s old))")
