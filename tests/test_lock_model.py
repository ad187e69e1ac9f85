"""The mlx.lock document: exact bytes, round trip, input hashes and staleness."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlxstate.errors import MlxError
from mlxstate.lock.model import (
    HfFile,
    HfLock,
    LockEntry,
    Lockfile,
    OllamaLayer,
    OllamaLock,
    dump_lock,
    input_hash,
    parse_lock,
)
from mlxstate.mlxyaml.models import ModelSpec


def _hf(**extra: object) -> ModelSpec:
    return ModelSpec.model_validate({"source": "hf://org/repo", **extra})


def test_input_hash_follows_what_is_fetched_only() -> None:
    base = input_hash(_hf(include=["*.json", "*.safetensors"]))
    assert base == input_hash(_hf(include=["*.safetensors", "*.json"]))  # order is not content
    assert base == input_hash(_hf(include=["*.json", "*.safetensors"], protect=True))
    assert base != input_hash(_hf(include=["*.json"]))
    assert input_hash(_hf()) == input_hash(_hf(revision="main"))  # main is the default
    assert input_hash(_hf()) != input_hash(_hf(revision="v2"))


def _lock() -> Lockfile:
    hf = HfLock(
        "main", "a" * 40, (HfFile("z.json", 2, blob_id="b" * 40), HfFile("a.bin", 9, "c" * 64))
    )
    layer = OllamaLayer("sha256:" + "d" * 64, 5, "application/vnd.ollama.image.model")
    ollama = OllamaLock("registry.ollama.ai/library/qwen:7b", "sha256:" + "e" * 64, (layer,))
    return Lockfile(
        {
            "zed": LockEntry("hf://org/repo", input_hash(_hf()), hf=hf),
            "qwen": LockEntry("ollama://qwen:7b", "sha256:x", ollama=ollama),
        }
    )


def test_bytes_are_sorted_and_round_trip() -> None:
    raw = dump_lock(_lock())
    assert raw.endswith(b"}\n") and raw.index(b'"qwen"') < raw.index(b'"zed"')
    assert raw.index(b'"a.bin"') < raw.index(b'"z.json"')  # files by path
    again = parse_lock(raw, Path("mlx.lock"))
    assert dump_lock(again) == raw


def test_stale_reasons() -> None:
    lock = _lock()
    declared = {"zed": _hf(include=["*.json"]), "new": _hf(), "gone": _hf(ensure="absent")}
    assert lock.stale(declared) == [
        "new: not in the lock",
        "zed: its mlx.yaml entry changed since it was locked",
        "qwen: locked but no longer declared",
    ]
    assert Lockfile({"zed": lock.models["zed"]}).stale({"zed": _hf()}) == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{", "is not valid JSON"),
        (b'{"lock_version": 2, "models": {}}', "unsupported lock_version 2"),
        (b'{"lock_version": 1, "models": []}', "'models' must be an object"),
        (b'{"lock_version": 1, "models": {"a": {"source": 1}}}', "a malformed entry"),
    ],
)
def test_a_lock_that_is_not_ours_is_one_line(raw: bytes, message: str) -> None:
    with pytest.raises(MlxError, match=message):
        parse_lock(raw, Path("mlx.lock"))
