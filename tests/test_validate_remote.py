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
from tests.fakes.hf_hub import FakeHfHub
from tests.fakes.ollama_registry import FakeOllamaRegistry
from tests.helpers import dead_url, mlx

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


# --- against the loopback fake hub and fake Ollama registry ----------------------------------

REMOTE = """\
  llama:
    source: hf://org/llama
    include: ["*.json", "*.safetensors"]
  typo:
    source: hf://org/lama
  pinned:
    source: hf://org/pinned
    revision: v9
  patterns:
    source: hf://org/weights
    include: ["*.gguf"]
  gated:
    source: hf://org/gated
  qwen:
    source: ollama://qwen2.5:7b
  moved:
    source: ollama://qwen2.5:70b
  local:
    source: file:///nowhere/x.gguf
"""


@pytest.fixture
def upstream(fake_hub: FakeHfHub, ollama_registry: FakeOllamaRegistry) -> Path:
    files = {"config.json": b"{}", "model.safetensors": b"w" * 64}
    fake_hub.add_repo("org/llama", files, lfs={"model.safetensors"})
    for repo in ("org/pinned", "org/weights", "org/gated"):
        fake_hub.add_repo(repo, files, lfs={"model.safetensors"})
    fake_hub.gate("org/gated")
    ollama_registry.publish("qwen2.5:7b", [("model", b"one")])
    spec = Path("mlx.yaml")
    settings = f"settings:\n  ollama:\n    registry: {ollama_registry.url}\n"
    spec.write_text(f"version: 1\n{settings}models:\n{REMOTE}")
    return spec


def test_remote_reports_each_missing_source_at_its_line(
    capsys: pytest.CaptureFixture[str], upstream: Path, ollama_registry: FakeOllamaRegistry
) -> None:
    registry = ollama_registry
    offline = mlx(capsys, "validate")
    assert offline.code == 0, offline.out  # nothing upstream is looked at without --remote
    result = mlx(capsys, "validate", "--remote")
    assert result.code == 1, result.out + result.err
    lines = result.out.splitlines()
    token = "$HF_TOKEN (settings.huggingface.token_env)"
    assert lines[0] == (
        "mlx.yaml:10:13: error: models.typo.source: hf://org/lama not found on the hub "
        f"(check the id; private or gated repos need a token in {token})"
    )
    assert lines[1] == (
        "mlx.yaml:12:13: error: models.pinned.source: hf://org/pinned has no revision 'v9' "
        "on the hub (check the model's revision)"
    )
    assert lines[2].startswith(
        "mlx.yaml:15:13: error: models.patterns.source: include [*.gguf] matches no file of "
        "hf://org/weights@main (2 files at "
    )
    assert lines[3] == (
        "mlx.yaml:18:13: error: models.gated.source: hf://org/gated is gated: accept its terms "
        f"on the hub and put a token of that account in {token}"
    )
    assert lines[4] == (
        "mlx.yaml:22:13: error: models.moved.source: ollama://qwen2.5:70b not found at the "
        f"registry {registry.url} (check the model name and tag)"
    )
    assert lines[5:] == ["5 errors in mlx.yaml"]


def test_remote_github_and_json(capsys: pytest.CaptureFixture[str], upstream: Path) -> None:
    github = mlx(capsys, "validate", "--remote", "--format", "github")
    assert github.code == 1
    assert [line.split("::")[1] for line in github.out.splitlines()] == [
        f"error file=mlx.yaml,line={line},col=13" for line in (10, 12, 15, 18, 22)
    ]
    doc = json.loads(mlx(capsys, "validate", "--remote", "--json").out)
    assert doc["valid"] is False
    assert [(e["path"], e["line"]) for e in doc["errors"]] == [
        ("models.typo.source", 10),
        ("models.pinned.source", 12),
        ("models.patterns.source", 15),
        ("models.gated.source", 18),
        ("models.moved.source", 22),
    ]


def test_remote_passes_when_every_source_resolves(
    capsys: pytest.CaptureFixture[str],
    upstream: Path,
    fake_hub: FakeHfHub,
    ollama_registry: FakeOllamaRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_hub.add_repo("org/lama", {"config.json": b"{}"})
    fake_hub.add_repo("org/weights", {"m.gguf": b"g"})
    pinned = fake_hub.repo("org/pinned").refs["main"]
    fake_hub.set_ref("org/pinned", "v9", pinned)
    ollama_registry.publish("qwen2.5:70b", [("model", b"big")])
    # A token whose account has not accepted the gated repo's terms does not help.
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    gated = mlx(capsys, "validate", "--remote")
    assert gated.code == 1
    assert gated.out.startswith("mlx.yaml:18:13: error: models.gated.source: hf://org/gated is")
    assert gated.out.endswith("\n1 error in mlx.yaml\n")
    upstream.write_text(upstream.read_text().replace("  gated:\n    source: hf://org/gated\n", ""))
    result = mlx(capsys, "validate", "--remote")
    assert result.code == 0, result.out + result.err
    assert result.out == (
        "mlx.yaml is valid (7 models, 0 apps, 0 benchmarks); every source exists.\n"
    )


def test_remote_unreachable_is_one_line_per_model(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = dead_url()
    monkeypatch.setenv("HF_ENDPOINT", dead)
    settings = f"settings:\n  ollama:\n    registry: {dead}\n"
    models = "  a:\n    source: hf://org/a\n  b:\n    source: ollama://qwen2.5:7b\n"
    Path("mlx.yaml").write_text(f"version: 1\n{settings}models:\n{models}")
    result = mlx(capsys, "validate", "--remote")
    assert result.code == 1, result.err
    lines = result.out.splitlines()
    assert lines[0] == (
        f"mlx.yaml:7:13: error: models.a.source: cannot reach the hub at {dead} for hf://org/a "
        "(check the network or HF_ENDPOINT)"
    )
    assert lines[1].startswith(
        f"mlx.yaml:9:13: error: models.b.source: cannot reach the registry at {dead} for "
        "ollama://qwen2.5:7b: "
    )
    assert lines[2:] == ["2 errors in mlx.yaml"]
    assert "Traceback" not in result.err
