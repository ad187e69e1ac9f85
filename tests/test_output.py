"""What users read around the results: paths, colours, closed pipes, hashing progress."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mlxstate.cli._output import HashingNotice
from mlxstate.cli.status import render_status
from mlxstate.observe import duplicates, hash_progress
from mlxstate.observe.apps import scan_app
from mlxstate.observe.hf_cache import scan_hf_cache
from mlxstate.observe.ollama_store import scan_ollama_store
from mlxstate.plan.actions import Action, Plan
from mlxstate.plan.params import LinkParams
from mlxstate.plan.render import render_text
from mlxstate.text import short_path, short_paths_in
from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.helpers import hf_dir, mlx, ollama_dir

# --- one way to shorten paths ---------------------------------------------------------------


def test_short_path_only_shortens_whole_components_under_home() -> None:
    home = os.environ["HOME"]
    assert short_path(f"{home}/apps/x") == "~/apps/x"
    assert short_path(home) == "~"
    assert short_path(f"{home}2/x") == f"{home}2/x"  # a sibling folder, not the home
    assert short_path("/opt/models") == "/opt/models"
    assert short_paths_in(f"{home}/a: in the way of '{home}/b'") == "~/a: in the way of '~/b'"
    assert short_paths_in(f"x{home}/a") == f"x{home}/a"  # not where a path starts


def test_plan_shows_paths_as_status_does() -> None:
    home = os.environ["HOME"]
    link = Action(
        "link/app/m.gguf",
        "create",
        "link.create",
        f"{home}/apps/app/m.gguf",
        0,
        0,
        f"link to {home}/.ollama/models/blobs/sha256-ab",
        "m",
        LinkParams(app="app"),
    )
    text = render_text(Plan((link,), conflicts=(f"{home}/apps/app/x.gguf is a file",)))
    assert "  + m  ~/apps/app/m.gguf    link to ~/.ollama/models/blobs/sha256-ab" in text
    assert "Conflict: ~/apps/app/x.gguf is a file (left alone)" in text
    assert home not in text


# --- status tables: piped and on a terminal ------------------------------------------------

LONG_REPO = "bartowski/Meta-Llama-3.1-70B-Instruct-GGUF-with-a-very-long-name"


@pytest.fixture
def long_names() -> dict[str, Any]:
    ob.add_model(ollama_dir(), "hf.co/bartowski/Meta-Llama-3.1-70B-Instruct-GGUF:Q4_K_M")
    hb.add_revision(hf_dir(), LONG_REPO, {"config.json": b"{}"})
    return {}


def _status_doc(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    import json

    result = mlx(capsys, "status", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert isinstance(doc, dict)
    return doc


def test_piped_status_has_whole_names_and_no_trailing_spaces(
    capsys: pytest.CaptureFixture[str], long_names: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")  # ignored when piped: nothing is wrapped
    result = mlx(capsys, "status")
    assert result.code == 0
    lines = result.out.splitlines()
    assert [x for x in lines if x != x.rstrip()] == []
    assert any(x.startswith(LONG_REPO + " ") for x in lines)
    assert any("hf.co/bartowski/Meta-Llama-3.1-70B-Instruct-GGUF:Q4_K_M " in x for x in lines)


def test_terminal_status_never_breaks_a_name_inside(
    capsys: pytest.CaptureFixture[str], long_names: dict[str, Any]
) -> None:
    doc = _status_doc(capsys)
    out = io.StringIO()
    render_status(doc, color=False, out=out, tty=True, width=90)
    lines = out.getvalue().splitlines()
    assert max(len(x) for x in lines) <= 90
    # The name is whole or cut with an ellipsis on ONE line; no other line holds a piece.
    [line] = [x for x in lines if x.startswith(LONG_REPO[:7])]
    first = line.split()[0]
    assert first.endswith("…") and LONG_REPO.startswith(first[:-1])
    assert not any(LONG_REPO[-6:] in x for x in lines)
    # Sizes, flags and ages stay whole.
    assert line.split()[-7:] == ["2", "B", "-", "-", "ok", "just", "now"]


def _doc(name: str = "qwen2.5:7b", repo: str = "Qwen/Qwen2.5-7B", empty: bool = False) -> Any:
    """A status document with every table, names and paths given."""
    home = os.environ["HOME"]
    model = {"name": name, "size": 4_700_000_000, "declared_as": "qwen", "managed": True}
    model |= {"owners": ["ws-1"], "status": "broken", "last_used": None}
    model["problems"] = [f"model blob sha256-0123456789ab is missing ({name})"]
    rev = {"commit": "a" * 40, "refs": ["main", "v1"]}
    hf_repo = {"type": "model", "id": repo, "size": 12, "declared_as": None, "managed": False}
    hf_repo |= {"owners": [], "status": "ok", "last_used": None}
    hf_repo["revisions"] = [rev, {"commit": "b" * 40, "refs": []}]
    daemon = {"host": "http://127.0.0.1:9", "reachable": False, "error": "refused", "running": []}
    ollama = {"path": f"{home}/.ollama/models", "exists": True, "daemon": daemon, "count": 1}
    ollama |= {"total_bytes": 4_700_000_000, "models": [] if empty else [model]}
    hf = {"path": f"/data/{repo}", "exists": True, "count": 1, "total_bytes": 12}
    hf["repos"] = [] if empty else [hf_repo, hf_repo | {"type": "dataset", "revisions": []}]
    link = {"kind": "link", "managed": True}
    app = {"name": "lmstudio", "declared": False, "path": f"{home}/m/{name}", "exists": False}
    app["entries"] = [link, link | {"managed": False}, {"kind": "dangling", "managed": False}]
    paths = [f"{home}/.ollama/models/blobs/sha256-{'c' * 64}", f"/data/{repo}/blobs/{'c' * 64}"]
    dup = {"sha256": "c" * 64, "size": 5, "paths": paths, "reclaimable": 5}
    missing = [{"name": name, "source": f"file://{home}/x.gguf", "store": "file", "revision": None}]
    missing.append({"name": "m", "source": f"hf://{repo}", "store": "hf", "revision": "main"})
    reclaimable = {"duplicates": 5, "partials": 0, "orphans": 1, "detached_revisions": 2}
    return {
        "stores": {"ollama": ollama, "huggingface": hf},
        "apps": [] if empty else [app],
        "duplicates": [] if empty else [dup],
        "missing": [] if empty else missing,
        "reclaimable": reclaimable | {"total": 8},
        "workspace": None if empty else "ws-1",
        "warnings": [],
    }


@pytest.mark.parametrize(
    ("kwargs", "by_rich"),
    [
        ({}, False),
        ({"empty": True}, False),
        ({"name": "x" * 300, "repo": "org/" + "y" * 200}, False),
        ({"name": "[bold]qwen[/]"}, True),  # markup in data: rich decides
        ({"name": "qwen\\[red]"}, True),
        ({"repo": "Org/Modèle-7B"}, True),  # an accented or wide name: rich measures it
        ({"name": "a\tb"}, True),
    ],
)
def test_piped_status_is_what_rich_prints(
    kwargs: dict[str, Any], by_rich: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlxstate.cli import status

    doc = _doc(**kwargs)
    plain, rich = io.StringIO(), io.StringIO()
    status._render_rich(doc, color=False, verbose=False, out=rich, tty=False, width=None)
    calls: list[bool] = []
    real = status._render_rich

    def counted(*a: Any, **k: Any) -> None:
        calls.append(True)
        real(*a, **k)

    monkeypatch.setattr(status, "_render_rich", counted)
    render_status(doc, color=False, out=plain, tty=False)
    assert calls == ([True] if by_rich else [])
    assert plain.getvalue() == rich.getvalue()
    assert plain.getvalue().startswith("Ollama  ~/.ollama/models  (daemon not reachable")


# --- colours and pipes -----------------------------------------------------------------------


def test_no_color_applies_to_stderr_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    coloured = mlx(capsys, "plan", "-f", "missing.yaml")
    assert coloured.code == 1 and "\x1b[" in coloured.err  # the test can fail
    plain = mlx(capsys, "plan", "-f", "missing.yaml", "--no-color")
    assert plain.code == 1
    assert plain.err.startswith("error: no mlx.yaml found") and "\x1b[" not in plain.err
    assert "NO_COLOR" not in os.environ  # set for the command only


def test_status_into_a_closed_pipe_exits_0_quietly(tmp_path: Path) -> None:
    ob.add_model(ollama_dir(), "qwen2.5:7b")
    read_end, write_end = os.pipe()
    os.close(read_end)  # like `mlx status | head -1` once head has exited
    env = {**os.environ, "OLLAMA_HOST": "http://127.0.0.1:9"}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "mlxstate", "status"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr.decode()) == (0, "")


@pytest.mark.parametrize("closed", [">&-", "2>&-", ">&- 2>&-"])
def test_closed_standard_streams_are_not_a_crash(closed: str) -> None:
    """`mlx status >&-`: Python starts with sys.stdout None; the output goes nowhere."""
    env = {**os.environ, "OLLAMA_HOST": "http://127.0.0.1:9"}
    script = f"exec 3>&1; '{sys.executable}' -m mlxstate status {closed}; echo rc=$? >&3"
    proc = subprocess.run(
        ["bash", "-c", script], stdin=subprocess.DEVNULL, capture_output=True, env=env, timeout=60
    )
    assert proc.stdout.decode().strip().endswith("rc=0"), proc.stderr.decode()
    assert "Traceback" not in proc.stderr.decode() and "internal error" not in proc.stderr.decode()


# --- hashing progress --------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.started: list[tuple[int, list[Path]]] = []
        self.advanced: list[int] = []
        self.finished = 0

    def start(self, total_bytes: int, paths: Sequence[Path]) -> None:
        self.started.append((total_bytes, list(paths)))

    def advance(self, nbytes: int) -> None:
        self.advanced.append(nbytes)  # list.append is atomic: workers may call this

    def finish(self) -> None:
        self.finished += 1


def _two_equal_app_files(tmp_path: Path, size: int) -> tuple[Any, ...]:
    app = tmp_path / "app"
    app.mkdir()
    data = os.urandom(1024) * (size // 1024)
    (app / "a.gguf").write_bytes(data)
    shutil.copyfile(app / "a.gguf", app / "b.gguf")
    models, hub = tmp_path / "ollama", tmp_path / "hub"
    return scan_ollama_store(models), scan_hf_cache(hub), [scan_app("app", app, "dir")]


def test_slow_hashing_is_reported_with_every_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 3 * 1024 * 1024 + 1024  # more than one chunk per file
    ollama, hf, apps = _two_equal_app_files(tmp_path, size)
    monkeypatch.setattr(hash_progress, "PROGRESS_MIN_BYTES", 2 * size - 1)
    recorder = Recorder()
    with hash_progress.reporting(recorder):
        (group,) = duplicates.find_duplicates(ollama, hf, apps)
    assert len(group.paths) == 2
    [(total, paths)] = recorder.started
    assert (total, sorted(paths)) == (2 * size, sorted(group.paths))
    assert sum(recorder.advanced) == 2 * size and len(recorder.advanced) > 2
    assert recorder.finished == 1


def test_fast_hashing_is_not_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size = 4096
    ollama, hf, apps = _two_equal_app_files(tmp_path, size)
    monkeypatch.setattr(hash_progress, "PROGRESS_MIN_BYTES", 2 * size)  # not more than
    recorder = Recorder()
    with hash_progress.reporting(recorder):
        (_group,) = duplicates.find_duplicates(ollama, hf, apps)
    assert (recorder.started, recorder.advanced, recorder.finished) == ([], [], 0)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_hashing_notice_is_one_line_when_not_a_terminal() -> None:
    home = os.environ["HOME"]
    stream = io.StringIO()
    notice = HashingNotice(stream)
    notice.start(4_300_000_000, [Path(home, ".lmstudio/models/m.gguf")])
    notice.advance(4_300_000_000)
    notice.finish()
    assert stream.getvalue() == ("hashing ~/.lmstudio/models/m.gguf (4.3 GB) to find duplicates…\n")
    stream = io.StringIO()
    HashingNotice(stream).start(6_000_000_000, [Path("/a"), Path("/b")])
    assert stream.getvalue() == "hashing 2 files (6.0 GB) to find duplicates…\n"


def test_hashing_notice_is_a_bar_on_a_terminal() -> None:
    stream = FakeTerminal()
    notice = HashingNotice(stream)
    notice.start(2_000_000_000, [Path("/a"), Path("/b")])
    notice.advance(1_000_000_000)
    notice.finish()
    shown = stream.getvalue()
    assert "hashing 2 files (2.0 GB) to find duplicates" in shown
    assert "\x1b[?25l" in shown  # a live display (cursor hidden while it runs), not a log line


def test_quiet_installs_no_hashing_notice(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[object] = []
    real = hash_progress.current

    def spy(total: int) -> hash_progress.HashProgress | None:
        seen.append(hash_progress._REPORTER.get())
        return real(total)

    monkeypatch.setattr(hash_progress, "current", spy)
    app = Path(os.environ["HOME"], ".lmstudio", "models", "p", "m")
    app.mkdir(parents=True)
    (app / "a.gguf").write_bytes(b"x" * 100)
    (app / "b.gguf").write_bytes(b"x" * 100)
    assert mlx(capsys, "status", "-q").code == 0
    for name in ("a.gguf", "b.gguf"):  # new bytes: hashed again, not found in the cache
        (app / name).write_bytes(b"y" * 200)
    assert mlx(capsys, "status").code == 0
    assert len(seen) == 2 and seen[0] is None and isinstance(seen[1], HashingNotice)
