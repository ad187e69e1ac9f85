"""Running ``mlx`` in-process for tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
