"""Running ``mlx`` in-process for tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlxstate.cli.main import main

REPO_EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def mlx(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """Run ``mlx ARGS`` in this process; return exit code and captured output."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


# Where the autouse fixture of conftest.py put the stores and the state of the test.
def ollama_dir() -> Path:
    return Path(os.environ["OLLAMA_MODELS"])


def hf_dir() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def state_dir() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "mlxstate"


def manage(
    source: str, name: str, revision: str | None = None, spec: Path = Path("mlx.yaml")
) -> None:
    """Record ``source`` in the registry as installed by mlx for the workspace of ``spec``."""
    from mlxstate.registry import Registry
    from mlxstate.workspace import derive_workspace

    with Registry.open(state_dir()) as registry:
        registry.add_model(source, name, revision, derive_workspace(spec))


def race_before_actions(monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], object]) -> None:
    """Run ``meanwhile`` after apply made its plan and right before the first action: the
    world moving on between plan and effect, which every effect must re-check."""
    from mlxstate.apply.executor import Executor

    run = Executor.run

    def late(self: Executor, actions: Any) -> Any:
        meanwhile()
        return run(self, actions)

    monkeypatch.setattr(Executor, "run", late)


def dead_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run_apply(spec: Path, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    """`mlx apply -y -f SPEC` as a separate process (so a fail point can SIGKILL it), with
    this test's isolated environment."""
    env = dict(os.environ)
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env.pop("MLX_FAILPOINT", None)
    if failpoint:
        env["MLX_FAILPOINT"] = failpoint
    return subprocess.run(
        [sys.executable, "-m", "mlxstate", "apply", "-y", "-f", str(spec)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
