"""`mlx dashboard` in a real terminal (tmux): panels, figures, keys, resize, NO_COLOR."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.builders import ollama_store as ob
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import ollama_dir
from tests.helpers.bench import make_run, save_runs
from tests.helpers.dashboard_doc import snapshot_doc, write_snapshot_doc
from tests.helpers.tmux import MLX, TMUX, Pane, tmux_run

_NO_TMUX = shutil.which(TMUX) is None

TITLES = ("models", "system", "disk", "benchmarks")
FIGURES = ("qwen2.5:7b", "48.2", "/srv/models/ollama", "2 pending")
_SGR_COLOR = re.compile(r"\x1b\[[0-9;]*(?:3[0-7]|38;|9[0-7])[0-9;]*m")


def _dashboard(
    tmp_path: Path, width: int, height: int, *extra: str, **env: str
) -> contextlib.AbstractContextManager[Pane]:
    doc = write_snapshot_doc(tmp_path / "snapshot.json")
    return tmux_run(
        [MLX, "dashboard", "--snapshot-file", str(doc), *extra],
        width=width,
        height=height,
        env={**os.environ, **env},
        folder=tmp_path,
    )


def _panels_shown(screen: str) -> bool:
    return all(f"─ {t} ─" in screen for t in TITLES)


def _assert_framed(pane: Pane, width: int, height: int) -> None:
    """Header, agent line, panels, keys: every panel row is a whole bordered line; nothing
    wrapped onto the next row."""
    pane.wait_for(" q  quit")  # the last line drawn: the frame is complete
    lines = pane.lines()[:height]
    assert len(lines) == height
    assert lines[0].startswith("mlx dashboard · studio")
    assert lines[1].startswith("agent ready")
    assert "q  quit" in lines[-1], pane.text()  # drawn for the pane's height
    for line in lines[2:-1]:
        assert line[:1] in ("╭", "│", "╰"), line
        assert line.rstrip()[-1:] in ("╮", "│", "╯"), line
        assert len(line.rstrip()) == width, line


@pytest.mark.slow
@pytest.mark.skipif(_NO_TMUX, reason="tmux is not installed")
@pytest.mark.parametrize(("width", "height"), [(80, 24), (160, 48)])
def test_panels_figures_refresh_quit(tmp_path: Path, width: int, height: int) -> None:
    with _dashboard(tmp_path, width, height) as pane:
        screen = pane.wait_until(_panels_shown, what=TITLES)
        pane.wait_for(*FIGURES)
        _assert_framed(pane, width, height)
        # Panels in mlx.yaml's order (the default): models, system, disk, benchmarks.
        at = [screen.index(f"─ {t} ─") for t in TITLES]
        assert at == sorted(at)
        if width >= 160:  # side by side: models and system share their top border row
            assert screen.split("\n")[2].count("╭─") == 2
        # A new snapshot is shown on `r` (the file is re-read).
        (tmp_path / "snapshot.json").write_text(
            json.dumps(snapshot_doc(host={"name": "refreshed"})), encoding="utf-8"
        )
        pane.send("r")
        pane.wait_for("mlx dashboard · refreshed")
        pane.send("q")
        assert pane.exit_code() == 0


@pytest.mark.slow
@pytest.mark.skipif(_NO_TMUX, reason="tmux is not installed")
def test_mlx_yaml_panel_order(tmp_path: Path) -> None:
    (tmp_path / "mlx.yaml").write_text(
        "version: 1\nmodels: {}\ndashboard:\n  panels: [benchmarks, models]\n", encoding="utf-8"
    )
    with _dashboard(tmp_path, 80, 24) as pane:
        screen = pane.wait_for("─ benchmarks ─", "─ models ─")
        assert screen.index("─ benchmarks ─") < screen.index("─ models ─")
        assert "─ system ─" not in screen and "─ disk ─" not in screen
        pane.send("q")
        assert pane.exit_code() == 0


@pytest.mark.slow
@pytest.mark.skipif(_NO_TMUX, reason="tmux is not installed")
def test_resize_redraws_to_the_new_size(tmp_path: Path) -> None:
    with _dashboard(tmp_path, 160, 48) as pane:
        pane.wait_until(_panels_shown, what=TITLES)
        pane.resize(80, 24)
        pane.wait_until(lambda s: s.split("\n")[2].count("╭─") == 1, what="one column")
        pane.wait_for(*FIGURES)
        _assert_framed(pane, 80, 24)
        pane.send("q")
        assert pane.exit_code() == 0


@pytest.mark.slow
@pytest.mark.skipif(_NO_TMUX, reason="tmux is not installed")
def test_plan_view_and_back(tmp_path: Path) -> None:
    with _dashboard(tmp_path, 80, 24) as pane:
        pane.wait_until(_panels_shown, what=TITLES)
        pane.send("p")
        # No mlx.yaml here: the plan's own error is what `p` shows, under the drift counts.
        pane.wait_for("─ plan ─", "2 pending (1 install, 1 delete)", "no mlx.yaml found")
        pane.send("x")
        pane.wait_until(_panels_shown, what=TITLES)
        pane.send("q")
        assert pane.exit_code() == 0


@pytest.mark.slow
@pytest.mark.skipif(_NO_TMUX, reason="tmux is not installed")
def test_colors_follow_no_color(tmp_path: Path) -> None:
    with _dashboard(tmp_path, 80, 24) as pane:
        colored = pane.wait_until(_panels_shown, escapes=True, what=TITLES)
        pane.send("q")
        assert pane.exit_code() == 0
    assert _SGR_COLOR.search(colored)
    with _dashboard(tmp_path, 80, 24, NO_COLOR="1") as pane:
        plain = pane.wait_until(_panels_shown, escapes=True, what=TITLES)
        pane.send("q")
        assert pane.exit_code() == 0
    assert not _SGR_COLOR.search(plain)


@pytest.mark.slow
@pytest.mark.skipif(_NO_TMUX, reason="tmux is not installed")
def test_ctrl_c_exits_130(tmp_path: Path) -> None:
    with _dashboard(tmp_path, 80, 24) as pane:
        pane.wait_until(_panels_shown, what=TITLES)
        pane.send("C-c")
        assert pane.exit_code() == 130


def test_needs_a_terminal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers import mlx

    result = mlx(capsys, "dashboard", "--snapshot-file", str(tmp_path / "x.json"))
    assert result.code == 1
    assert "mlx dashboard needs a terminal" in result.err


@pytest.mark.slow
@pytest.mark.skipif(_NO_TMUX, reason="tmux is not installed")
def test_sigterm_leaves_like_q(tmp_path: Path) -> None:
    with _dashboard(tmp_path, 80, 24) as pane:
        pane.wait_until(_panels_shown, what=TITLES)
        shell = int(pane.tmux("display", "-p", "-t", pane.target, "#{pane_pid}"))
        children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        assert len(children) == 1
        os.kill(int(children[0]), signal.SIGTERM)
        assert pane.exit_code() == 128 + signal.SIGTERM
        # The alternate screen is left: the shell's screen is back, no panel on it.
        pane.wait_until(lambda s: "─ models ─" not in s, what="the panels gone")


@pytest.mark.slow
@pytest.mark.skipif(_NO_TMUX, reason="tmux is not installed")
def test_a_failed_sample_is_named_and_the_keys_still_work(tmp_path: Path) -> None:
    with _dashboard(tmp_path, 80, 24) as pane:
        pane.wait_until(_panels_shown, what=TITLES)
        (tmp_path / "snapshot.json").write_text("{not json", encoding="utf-8")
        pane.send("r")
        pane.wait_for("sampling failed")
        assert "qwen2.5:7b" in pane.text()  # the last good figures stay
        pane.send("q")
        assert pane.exit_code() == 0


def test_rich_is_not_imported_to_start() -> None:
    code = (
        "import sys, mlxstate.cli.main, mlxstate.cli.dashboard, mlxstate.dashboard.tui; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'textual')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


_LIVE_SPEC = """\
version: 1
models:
  qwen:
    source: ollama://qwen2.5:7b
  tiny:
    source: hf://org/tiny
"""


@pytest.mark.slow
@pytest.mark.skipif(_NO_TMUX, reason="tmux is not installed")
@pytest.mark.parametrize(("width", "height"), [(80, 24), (160, 48)])
def test_live_against_fake_ollama_and_stores(
    tmp_path: Path, ollama_server: FakeOllama, width: int, height: int
) -> None:
    """The real sampler: a loaded model from the fake Ollama, the built store's path, a
    benchmark run from the registry."""
    pytest.importorskip("mlxstate.dashboard.sampler")
    ob.add_model(ollama_dir(), "qwen2.5:7b")
    ollama_server.set_running("qwen2.5:7b", size_vram=2048)
    (tmp_path / "mlx.yaml").write_text(_LIVE_SPEC, encoding="utf-8")
    save_runs(make_run("r1", model="qwen", gen_tps=(41.5,) * 3, started=time.time() - 3600))
    with tmux_run(
        [MLX, "dashboard"], width=width, height=height, env=dict(os.environ), folder=tmp_path
    ) as pane:
        pane.wait_until(_panels_shown, what=TITLES)
        pane.wait_for("qwen2.5:7b", "41.5", "~/.ollama/models", "declared 2 · present 1")
        pane.send("r")
        pane.send("q")
        assert pane.exit_code() == 0
