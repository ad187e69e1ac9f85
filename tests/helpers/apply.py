"""What the apply tests share: the two small models the fakes serve, cutting in-process
code off the network, and reading the stores back independently of mlxstate."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import pytest

from mlxstate.registry import read_facts
from tests.builders import ollama_store as ob
from tests.builders.common import git_blob_sha1, sha256_hex
from tests.helpers import Result, dead_url, hf_dir, ollama_dir, state_dir

QWEN = "qwen2.5:0.5b"
QWEN_SRC = f"ollama://{QWEN}"
TINY = "org/tiny"
TINY_SRC = f"hf://{TINY}"
WEIGHTS = b"\x00safetensors" + bytes(range(256)) * 20  # LFS (binary), 5132 bytes
CONFIG = b'{"model_type": "llama", "hidden_size": 64}\n'
TINY_FILES = {"config.json": CONFIG, "model.safetensors": WEIGHTS}


def hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """huggingface_hub's import-time endpoint → a dead port. ``hf_hub_url`` swaps in the
    ``endpoint=`` argument only where a URL starts with ``constants.ENDPOINT``, so the URL
    template built from it at import time must move along with it."""
    dead = dead_url()
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", dead)
    monkeypatch.setattr(
        huggingface_hub.constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        dead + "/{repo_id}/resolve/{revision}/{filename}",
    )
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def go_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No daemon and no hub (a test that asks for a fake gets it: its fixture runs later)."""
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    hub_offline(monkeypatch)


_SERVER_NOISE = re.compile(
    r"-{40}\nException occurred during processing of request from .*?\n-{40}\n", re.S
)


def no_traceback(result: Result) -> None:
    """mlx printed no traceback (a fake server thread's report of a reset connection, which
    lands in the same captured stderr in-process, does not count)."""
    assert "Traceback" not in result.out + _SERVER_NOISE.sub("", result.err), result.err


def managed() -> set[str]:
    """The sources the registry says mlx installed."""
    return {m.source for m in read_facts(state_dir()).models}


def tree_state(*roots: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry below ``roots`` with its content hash (links: their target)."""
    out: dict[str, tuple[Any, ...]] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in (*dirnames, *filenames):
                path = Path(dirpath, name)
                if path.is_symlink():
                    out[str(path)] = ("link", os.readlink(path))
                elif path.is_dir():
                    out[str(path)] = ("dir",)
                else:
                    out[str(path)] = ("file", sha256_hex(path.read_bytes()))
    return out


def check_ollama_store() -> None:
    """Nothing half-written where Ollama looks: every manifest parses and names blobs that
    exist with the right size and sha256; every file in ``blobs/`` is named by its digest."""
    root = ollama_dir()
    manifests, broken = ob.read_manifests(root)
    assert broken == [], f"unparseable manifests: {broken}"
    for info in manifests:
        for blob in info.blobs:
            path = info.blob_path(blob)
            assert path.is_file(), f"{info.name.display}: missing blob {path.name}"
            data = path.read_bytes()
            assert len(data) == blob.size, f"{path.name}: {len(data)} bytes, want {blob.size}"
            assert "sha256:" + sha256_hex(data) == blob.digest, f"{path.name}: wrong bytes"
    blobs = root / "blobs"
    for path in blobs.iterdir() if blobs.is_dir() else ():
        assert re.fullmatch(r"sha256-[0-9a-f]{64}", path.name), f"stray file in blobs/: {path}"
        assert sha256_hex(path.read_bytes()) == path.name.removeprefix("sha256-"), path
    for path in (root / "manifests").rglob("*") if (root / "manifests").exists() else ():
        assert path.is_dir() or len(path.relative_to(root / "manifests").parts) == 4, path


def check_hf_cache() -> None:
    """Nothing half-written where the HF library looks: refs name snapshots; every snapshot
    entry is a relative link to a blob whose name is its hash; no temp files."""
    for repo in hf_dir().glob("models--*"):
        blobs = repo / "blobs"
        for ref in (repo / "refs").rglob("*") if (repo / "refs").exists() else ():
            if ref.is_file():
                assert (repo / "snapshots" / ref.read_text()).is_dir(), f"dangling ref {ref}"
        for entry in (repo / "snapshots").rglob("*") if (repo / "snapshots").exists() else ():
            assert not entry.name.endswith((".tmp", ".incomplete")), entry
            if entry.is_dir() and not entry.is_symlink():
                continue
            assert entry.is_symlink(), f"not a link: {entry}"
            target = os.readlink(entry)
            assert not os.path.isabs(target), entry
            real = entry.resolve()
            assert real.is_file() and real.parent == blobs.resolve(), f"dangling {entry}"
            data = real.read_bytes()
            assert real.name in (sha256_hex(data), git_blob_sha1(data)), f"bad blob {real}"
