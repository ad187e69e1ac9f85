"""Snapshots (syrupy) of what users read: --help texts and validation errors.

Update after an intended change with `uv run pytest tests/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from syrupy.assertion import SnapshotAssertion

from tests.helpers import mlx


@pytest.fixture(autouse=True)
def _stable_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.mark.parametrize(
    "command", [[], ["validate"], ["schema"]], ids=["mlx", "validate", "schema"]
)
def test_help(
    command: list[str], capsys: pytest.CaptureFixture[str], snapshot: SnapshotAssertion
) -> None:
    result = mlx(capsys, *command, "--help")
    assert result.code == 0
    assert result.out == snapshot


MANY_ERRORS = """\
version: 1
settings:
  dedup: yes
  disk: {min_free: 10 parsecs}
models:
  Llama:
    source: hf://org/repo
  coder:
    source: ollama://qwen2.5-coder:7b
    revision: main
  lora:
    source: file://~/lora
    ensure: absent
apps:
  lmstudio:
    path: ~/.lmstudio/models
    layout: lmstudio
    models: [coder, codr]
benchmarks:
  nightly:
    models: [coder]
    schedule: "0 25 * * *"
"""


@pytest.mark.parametrize("fmt", [["--format", "text"], ["--format", "github"], ["--json"]])
def test_error_output(
    fmt: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], snapshot: SnapshotAssertion
) -> None:
    (tmp_path / "mlx.yaml").write_text(MANY_ERRORS)
    result = mlx(capsys, "validate", *fmt)
    assert result.code == 1
    assert result.out == snapshot
