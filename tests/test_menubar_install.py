"""`mlx menubar install|uninstall`: the SwiftBar plugin file, and the plugin run for real."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from mlxstate.dashboard.menubar_install import MARKER, PLUGIN_NAME
from mlxstate.seams import Seams
from tests.helpers import mlx, state_dir
from tests.helpers.swiftbar import check
from tests.test_menubar import snapshot_doc


@pytest.fixture
def spec(tmp_path: Path) -> Path:
    path = tmp_path / "dotfiles" / "mlx.yaml"
    path.parent.mkdir()
    path.write_text("version: 1\nmodels: {}\n")
    return path


@pytest.fixture
def plugins(tmp_path: Path) -> Path:
    folder = tmp_path / "plugins"
    folder.mkdir()
    return folder


def _install(
    capsys: pytest.CaptureFixture[str], *args: str, seams: Seams | None = None
) -> tuple[int, str, str]:
    result = mlx(capsys, "menubar", "install", *args, seams=seams)
    return result.code, result.out, result.err


def _python_mlx() -> list[str]:
    # In process, sys.argv[0] is pytest: the plugin starts mlx as `python -m mlxstate`.
    return [os.path.abspath(sys.executable), "-m", "mlxstate"]


def test_install_writes_an_executable_plugin_with_absolute_paths(
    capsys: pytest.CaptureFixture[str], spec: Path, plugins: Path
) -> None:
    code, out, err = _install(capsys, "--dir", str(plugins), "-f", str(spec))
    assert code == 0, err
    path = plugins / PLUGIN_NAME
    assert out == f"menu bar plugin installed: {path}\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    text = path.read_text()
    lines = text.splitlines()
    assert lines[0] == "#!/bin/bash" and lines[1] == MARKER
    assert "# <xbar.title>mlx</xbar.title>" in lines
    assert "# <swiftbar.hideRunInTerminal>true</swiftbar.hideRunInTerminal>" in lines
    assert lines[-1] == "exec " + " ".join([*_python_mlx(), "menubar", "-f", str(spec)])
    assert subprocess.run(["bash", "-n", str(path)], check=False).returncode == 0
    assert [p.name for p in plugins.iterdir()] == [PLUGIN_NAME]  # no temp file left


def test_paths_with_spaces_and_quotes_are_quoted_for_bash(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, plugins: Path
) -> None:
    odd = tmp_path / 'it\'s a "dotfiles" $HOME `x`' / "mlx.yaml"
    odd.parent.mkdir()
    odd.write_text("version: 1\nmodels: {}\n")
    assert _install(capsys, "--dir", str(plugins), "-f", str(odd))[0] == 0
    script = plugins / PLUGIN_NAME
    assert subprocess.run(["bash", "-n", str(script)], check=False).returncode == 0
    # Replace exec by printing the arguments: bash must see the path as one word.
    text = script.read_text().replace("\nexec ", "\nprintf '%s\\n' ")
    shown = subprocess.run(["bash", "-c", text], capture_output=True, text=True, check=True)
    assert shown.stdout.splitlines()[-1] == str(odd)


def test_print_prints_the_plugin_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], spec: Path, plugins: Path
) -> None:
    code, out, _ = _install(capsys, "--dir", str(plugins), "-f", str(spec), "--print")
    assert code == 0
    assert out.startswith("#!/bin/bash\n" + MARKER + "\n")
    assert list(plugins.iterdir()) == []


def test_a_foreign_file_is_never_overwritten_without_force(
    capsys: pytest.CaptureFixture[str], spec: Path, plugins: Path
) -> None:
    theirs = plugins / PLUGIN_NAME
    theirs.write_text("#!/bin/bash\necho mine\n")
    code, out, err = _install(capsys, "--dir", str(plugins), "-f", str(spec))
    assert code == 1 and out == ""
    assert err.splitlines()[0] == (
        f"error: {theirs} exists and was not written by mlx: move it away or use --force"
    )
    assert theirs.read_text() == "#!/bin/bash\necho mine\n"
    assert _install(capsys, "--dir", str(plugins), "-f", str(spec), "--force")[0] == 0
    assert MARKER in theirs.read_text()


def test_installing_again_replaces_the_plugin_mlx_wrote(
    capsys: pytest.CaptureFixture[str], spec: Path, plugins: Path, tmp_path: Path
) -> None:
    assert _install(capsys, "--dir", str(plugins), "-f", str(spec))[0] == 0
    other = tmp_path / "other.yaml"
    other.write_text("version: 1\nmodels: {}\n")
    assert _install(capsys, "--dir", str(plugins), "-f", str(other))[0] == 0
    assert (plugins / PLUGIN_NAME).read_text().splitlines()[-1].endswith(str(other))


def _defaults(answer: tuple[int, str, str], calls: list[list[str]]) -> Seams:
    def run(argv: Sequence[str]) -> tuple[int, str, str]:
        calls.append(list(argv))
        return answer

    return Seams(run_command=run, platform="darwin")


def test_the_folder_comes_from_swiftbar_preferences(
    capsys: pytest.CaptureFixture[str], spec: Path, plugins: Path
) -> None:
    calls: list[list[str]] = []
    seams = _defaults((0, f"{plugins}\n", ""), calls)
    code, _, err = _install(capsys, "-f", str(spec), seams=seams)
    assert code == 0, err
    assert calls == [["defaults", "read", "com.ameba.SwiftBar", "PluginDirectory"]]
    assert (plugins / PLUGIN_NAME).is_file()


def test_no_preference_and_no_dir_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], spec: Path
) -> None:
    seams = _defaults((1, "", "The domain/default pair does not exist"), [])
    code, _, err = _install(capsys, "-f", str(spec), seams=seams)
    assert code == 1
    assert err == "error: SwiftBar's plugin folder is not set: give it with --dir DIR\n"


def test_on_linux_dir_is_required(capsys: pytest.CaptureFixture[str], spec: Path) -> None:
    calls: list[list[str]] = []
    seams = Seams(run_command=_defaults((0, "/x", ""), calls).run_command, platform="linux")
    code, _, err = _install(capsys, "-f", str(spec), seams=seams)
    assert code == 1 and calls == []
    assert err == "error: SwiftBar runs on macOS only: give the plugin folder with --dir DIR\n"


def test_dir_that_is_a_file_or_missing_is_refused(
    capsys: pytest.CaptureFixture[str], spec: Path, tmp_path: Path
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, _, err = _install(capsys, "--dir", str(a_file), "-f", str(spec))
    assert (code, err) == (1, f"error: --dir: {a_file} is not a folder\n")
    assert a_file.read_text() == "x"
    missing = tmp_path / "missing"
    code, _, err = _install(capsys, "--dir", str(missing), "-f", str(spec))
    assert (code, err) == (1, f"error: --dir: {missing} does not exist; create it first\n")
    assert not missing.exists()


def test_a_dir_symlink_to_a_folder_writes_into_that_folder(
    capsys: pytest.CaptureFixture[str], spec: Path, plugins: Path, tmp_path: Path
) -> None:
    link = tmp_path / "link-to-plugins"
    link.symlink_to(plugins)
    assert _install(capsys, "--dir", str(link), "-f", str(spec))[0] == 0
    assert MARKER in (plugins / PLUGIN_NAME).read_text()


def test_a_plugin_path_that_links_elsewhere_is_never_written_through(
    capsys: pytest.CaptureFixture[str], spec: Path, plugins: Path, tmp_path: Path
) -> None:
    precious = tmp_path / "precious.sh"
    precious.write_text("keep me\n")
    (plugins / PLUGIN_NAME).symlink_to(precious)
    code, _, err = _install(capsys, "--dir", str(plugins), "-f", str(spec))
    assert code == 1 and "was not written by mlx" in err
    assert _install(capsys, "--dir", str(plugins), "-f", str(spec), "--force")[0] == 0
    assert precious.read_text() == "keep me\n"  # the link was replaced, not its target
    assert not (plugins / PLUGIN_NAME).is_symlink()


def test_an_unwritable_folder_is_a_one_line_error(
    capsys: pytest.CaptureFixture[str], spec: Path, plugins: Path
) -> None:
    if os.geteuid() == 0:  # root writes anywhere a mode allows nothing: use sysfs instead
        target = Path("/sys/kernel")
        if not target.is_dir():
            pytest.skip("no unwritable folder for root here")
    else:
        target = plugins
        target.chmod(0o500)
    try:
        code, out, err = _install(capsys, "--dir", str(target), "-f", str(spec))
    finally:
        plugins.chmod(0o755)
    assert (code, out) == (1, "")
    assert err.startswith(f"error: cannot write {target / PLUGIN_NAME}: ")
    assert len(err.splitlines()) == 1
    assert not (target / PLUGIN_NAME).exists()


def test_uninstall_removes_only_what_mlx_wrote(
    capsys: pytest.CaptureFixture[str], spec: Path, plugins: Path
) -> None:
    path = plugins / PLUGIN_NAME
    result = mlx(capsys, "menubar", "uninstall", "--dir", str(plugins))
    none = f"error: no mlx plugin in {plugins} (no {PLUGIN_NAME})\n"
    assert (result.code, result.err) == (1, none)
    path.write_text("#!/bin/bash\necho mine\n")
    result = mlx(capsys, "menubar", "uninstall", "--dir", str(plugins))
    foreign = f"error: {path} was not written by mlx: left in place\n"
    assert (result.code, result.err) == (1, foreign)
    assert path.exists()
    path.unlink()
    assert _install(capsys, "--dir", str(plugins), "-f", str(spec))[0] == 0
    result = mlx(capsys, "menubar", "uninstall", "--dir", str(plugins))
    assert (result.code, result.out) == (0, f"menu bar plugin removed: {path}\n")
    assert not path.exists()


def test_the_installed_plugin_runs_and_prints_valid_output(
    capsys: pytest.CaptureFixture[str], spec: Path, plugins: Path
) -> None:
    assert _install(capsys, "--dir", str(plugins), "-f", str(spec))[0] == 0
    (state_dir()).mkdir(parents=True, exist_ok=True)
    doc = snapshot_doc()
    (state_dir() / "dashboard.json").write_text(json.dumps(doc))
    now = time.time()
    os.utime(state_dir() / "dashboard.json", (now, now))
    # SwiftBar's environment: no login shell, only what the plugin carries itself.
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ["HOME"]}
    done = subprocess.run(
        ["bash", str(plugins / PLUGIN_NAME)], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    menu = check(done.stdout)
    assert menu.header[0].text == "qwen2.5:7b 48 tok/s"
    assert menu.find("Plan").argv == [*_python_mlx(), "plan", "-f", str(spec)]


def test_the_plugin_says_so_when_mlx_is_gone(tmp_path: Path, plugins: Path) -> None:
    from mlxstate.dashboard.menubar_install import plugin_text

    script = plugins / PLUGIN_NAME
    script.write_text(plugin_text([str(tmp_path / "gone" / "mlx")], None, {}))
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=True)
    menu = check(done.stdout)
    assert menu.header[0].text == "mlx ⚠"
    assert menu.items[0].text.startswith("mlx is not at ")
