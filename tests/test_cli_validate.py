"""``mlx validate`` and the behaviour every command shares, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlxstate import __version__
from tests.helpers import REPO_EXAMPLES, mlx

EXAMPLES = sorted(REPO_EXAMPLES.glob("*.yaml"))
BAD = "version: 1\nmodels:\n  llama:\n    sorce: hf://a/b\n"


def test_there_are_three_examples() -> None:
    assert {p.name for p in EXAMPLES} >= {"minimal.yaml", "mac-studio.yaml", "ci-team.yaml"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_examples_are_valid(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "validate", "-f", str(example))
    assert result.code == 0, result.out + result.err
    assert "is valid" in result.out


def test_invalid_file_lists_every_error_on_stdout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mlx.yaml").write_text(BAD + "apps:\n  a:\n    path: /x\n    models: [ghost]\n")
    result = mlx(capsys, "validate")
    assert result.code == 1
    lines = result.out.splitlines()
    # The typo explains the missing `source`, so only the typo is reported.
    assert lines[0].startswith("mlx.yaml:4:5: error: models.llama.sorce: unknown key 'sorce'")
    assert "did you mean 'source'" in lines[0]
    assert lines[1].startswith("mlx.yaml:8:14: error: apps.a.models[0]: model 'ghost' is not")
    assert lines[2] == "2 errors in mlx.yaml"


def test_missing_key_without_typo_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mlx.yaml").write_text("version: 1\nmodels:\n  llama:\n    protect: true\n")
    result = mlx(capsys, "validate")
    assert result.out.startswith("mlx.yaml:3:3: error: models.llama: required key 'source'")


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    result = mlx(capsys, "validate", "-f", str(bad), "--json")
    assert result.code == 1
    doc = json.loads(result.out)
    assert doc["valid"] is False
    assert len(doc["errors"]) == 1
    assert doc["errors"][0] == {
        "path": "models.llama.sorce",
        "line": 4,
        "col": 5,
        "message": doc["errors"][0]["message"],
    }
    assert "unknown key 'sorce'" in doc["errors"][0]["message"]
    ok = mlx(capsys, "validate", "-f", str(EXAMPLES[0]), "--json")
    assert (
        ok.code == 0 and json.loads(ok.out)["valid"] is True and json.loads(ok.out)["errors"] == []
    )


def test_json_output_for_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "validate", "-f", "nope.yaml", "--json")
    assert result.code == 1
    doc = json.loads(result.out)
    assert doc["valid"] is False and "nope.yaml" in doc["errors"][0]["message"]


def test_github_annotations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    result = mlx(capsys, "validate", "-f", "bad.yaml", "--format", "github")
    assert result.code == 1
    assert result.out.splitlines()[0].startswith("::error file=bad.yaml,line=4,col=5::models.llama")


def test_github_escapes_newlines_and_percent(capsys: pytest.CaptureFixture[str]) -> None:
    from mlxstate.cli.validate import _github_escape

    assert _github_escape("50%\nx") == "50%25%0Ax"
    assert _github_escape("a:b,c", prop=True) == "a%3Ab%2Cc"


def test_quiet_prints_nothing_when_valid(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "validate", "-q", "-f", str(EXAMPLES[0]))
    assert (result.code, result.out, result.err) == (0, "", "")


def test_discovery_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "home" / ".config" / "mlx"
    config.mkdir(parents=True)
    (config / "mlx.yaml").write_text("version: 1\n")
    assert "home/.config/mlx/mlx.yaml is valid" in mlx(capsys, "validate").out
    (tmp_path / "mlx.yaml").write_text("version: 1\n")
    assert mlx(capsys, "validate").out.startswith("mlx.yaml is valid")
    (tmp_path / "env.yaml").write_text("version: 1\n")
    monkeypatch.setenv("MLX_FILE", str(tmp_path / "env.yaml"))
    assert "env.yaml is valid" in mlx(capsys, "validate").out
    (tmp_path / "flag.yaml").write_text("version: 1\n")
    assert mlx(capsys, "validate", "-f", "flag.yaml").out.startswith("flag.yaml is valid")


def test_missing_file_names_every_place_and_suggests_init(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = mlx(capsys, "validate")
    assert result.code == 1
    assert "looked at: mlx.yaml, " in result.err
    assert "home/.config/mlx/mlx.yaml" in result.err
    assert "mlx init" in result.err
    assert "Traceback" not in result.err


def test_missing_mlx_file_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mlx.yaml").write_text("version: 1\n")  # must NOT be used instead
    monkeypatch.setenv("MLX_FILE", "/nowhere/mlx.yaml")
    result = mlx(capsys, "validate")
    assert result.code == 1
    assert "/nowhere/mlx.yaml (from $MLX_FILE)" in result.err


def test_directory_and_binary_files_are_clear_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "d").mkdir()
    assert "is a directory" in mlx(capsys, "validate", "-f", "d").err
    (tmp_path / "bin.yaml").write_bytes(b"version: 1\n\xff\xfe\x00")
    result = mlx(capsys, "validate", "-f", "bin.yaml")
    assert result.code == 1 and "bin.yaml:2:1: error: file is not valid UTF-8" in result.out


def test_validate_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "mlx.yaml").write_text(BAD)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    mlx(capsys, "validate")
    mlx(capsys, "validate", "-f", str(EXAMPLES[0]))
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_usage_errors_exit_1_not_2(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "validate", "--bogus")
    assert result.code == 1
    assert "No such option: --bogus" in result.err and "mlx validate --help" in result.err
    assert mlx(capsys, "nosuch").code == 1
    bad_choice = mlx(capsys, "validate", "--format", "xml")
    assert bad_choice.code == 1 and "'xml' is not one of" in bad_choice.err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "--version")
    assert (result.code, result.out) == (0, f"mlx (mlxstate) {__version__}\n")
    help_text = mlx(capsys, "--help").out
    assert "validate" in help_text and "schema" in help_text
    assert mlx(capsys).code == 0  # no arguments: help


def test_python_dash_m(tmp_path: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mlxstate", "--version"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0 and proc.stdout.startswith("mlx (mlxstate) ")


def _boom(*_: object, **__: object) -> None:
    raise RuntimeError("kaboom")


def test_internal_error_exits_3_with_log_and_no_traceback(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("mlxstate.cli.validate.validate_file", _boom)
    result = mlx(capsys, "validate")
    assert result.code == 3
    assert "Traceback" not in result.err
    assert "internal error: RuntimeError: kaboom" in result.err
    logs = list((isolated_env / ".local" / "state" / "mlxstate" / "logs").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in result.err
    assert "kaboom" in logs[0].read_text() and "Traceback" in logs[0].read_text()


@pytest.mark.parametrize("how", ["flag", "env"])
def test_verbose_or_debug_prints_traceback(
    how: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("mlxstate.cli.validate.validate_file", _boom)
    if how == "env":
        monkeypatch.setenv("MLX_DEBUG", "1")
    result = mlx(capsys, "validate", *(["-v"] if how == "flag" else []))
    assert result.code == 3 and "Traceback" in result.err


def _interrupt(*_: object, **__: object) -> None:
    raise KeyboardInterrupt


def test_interrupt_exits_130(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("mlxstate.cli.validate.validate_file", _interrupt)
    assert mlx(capsys, "validate").code == 130
