"""schemas/mlx.lock.schema.json: committed = generated, and every lock mlx writes obeys it."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from mlxstate.lock.model import (
    HfFile,
    HfLock,
    LockEntry,
    Lockfile,
    OllamaLayer,
    OllamaLock,
    dump_lock,
)
from mlxstate.lock.schema import lock_json_schema, lock_schema_text
from tests.fakes.hf_hub import FakeHfHub
from tests.fakes.ollama_registry import FakeOllamaRegistry
from tests.helpers import REPO_EXAMPLES, mlx, run_ok

COMMITTED = REPO_EXAMPLES.parent / "schemas" / "mlx.lock.schema.json"
DIGEST = "sha256:" + "e" * 64


def test_committed_lock_schema_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert COMMITTED.read_text() == lock_schema_text(), (
        "schemas/mlx.lock.schema.json is stale: run "
        "`uv run mlx schema --lock > schemas/mlx.lock.schema.json`"
    )
    assert mlx(capsys, "schema", "--lock").out == COMMITTED.read_text()
    jsonschema.Draft202012Validator.check_schema(lock_json_schema())


def _validate(raw: bytes) -> None:
    jsonschema.validate(json.loads(raw), lock_json_schema())


def test_dumps_validate() -> None:
    hf = HfLock("v1", "a" * 40, (HfFile("w.bin", 9, "c" * 64), HfFile("c.json", 2, blob_id="b")))
    layer = OllamaLayer(DIGEST, 5, "application/vnd.ollama.image.model")
    lock = Lockfile(
        {
            "a": LockEntry("hf://org/repo", DIGEST, hf=hf),
            "b": LockEntry("ollama://qwen:7b", DIGEST, ollama=OllamaLock("h/n/m:t", DIGEST, ())),
            "c": LockEntry("ollama://x", DIGEST, ollama=OllamaLock("h/n/x:t", DIGEST, (layer,))),
        }
    )
    _validate(dump_lock(lock))
    _validate(dump_lock(Lockfile()))


def test_a_lock_written_by_mlx_validates(
    capsys: pytest.CaptureFixture[str],
    fake_hub: FakeHfHub,
    ollama_registry: FakeOllamaRegistry,
) -> None:
    fake_hub.add_repo("org/m", {"a.json": b"{}", "w.safetensors": b"x" * 32}, lfs={"w.safetensors"})
    ollama_registry.publish("qwen2.5:7b")
    spec = Path("mlx.yaml")
    spec.write_text(
        f"version: 1\nsettings:\n  ollama:\n    registry: {ollama_registry.url}\n"
        "models:\n  m:\n    source: hf://org/m\n  q:\n    source: ollama://qwen2.5:7b\n"
    )
    run_ok(capsys, "lock", "-f", str(spec))
    _validate(Path("mlx.lock").read_bytes())


@pytest.mark.parametrize(
    "broken",
    [
        {"lock_version": 2, "models": {}},
        {"lock_version": 1, "models": {"Bad Name": {}}},
        {"lock_version": 1, "models": {"a": {"source": "hf://o/r", "input_hash": DIGEST}}},
        {"lock_version": 1, "models": {}, "generated_at": "2024-01-01"},
    ],
)
def test_the_schema_refuses_what_mlx_would_not_write(broken: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, lock_json_schema())
