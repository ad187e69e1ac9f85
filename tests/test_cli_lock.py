"""`mlx lock`: writing, keeping, upgrading, checking; errors leave the lock untouched.
Against the loopback fake hub and fake Ollama registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlxstate.lock.model import parse_lock
from tests.fakes.hf_hub import FakeHfHub
from tests.fakes.ollama_registry import FakeOllamaRegistry
from tests.helpers import mlx, run_ok

FILES = {"config.json": b"{}", "model.safetensors": b"w" * 64, "README.md": b"# hi"}


def _spec(registry: FakeOllamaRegistry, models: str, folder: str = "proj") -> Path:
    path = Path(folder) / "mlx.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        f"version: 1\nsettings:\n  ollama:\n    registry: {registry.url}\nmodels:\n{models}"
    )
    return path


MODELS = """\
  llama:
    source: hf://org/llama
    include: ["*.json", "*.safetensors"]
  qwen:
    source: ollama://qwen2.5:7b
  local:
    source: file:///nowhere/x.gguf
"""


@pytest.fixture
def upstream(fake_hub: FakeHfHub, ollama_registry: FakeOllamaRegistry) -> Path:
    fake_hub.add_repo("org/llama", FILES, lfs={"model.safetensors"})
    ollama_registry.publish("qwen2.5:7b", [("model", b"one")])
    return _spec(ollama_registry, MODELS)


def _read(spec: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((spec.parent / "mlx.lock").read_text())
    return doc


def test_lock_writes_every_lockable_model(
    capsys: pytest.CaptureFixture[str], upstream: Path, fake_hub: FakeHfHub
) -> None:
    result = run_ok(capsys, "lock", "-f", str(upstream))
    assert "Wrote proj/mlx.lock (2 models)." in result.out
    lock = parse_lock((upstream.parent / "mlx.lock").read_bytes(), Path("mlx.lock"))
    assert sorted(lock.models) == ["llama", "qwen"]  # file:// has nothing to pin
    llama = lock.models["llama"].hf
    assert llama is not None and llama.commit == fake_hub.repo("org/llama").refs["main"]
    assert sorted(f.path for f in llama.files) == ["config.json", "model.safetensors"]
    # Again: nothing resolved, same bytes, the file is not rewritten.
    before = (upstream.parent / "mlx.lock").stat().st_mtime_ns
    again = run_ok(capsys, "lock", "-f", str(upstream))
    assert "proj/mlx.lock is up to date (2 models; 2 kept as locked)." in again.out
    assert (upstream.parent / "mlx.lock").stat().st_mtime_ns == before


def test_lock_keeps_pins_until_upgrade(
    capsys: pytest.CaptureFixture[str], upstream: Path, ollama_registry: FakeOllamaRegistry
) -> None:
    run_ok(capsys, "lock", "-f", str(upstream))
    first = _read(upstream)
    moved = ollama_registry.publish("qwen2.5:7b", [("model", b"two")])
    run_ok(capsys, "lock", "-f", str(upstream))
    assert _read(upstream) == first  # a moved tag does not move the pin by itself
    result = run_ok(capsys, "lock", "--upgrade", "qwen", "-f", str(upstream))
    assert f"locked qwen: ollama://qwen2.5:7b → {moved.digest[:19]}" in result.out
    after = _read(upstream)
    models = after["models"]
    assert isinstance(models, dict)
    assert models["qwen"]["ollama"]["digest"] == moved.digest
    assert models["llama"] == first["models"]["llama"]


def test_editing_an_entry_resolves_only_that_one(
    capsys: pytest.CaptureFixture[str],
    upstream: Path,
    fake_hub: FakeHfHub,
    ollama_registry: FakeOllamaRegistry,
) -> None:
    run_ok(capsys, "lock", "-f", str(upstream))
    ollama_registry.publish("qwen2.5:7b", [("model", b"two")])  # would move qwen if resolved
    commit = fake_hub.push("org/llama", {**FILES, "extra.json": b"[]"})
    upstream.write_text(upstream.read_text().replace('"*.json", ', '"*.json", "*.md", '))
    check = mlx(capsys, "lock", "--check", "-f", str(upstream))
    assert check.code == 1
    assert "proj/mlx.lock: stale: llama: its mlx.yaml entry changed since it was locked" in (
        check.err
    )
    run_ok(capsys, "lock", "-f", str(upstream))
    lock = parse_lock((upstream.parent / "mlx.lock").read_bytes(), Path("mlx.lock"))
    assert lock.models["llama"].hf is not None and lock.models["llama"].hf.commit == commit
    assert "README.md" in {f.path for f in lock.models["llama"].hf.files}
    first_qwen = lock.models["qwen"].ollama
    assert first_qwen is not None and first_qwen.layers[1].size == 3  # still "one"
    run_ok(capsys, "lock", "--check", "-f", str(upstream))


def test_check_is_offline_and_says_why(
    capsys: pytest.CaptureFixture[str], ollama_registry: FakeOllamaRegistry
) -> None:
    spec = _spec(ollama_registry, "  qwen:\n    source: ollama://qwen2.5:7b\n")
    missing = mlx(capsys, "lock", "--check", "-f", str(spec))
    assert missing.code == 1
    assert "error: no proj/mlx.lock: run `mlx lock` and commit it" in missing.err
    ollama_registry.publish("qwen2.5:7b")
    run_ok(capsys, "lock", "-f", str(spec))
    ollama_registry.stop()  # --check never asks the network
    assert (
        "proj/mlx.lock is up to date (1 model)."
        in run_ok(capsys, "lock", "--check", "-f", str(spec)).out
    )
    spec.write_text(spec.read_text() + "  other:\n    source: ollama://llama3\n")
    stale = mlx(capsys, "lock", "--check", "-f", str(spec))
    assert stale.code == 1 and "stale: other: not in the lock" in stale.err


def test_failures_leave_the_lock_untouched(
    capsys: pytest.CaptureFixture[str],
    upstream: Path,
    fake_hub: FakeHfHub,
    ollama_registry: FakeOllamaRegistry,
) -> None:
    fake_hub.add_repo("org/other", FILES)
    run_ok(capsys, "lock", "-f", str(upstream))
    before = (upstream.parent / "mlx.lock").read_bytes()
    upstream.write_text(
        upstream.read_text()
        + "  ghost:\n    source: ollama://ghost:1b\n"
        + "  typo:\n    source: hf://org/other\n    include: ['*.gguf']\n"
    )
    result = mlx(capsys, "lock", "--upgrade", "--no-color", "-f", str(upstream))
    assert result.code == 1 and "Traceback" not in result.err
    lines = result.err.splitlines()
    assert lines[0] == (
        f"error: models.ghost: ollama://ghost:1b not found at the registry {ollama_registry.url} "
        "(check the model name and tag)"
    )
    assert lines[1].startswith("error: models.typo: include [*.gguf] matches no file")
    assert lines[2] == "hint: mlx.lock was not changed; fix these and run `mlx lock` again"
    assert (upstream.parent / "mlx.lock").read_bytes() == before


def test_upgrade_names_must_be_lockable_models(
    capsys: pytest.CaptureFixture[str], upstream: Path
) -> None:
    unknown = mlx(capsys, "lock", "--upgrade", "nope", "-f", str(upstream))
    assert unknown.code == 1
    assert "--upgrade nope: no such model in mlx.yaml (lockable: llama, qwen)" in unknown.err
    local = mlx(capsys, "lock", "--upgrade", "local", "-f", str(upstream))
    assert local.code == 1 and "--upgrade local: nothing to lock" in local.err
    bare = mlx(capsys, "lock", "qwen", "-f", str(upstream))
    assert bare.code == 1 and "model names need --upgrade" in bare.err
    assert not (upstream.parent / "mlx.lock").exists()


def test_an_unreadable_lock_is_written_again(
    capsys: pytest.CaptureFixture[str], upstream: Path
) -> None:
    (upstream.parent / "mlx.lock").write_text("{not json")
    result = run_ok(capsys, "lock", "-f", str(upstream))
    assert "is not valid JSON; writing it again" in result.err
    assert sorted(_read(upstream)["models"]) == ["llama", "qwen"]
