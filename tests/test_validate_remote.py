"""``mlx validate`` for CI: several files in one run (pre-commit), and ``--remote``'s
problems reported at the line of the source in every output format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlxstate.cli.validate import _print_github, _print_text, validate_remote
from mlxstate.errors import MlxError
from mlxstate.mlxyaml.load import LoadedSpec, parse_spec
from mlxstate.mlxyaml.models import ModelSpec
from mlxstate.remote_check import Resolve
from mlxstate.settings import read_environment
from tests.helpers import mlx

GOOD = "version: 1\nmodels:\n  qwen:\n    source: ollama://qwen3:8b\n"
BAD = "version: 1\nmodels:\n  llama:\n    sorce: hf://a/b\n"
TEAM = """\
version: 1
models:
  qwen:
    source: ollama://qwen3:8b
  # a typo'd repo id
  llama:
    source: hf://meta-llama/Llama-3.2-3B-Instruc
    include: ["*.safetensors"]
  local:
    source: file:///models/x.gguf
  gone:
    source: hf://a/b
    ensure: absent
"""


def test_several_files_are_checked_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "mlx.yaml").write_text(GOOD)
    (tmp_path / "b" / "mlx.yaml").write_text(BAD)
    result = mlx(capsys, "validate", "a/mlx.yaml", "b/mlx.yaml")
    assert result.code == 1
    lines = result.out.splitlines()
    assert lines[0] == "a/mlx.yaml is valid (1 model, 0 apps, 0 benchmarks)."
    assert lines[1].startswith("b/mlx.yaml:4:5: error: models.llama.sorce: unknown key")
    assert lines[2] == "1 error in b/mlx.yaml"
    ok = mlx(capsys, "validate", "a/mlx.yaml", "a/mlx.yaml")
    assert ok.code == 0


def test_an_invalid_first_file_does_not_hide_the_second(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    (tmp_path / "bad2.yaml").write_text(BAD)
    result = mlx(capsys, "validate", "--format", "github", "bad.yaml", "bad2.yaml")
    assert result.code == 1
    assert [line.split(",")[0] for line in result.out.splitlines()] == [
        "::error file=bad.yaml",
        "::error file=bad2.yaml",
    ]


def test_json_takes_one_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text(GOOD)
    result = mlx(capsys, "validate", "--json", "a.yaml", "a.yaml")
    assert result.code == 1
    assert result.out == ""
    assert "error: --json checks one file; pass one FILE" in result.err
    assert json.loads(mlx(capsys, "validate", "--json", "a.yaml").out)["valid"] is True


def _loaded(text: str) -> LoadedSpec:
    return parse_spec(text, file="mlx.yaml", base_dir=Path("/tmp"), env=read_environment())


def _resolver(missing: dict[str, str], asked: list[str]) -> Resolve:
    def resolve(name: str, spec: ModelSpec) -> object:
        asked.append(name)
        if name in missing:
            raise MlxError(missing[name])
        return object()

    return resolve


def test_remote_problems_point_at_the_source_line() -> None:
    asked: list[str] = []
    message = "hf://meta-llama/Llama-3.2-3B-Instruc: no such repository on the hub"
    resolve = _resolver({"llama": message}, asked)
    outcome = validate_remote(_loaded(TEAM), resolve)
    # file:// and ensure: absent have nothing upstream to check.
    assert sorted(asked) == ["llama", "qwen"]
    assert not outcome.valid
    assert outcome.to_json()["errors"] == [
        {"path": "models.llama.source", "line": 7, "col": 13, "message": message}
    ]


def test_remote_all_found_says_so() -> None:
    resolve = _resolver({}, [])
    outcome = validate_remote(_loaded(TEAM), resolve)
    assert outcome.valid
    assert (
        outcome.summary
        == "mlx.yaml is valid (4 models, 0 apps, 0 benchmarks); every source exists."
    )


def test_remote_problems_in_text_and_github(capsys: pytest.CaptureFixture[str]) -> None:
    resolve = _resolver(
        {"qwen": "ollama://qwen3:8b: no tag 8b\nsecond line", "llama": "gated: set HF_TOKEN"}, []
    )
    outcome = validate_remote(_loaded(TEAM), resolve)
    _print_text(outcome, quiet=False, color=False)
    _print_github(outcome, quiet=False)
    assert capsys.readouterr().out.splitlines() == [
        "mlx.yaml:4:13: error: models.qwen.source: ollama://qwen3:8b: no tag 8b",
        "mlx.yaml:7:13: error: models.llama.source: gated: set HF_TOKEN",
        "2 errors in mlx.yaml",
        "::error file=mlx.yaml,line=4,col=13::models.qwen.source: ollama://qwen3:8b: no tag 8b",
        "::error file=mlx.yaml,line=7,col=13::models.llama.source: gated: set HF_TOKEN",
    ]


def test_a_resolver_bug_is_not_swallowed() -> None:
    def broken(name: str, spec: ModelSpec) -> object:
        raise KeyError(name)

    with pytest.raises(KeyError):
        validate_remote(_loaded(GOOD), broken)
