"""``mlx agent install|uninstall|status`` (docs/agent.md) through the real CLI: the files it
writes parse as launchd and systemd read them (plistlib; the real `systemd-analyze
verify`), and the exact launchctl / systemctl argv sequences, through a recording runner.
Both operating systems are exercised on any machine: the OS is a seam too."""

from __future__ import annotations

import os
import plistlib
import shutil
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from mlxstate.seams import Seams
from mlxstate.watch.service import Account, ServiceSpec
from mlxstate.watch.service_linux import Systemd
from tests.helpers import Result, mlx, state_dir

UID = os.getuid()
LABEL = "io.github.mlxstate.agent"
UNIT = "mlxstate-agent.service"
SPEC = "version: 1\nmodels: {}\n"


class Recorder:
    """A runner that records every argv and answers from a script of
    ``(argv prefix, (code, stdout, stderr))``; anything else succeeds."""

    def __init__(self, *answers: tuple[list[str], tuple[int, str, str]]) -> None:
        self.answers = list(answers)
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str, str]:
        self.calls.append(list(argv))
        for prefix, answer in self.answers:
            if list(argv[: len(prefix)]) == prefix:
                return answer
        return 0, "", ""


def agent(capsys: pytest.CaptureFixture[str], system: str, runner: Recorder, *args: str) -> Result:
    result = mlx(capsys, "agent", *args, seams=Seams(run_command=runner, platform=system))
    assert "Traceback" not in result.out + result.err
    return result


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "dot files" / "mlx.yaml"
    path.parent.mkdir()
    path.write_text(SPEC)
    return path


def plist_path() -> Path:
    return Path(os.environ["HOME"]) / "Library" / "LaunchAgents" / f"{LABEL}.plist"


def unit_path() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user" / UNIT


def files_under_home() -> list[Path]:
    return sorted(p for p in Path(os.environ["HOME"]).rglob("*") if p.is_file())


# -- macOS ---------------------------------------------------------------------------------


def test_the_plist_has_what_launchd_needs(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    runner = Recorder()
    result = agent(capsys, "darwin", runner, "install", "--no-load", "-f", str(spec_file))
    assert result.code == 0, result.err
    assert runner.calls == []  # --no-load: written, not loaded
    doc: dict[str, Any] = plistlib.loads(plist_path().read_bytes())
    assert doc["Label"] == LABEL
    program = doc["ProgramArguments"]
    assert Path(program[0]).is_absolute() and Path(program[0]).exists()
    assert program[-3:] == ["watch", "-f", str(spec_file)]  # spaces kept: no shell involved
    assert doc["RunAtLoad"] is True
    assert doc["KeepAlive"] == {"SuccessfulExit": False}  # restart after a crash only
    assert isinstance(doc["ThrottleInterval"], int) and doc["ThrottleInterval"] >= 10
    assert doc["ProcessType"] == "Background"
    logs = state_dir() / "logs"
    assert Path(doc["StandardOutPath"]).parent == logs
    assert Path(doc["StandardErrorPath"]).parent == logs
    assert logs.is_dir()
    assert str(Path(program[0]).parent) == doc["EnvironmentVariables"]["PATH"].split(":")[0]
    # The stores the user's shell points at are the ones the agent manages.
    assert doc["EnvironmentVariables"]["OLLAMA_MODELS"] == os.environ["OLLAMA_MODELS"]
    assert "installed (not loaded)" in result.out


def test_launchd_load_boots_out_both_domains_then_bootstraps_the_gui_domain(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    not_loaded = (3, "", "Boot-out failed: 3: No such process\n")
    runner = Recorder((["launchctl", "bootout"], not_loaded))
    result = agent(capsys, "darwin", runner, "install", "-f", str(spec_file))
    assert result.code == 0, result.err
    assert runner.calls == [
        ["launchctl", "bootout", f"gui/{UID}/{LABEL}"],
        ["launchctl", "bootout", f"user/{UID}/{LABEL}"],
        ["launchctl", "bootstrap", f"gui/{UID}", str(plist_path())],
    ]
    assert f"loaded into launchd domain gui/{UID}" in result.out


def test_launchd_falls_back_to_the_user_domain_without_a_gui_session(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    no_gui = (125, "", "Bootstrap failed: 125: Domain does not support specified action\n")
    runner = Recorder((["launchctl", "bootstrap", f"gui/{UID}"], no_gui))
    result = agent(capsys, "darwin", runner, "install", "-f", str(spec_file))
    assert result.code == 0, result.err
    assert runner.calls[2:] == [
        ["launchctl", "bootstrap", f"gui/{UID}", str(plist_path())],
        ["launchctl", "bootstrap", f"user/{UID}", str(plist_path())],
    ]
    assert f"loaded into launchd domain user/{UID}" in result.out


def test_launchd_load_failing_in_both_domains_is_one_clear_error(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    runner = Recorder((["launchctl", "bootstrap"], (5, "", "Bootstrap failed: 5: I/O error")))
    result = agent(capsys, "darwin", runner, "install", "-f", str(spec_file))
    assert result.code == 1
    assert result.err.splitlines()[0] == (
        f"error: launchctl could not load the agent: gui/{UID}: Bootstrap failed: 5: I/O "
        f"error; user/{UID}: Bootstrap failed: 5: I/O error"
    )
    assert plist_path().is_file()  # written, as the hint says


def test_launchd_uninstall_ignores_not_loaded_and_removes_the_plist(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    agent(capsys, "darwin", Recorder(), "install", "--no-load", "-f", str(spec_file))
    runner = Recorder(
        (["launchctl", "bootout", f"user/{UID}/{LABEL}"], (113, "", "Could not find service"))
    )
    result = agent(capsys, "darwin", runner, "uninstall")
    assert result.code == 0, result.err
    assert runner.calls == [
        ["launchctl", "bootout", f"gui/{UID}/{LABEL}"],
        ["launchctl", "bootout", f"user/{UID}/{LABEL}"],
    ]
    assert not plist_path().exists()
    assert result.out == f"agent uninstalled: removed {plist_path()}\n"


def test_launchd_uninstall_keeps_the_plist_when_it_cannot_unload(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    agent(capsys, "darwin", Recorder(), "install", "--no-load", "-f", str(spec_file))
    runner = Recorder((["launchctl", "bootout"], (1, "", "Operation not permitted")))
    result = agent(capsys, "darwin", runner, "uninstall")
    assert result.code == 1
    assert result.err.splitlines()[0] == (
        f"error: launchctl could not unload the agent from gui/{UID}: Operation not permitted"
    )
    assert plist_path().is_file()


def test_launchd_status_asks_launchctl(capsys: pytest.CaptureFixture[str], spec_file: Path) -> None:
    runner = Recorder((["launchctl", "print", f"gui/{UID}/{LABEL}"], (113, "", "not found")))
    result = agent(capsys, "darwin", runner, "status", "--json")
    assert result.code == 0
    assert runner.calls == [
        ["launchctl", "print", f"gui/{UID}/{LABEL}"],
        ["launchctl", "print", f"user/{UID}/{LABEL}"],
    ]
    import json

    assert json.loads(result.out) == {
        "backend": "launchd",
        "file": str(plist_path()),
        "installed": False,
        "loaded": True,  # found in the user domain
    }


# -- Linux ---------------------------------------------------------------------------------


def test_systemd_install_reloads_then_enables_and_prints_the_linger_hint(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    runner = Recorder((["systemctl", "--user", "is-active"], (3, "inactive\n", "")))
    result = agent(capsys, "linux", runner, "install", "-f", str(spec_file))
    assert result.code == 0, result.err
    assert runner.calls == [
        ["systemctl", "--user", "is-active", "--quiet", UNIT],
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "--now", UNIT],
    ]
    assert "loginctl enable-linger $USER" in result.out
    text = unit_path().read_text()
    assert "Restart=on-failure\n" in text and "RestartSec=5\n" in text
    assert "RestartSteps=" in text and "RestartMaxDelaySec=" in text
    assert "WantedBy=default.target\n" in text


def test_systemd_reinstall_restarts_a_running_agent(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    runner = Recorder()  # is-active: 0, it runs
    assert agent(capsys, "linux", runner, "install", "-f", str(spec_file)).code == 0
    assert runner.calls[-1] == ["systemctl", "--user", "restart", UNIT]


def test_systemd_enable_failing_is_one_clear_error(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    no_bus = (1, "", "Failed to connect to bus: No medium found\n")
    runner = Recorder((["systemctl", "--user", "daemon-reload"], no_bus))
    result = agent(capsys, "linux", runner, "install", "-f", str(spec_file))
    assert result.code == 1
    assert result.err.splitlines()[0] == (
        "error: `systemctl --user daemon-reload` failed: Failed to connect to bus: No medium found"
    )


def test_systemd_uninstall_disables_removes_and_reloads(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    agent(capsys, "linux", Recorder(), "install", "--no-load", "-f", str(spec_file))
    runner = Recorder()
    result = agent(capsys, "linux", runner, "uninstall")
    assert result.code == 0, result.err
    assert runner.calls == [
        ["systemctl", "--user", "disable", "--now", UNIT],
        ["systemctl", "--user", "daemon-reload"],
    ]
    assert not unit_path().exists()


def test_uninstall_without_an_agent_says_so_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runner = Recorder()
    result = agent(capsys, "linux", runner, "uninstall")
    assert result.code == 1
    assert result.err.splitlines()[0] == f"error: the agent is not installed (no {unit_path()})"
    assert runner.calls == []


def test_systemd_status_text(capsys: pytest.CaptureFixture[str], spec_file: Path) -> None:
    agent(capsys, "linux", Recorder(), "install", "--no-load", "-f", str(spec_file))
    runner = Recorder((["systemctl"], (3, "", "")))
    result = agent(capsys, "linux", runner, "status")
    assert result.out == f"installed: yes ({unit_path()})\nloaded:    no (systemd)\n"
    assert runner.calls == [["systemctl", "--user", "is-active", "--quiet", UNIT]]


# -- both ----------------------------------------------------------------------------------


@pytest.mark.parametrize("system", ["darwin", "linux"])
def test_print_writes_nothing_and_runs_nothing(
    capsys: pytest.CaptureFixture[str], spec_file: Path, system: str
) -> None:
    before = files_under_home()
    runner = Recorder()
    result = agent(capsys, system, runner, "install", "--print", "-f", str(spec_file))
    assert result.code == 0, result.err
    assert runner.calls == []
    assert files_under_home() == before
    assert not (state_dir() / "logs").exists()
    if system == "darwin":
        assert plistlib.loads(result.out.encode())["Label"] == LABEL
    else:
        assert f'"watch" "-f" "{spec_file}"' in result.out


def test_an_unknown_system_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    result = agent(capsys, "win32", Recorder(), "install", "-f", str(spec_file))
    assert result.code == 1
    assert result.err.splitlines()[0] == (
        "error: mlx agent runs on macOS (launchd) and Linux (systemd), not on 'win32'"
    )
    assert files_under_home() == []


def test_an_invalid_mlx_yaml_installs_nothing(
    capsys: pytest.CaptureFixture[str], spec_file: Path
) -> None:
    spec_file.write_text("version: 1\nmodels: [\n")
    result = agent(capsys, "linux", Recorder(), "install", "-f", str(spec_file))
    assert result.code == 1
    assert not unit_path().exists()


def test_a_line_break_in_a_path_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "bad\nname"
    folder.mkdir()
    (folder / "mlx.yaml").write_text(SPEC)
    result = agent(capsys, "linux", Recorder(), "install", "-f", str(folder / "mlx.yaml"))
    assert result.code == 1
    assert "contains a line break" in result.err
    assert not unit_path().exists()


# -- the real systemd parser ------------------------------------------------------------------

# systemd < 254 does not know the backoff keys; it ignores them, and says so.
_IGNORED_ON_OLD_SYSTEMD = ("Unknown key 'RestartSteps'", "Unknown key 'RestartMaxDelaySec'")


def verify(unit: Path, tmp_path: Path) -> list[str]:
    """``systemd-analyze verify --user`` on ``unit``: its complaints, minus the ones above."""
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "SYSTEMD_LOG_COLOR": "0"}
    done = subprocess.run(
        [tool, "verify", "--user", str(unit)], env=env, capture_output=True, text=True
    )
    if "Failed to initialize manager" in done.stderr:  # no user manager possible here
        done = subprocess.run([tool, "verify", str(unit)], env=env, capture_output=True, text=True)
    lines = (done.stdout + done.stderr).splitlines()
    complaints = [ln for ln in lines if not any(s in ln for s in _IGNORED_ON_OLD_SYSTEMD)]
    assert done.returncode == 0, complaints
    return complaints


def test_the_unit_passes_systemd_analyze_verify(
    capsys: pytest.CaptureFixture[str], spec_file: Path, tmp_path: Path
) -> None:
    assert (
        agent(capsys, "linux", Recorder(), "install", "--no-load", "-f", str(spec_file)).code == 0
    )
    assert verify(unit_path(), tmp_path) == []


def test_awkward_paths_reach_systemd_unchanged(tmp_path: Path) -> None:
    # A program whose folder has a space, a dollar and a percent sign, and an mlx.yaml whose
    # folder has a specifier systemd does not know (%Q): unescaped, verify rejects both.
    program = tmp_path / "Application Support $HOME 100%" / "bin" / "mlx"
    program.parent.mkdir(parents=True)
    shutil.copy(sys.executable, program)
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    spec = tmp_path / "my dot$files %Q" / "mlx.yaml"
    account = Account.of(os.environ, UID)
    service = ServiceSpec.make((str(program),), spec, tmp_path / "logs", os.environ, account)
    text = Systemd().render(service)
    assert f'ExecStart="{tmp_path}/Application Support $HOME 100%%/bin/mlx" "watch" "-f" ' in text
    assert f'"{tmp_path}/my dot$$files %%Q/mlx.yaml"\n' in text
    unit = tmp_path / "units" / UNIT
    unit.parent.mkdir()
    unit.write_text(text)
    assert verify(unit, tmp_path) == []


def test_a_quote_in_the_program_path_is_refused_for_systemd(tmp_path: Path) -> None:
    from mlxstate.errors import MlxError

    account = Account.of(os.environ, UID)
    program = str(tmp_path / 'it"s' / "mlx")
    service = ServiceSpec.make((program,), tmp_path / "mlx.yaml", tmp_path, os.environ, account)
    with pytest.raises(MlxError, match="quotes or backslashes"):
        Systemd().render(service)
