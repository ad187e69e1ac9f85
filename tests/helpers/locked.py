"""What the mlx.lock tests share: running mlx with an expected exit code, a spec beside a lock
written with ``dump_lock`` from what the fake hub serves, and the HF cache read back."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlxstate.lock.model import HfFile, HfLock, LockEntry, Lockfile, dump_lock, input_hash
from mlxstate.mlxyaml.models import ModelSpec
from tests.builders.hf_cache import repo_dir
from tests.fakes.hf_hub import FakeHfHub
from tests.helpers import Result, hf_dir, mlx
from tests.helpers.apply import TINY, TINY_SRC, no_traceback

__all__ = [
    "HF_MODEL",
    "cache_content",
    "cache_files",
    "hf_entry",
    "run",
    "snapshots",
    "spec",
    "write_lock",
]

HF_MODEL = f"  tiny:\n    source: {TINY_SRC}\n"


def run(capsys: pytest.CaptureFixture[str], *args: str, code: int) -> Result:
    result = mlx(capsys, *args)
    no_traceback(result)
    assert result.code == code, (result.out, result.err)
    return result


def spec(models: str, registry: str | None = None) -> Path:
    settings = f"settings:\n  ollama:\n    registry: {registry}\n" if registry else ""
    path = Path("mlx.yaml")
    path.write_text(f"version: 1\n{settings}models:\n{models}")
    return path


def hf_entry(hub: FakeHfHub, commit: str, *, wrong: str | None = None) -> LockEntry:
    files = []
    for path, fact in sorted(hub.files(TINY, commit).items()):
        sha = fact.sha256 if fact.lfs else None
        if path == wrong:
            sha = "f" * 64
        files.append(HfFile(path, fact.size, sha, None if fact.lfs else fact.blob_id))
    declared = ModelSpec.model_validate({"source": TINY_SRC})
    return LockEntry(TINY_SRC, input_hash(declared), hf=HfLock("main", commit, tuple(files)))


def write_lock(**entries: LockEntry) -> bytes:
    raw = dump_lock(Lockfile(entries))
    Path("mlx.lock").write_bytes(raw)
    return raw


def snapshots() -> set[str]:
    folder = repo_dir(hf_dir(), TINY) / "snapshots"
    return set(os.listdir(folder)) if folder.is_dir() else set()


def cache_files() -> dict[str, str]:
    out = {}
    for dirpath, dirs, files in os.walk(hf_dir()):
        for name in (*dirs, *files):
            p = Path(dirpath, name)
            out[str(p)] = os.readlink(p) if p.is_symlink() else ("dir" if p.is_dir() else "file")
    return out


def cache_content(files: dict[str, str]) -> dict[str, str]:
    return {p: v for p, v in files.items() if "/trees" not in p and "/.locks" not in p}
