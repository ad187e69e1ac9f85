"""The composite GitHub Action (``action.yml``): valid against GitHub's action schema (the one
check-jsonschema ships), and its steps run for real by bash the way a runner runs them
(inputs through the environment, outputs through ``$GITHUB_OUTPUT``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.helpers.lockfile import ollama_lock_for

ROOT = Path(__file__).resolve().parents[1]
ACTION = ROOT / "action.yml"
BIN = Path(sys.executable).parent  # where this environment's `mlx` is
GOOD = "version: 1\nmodels:\n  qwen:\n    source: ollama://qwen3:8b\n"
BAD = "version: 1\nmodels:\n  llama:\n    sorce: hf://a/b\n"
EXPRESSION = re.compile(r"\$\{\{\s*(inputs|steps)\.([\w-]+)(?:\.outputs\.([\w-]+))?\s*\}\}")


def _action() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(ACTION.read_text())
    return loaded


def _check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-actions", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_action_matches_the_github_action_schema(tmp_path: Path) -> None:
    done = _check_jsonschema(ACTION)
    assert done.returncode == 0, done.stdout + done.stderr
    # The same check refuses a broken action (so the pass above means something).
    broken = tmp_path / "action.yml"
    broken.write_text(ACTION.read_text().replace("using: composite", "using: compost"))
    assert _check_jsonschema(broken).returncode == 1


def test_action_declares_its_inputs_and_runs_the_three_checks() -> None:
    action = _action()
    assert set(action["inputs"]) == {"file", "remote", "locked", "host"}
    assert action["runs"]["using"] == "composite"
    scripts = "\n".join(step.get("run", "") for step in action["runs"]["steps"])
    for words in ("validate --format github", "lock --check", "plan --detailed-exitcode"):
        assert words in scripts
    # Inputs reach the scripts only through `env:` (a value is never pasted into bash).
    assert "${{" not in scripts


@dataclass
class Runner:
    """Runs the action's bash steps in ``workspace`` as a GitHub runner would."""

    workspace: Path
    inputs: dict[str, str]
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    log: str = ""

    def run_checks(self) -> int:
        """The steps after the installation, in order; the first failing exit code or 0."""
        for index, step in enumerate(_action()["runs"]["steps"][2:]):
            code = self._step(index, step)
            if code != 0:
                return code
        return 0

    def _step(self, index: int, step: dict[str, Any]) -> int:
        output = self.workspace.parent / f"output-{index}"
        output.write_text("")
        env = {name: self._render(str(value)) for name, value in step.get("env", {}).items()}
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=self.workspace,
            capture_output=True,
            text=True,
            timeout=120,
            env={
                **os.environ,
                **env,
                "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                "GITHUB_OUTPUT": str(output),
            },
        )
        self.log += done.stdout + done.stderr
        if "id" in step:
            lines = output.read_text().splitlines()
            self.outputs[step["id"]] = dict(line.split("=", 1) for line in lines)
        return done.returncode

    def _render(self, value: str) -> str:
        def one(match: re.Match[str]) -> str:
            kind, name, key = match.groups()
            if kind == "inputs":
                default = _action()["inputs"][name].get("default", "")
                return self.inputs.get(name, str(default))
            return self.outputs.get(name, {}).get(key, "")

        return EXPRESSION.sub(one, value)


def _workspace(tmp_path: Path, text: str, where: str = "mlx.yaml") -> Path:
    workspace = tmp_path / "repo"
    (workspace / where).parent.mkdir(parents=True, exist_ok=True)
    (workspace / where).write_text(text)
    return workspace


def test_a_good_file_passes_and_reports_pending_changes(tmp_path: Path) -> None:
    runner = Runner(_workspace(tmp_path, GOOD, "machines/mlx.yaml"), {"file": "machines/mlx.yaml"})
    assert runner.run_checks() == 0, runner.log
    assert "machines/mlx.yaml is valid (1 model" in runner.log
    assert "mlx.lock not checked (locked: auto, machines/mlx.lock exists: no)" in runner.log
    assert "+ qwen" in runner.log  # the plan was shown: the model is to be pulled here
    assert runner.outputs["plan"] == {"changes": "true"}
    assert runner.outputs["lock"] == {"use": "false"}


def test_a_bad_file_fails_with_an_annotation_at_its_line(tmp_path: Path) -> None:
    runner = Runner(_workspace(tmp_path, BAD), {})
    assert runner.run_checks() == 1
    assert "::error file=mlx.yaml,line=4,col=5::models.llama.sorce: unknown key" in runner.log
    assert "plan" not in runner.outputs  # the later steps did not run


@pytest.mark.parametrize(("name", "value"), [("locked", "yes"), ("remote", "maybe")])
def test_a_bad_input_value_is_one_clear_error(tmp_path: Path, name: str, value: str) -> None:
    runner = Runner(_workspace(tmp_path, GOOD), {name: value})
    assert runner.run_checks() == 1
    assert f"::error::input '{name}' must be" in runner.log
    assert f"got '{value}'" in runner.log


def test_install_step_installs_mlx_with_uv(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("the action installs mlxstate with uv, which is not on PATH")
    step = _action()["runs"]["steps"][1]
    path_file = tmp_path / "github-path"
    path_file.write_text("")
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        capture_output=True,
        text=True,
        timeout=600,
        env={
            **os.environ,
            "GITHUB_ACTION_PATH": str(ROOT),
            "GITHUB_PATH": str(path_file),
            "UV_TOOL_DIR": str(tmp_path / "tools"),
            "UV_TOOL_BIN_DIR": str(tmp_path / "bin"),
            "UV_CACHE_DIR": REAL_UV_CACHE,
            "UV_PYTHON_DOWNLOADS": "never",
        },
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert path_file.read_text().strip() == str(tmp_path / "bin")
    version = subprocess.run(
        [str(tmp_path / "bin" / "mlx"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.startswith("mlx")


# Read before the per-test HOME hides it: the install reuses the wheels uv already has.
REAL_UV_CACHE = os.environ.get("UV_CACHE_DIR") or str(
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "uv"
)


FLEET = """\
version: 1
models:
  qwen:
    source: ollama://qwen3:8b
  big:
    source: ollama://llama3.3:70b
    when:
      hosts: ["studio*"]
"""


def test_host_plans_as_that_machine(tmp_path: Path) -> None:
    laptop = Runner(_workspace(tmp_path, FLEET), {"host": "laptop"})
    assert laptop.run_checks() == 0, laptop.log
    assert "big  ollama://llama3.3:70b  hosts [studio*] do not match laptop" in laptop.log
    assert "Host: laptop (--host)" in laptop.log
    studio = Runner(_workspace(tmp_path / "again", FLEET), {"host": "studio-2"})
    assert studio.run_checks() == 0, studio.log
    assert "+ big" in studio.log and "Skipped" not in studio.log


def test_locked_true_needs_a_fresh_lock(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, GOOD)
    missing = Runner(workspace, {"locked": "true"})
    assert missing.run_checks() == 1
    assert "mlx.lock" in missing.log and "plan" not in missing.outputs
    (workspace / "mlx.lock").write_bytes(ollama_lock_for(GOOD))
    fresh = Runner(workspace, {"locked": "true"})
    assert fresh.run_checks() == 0, fresh.log
    assert fresh.outputs == {"lock": {"use": "true"}, "plan": {"changes": "true"}}
    (workspace / "mlx.yaml").write_text(GOOD.replace("qwen3:8b", "qwen3:14b"))
    stale = Runner(workspace, {"locked": "true"})
    assert stale.run_checks() == 1
    assert "qwen: its mlx.yaml entry changed since it was locked" in stale.log


def test_locked_auto_checks_a_lock_that_exists(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, GOOD)
    (workspace / "mlx.lock").write_bytes(ollama_lock_for(GOOD.replace("qwen3:8b", "qwen3:4b")))
    stale = Runner(workspace, {})
    assert stale.run_checks() == 1  # the lock is there, so it must be fresh
    assert "its mlx.yaml entry changed" in stale.log
    ignored = Runner(workspace, {"locked": "false"})
    assert ignored.run_checks() == 0, ignored.log
    assert "mlx.lock not checked (locked: false, ./mlx.lock exists: yes)" in ignored.log
