"""Planning and applying with ``mlx.lock`` (``--locked`` / ``--frozen``, docs/lock.md).

``--locked`` refuses a lock that is missing or stale for mlx.yaml; ``--frozen`` uses the lock
as it is. Either way every value taken from the lock is checked before it is used: a commit
becomes a snapshot folder name and a digest a blob name, so a hand-edited lock must not be
able to name a path.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal

from mlxstate.errors import MlxError
from mlxstate.facts import OllamaModel
from mlxstate.lock.model import (
    MAX_SIZE,
    LockEntry,
    OllamaLock,
    lock_path,
    lockable,
    parse_lock,
    read_lock_bytes,
)
from mlxstate.mlxyaml.models import ModelSpec
from mlxstate.sources import HfSource, OllamaSource, parse_source

__all__ = [
    "LockMode",
    "LockUse",
    "entry_problem",
    "load_lock_use",
    "lock_mode",
    "locked_commits",
    "pinned",
    "same_manifest",
]

LockMode = Literal["off", "locked", "frozen"]

_COMMIT = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class LockUse:
    """The lock a plan or an apply follows: its mode, where it is, the sha256 of its bytes
    (a saved plan records it), and the entries that pin a declared model."""

    mode: LockMode
    path: Path
    sha256: str
    pins: Mapping[str, LockEntry] = field(default_factory=dict)
    unpinned: tuple[str, ...] = ()  # declared lockable models the lock does not pin


def load_lock_use(
    mode: LockMode, spec_path: Path, models: Mapping[str, ModelSpec]
) -> LockUse | None:
    """The lock beside ``spec_path`` for ``mode``; None for ``off``. MlxError (exit 1, nothing
    changed) when it is missing, not ours, holds a value that is not a commit or a digest,
    or (``locked``) is stale for ``models``."""
    if mode == "off":
        return None
    path = lock_path(spec_path)
    flag = f"--{mode}"
    raw = read_lock_bytes(path)
    if raw is None:
        raise MlxError(
            f"{flag}: there is no {path}", hint="run `mlx lock` to write it, then plan again"
        )
    lock = parse_lock(raw, path)
    for name, entry in sorted(lock.models.items()):
        _check_values(path, name, entry)
    if mode == "locked" and (reasons := lock.stale(models)):
        noun = "reason" if len(reasons) == 1 else "reasons"
        raise MlxError(
            f"--locked: {path} is stale for {spec_path.name} ({len(reasons)} {noun}):\n  "
            + "\n  ".join(reasons),
            hint="run `mlx lock` to update it (or plan with --frozen); nothing was changed",
        )
    pins: dict[str, LockEntry] = {}
    unpinned: list[str] = []
    for name, spec in sorted(models.items()):
        if not lockable(spec):
            continue
        found = lock.models.get(name)
        if found is not None and _pins(found, spec):
            pins[name] = found
        else:
            unpinned.append(name)
    return LockUse(mode, path, hashlib.sha256(raw).hexdigest(), pins, tuple(unpinned))


def _pins(entry: LockEntry, spec: ModelSpec) -> bool:
    """An entry pins a model only for the source it was resolved from (with --frozen a
    lock may be older than mlx.yaml: another source's commit must never be fetched)."""
    try:
        same = str(parse_source(entry.source)) == str(spec.parsed_source)
    except ValueError:
        return False
    src = spec.parsed_source
    if isinstance(src, HfSource):
        return same and entry.hf is not None
    if isinstance(src, OllamaSource):
        return same and entry.ollama is not None
    return False


def _check_values(path: Path, name: str, entry: LockEntry) -> None:
    bad = entry_problem(entry)
    if bad is not None:
        raise MlxError(
            f"{path}: {name}: {bad}",
            hint=f"run `mlx lock --upgrade {name}` to resolve it again",
        )


def entry_problem(entry: LockEntry) -> str | None:
    """Why a value of ``entry`` must not be used (it could name a path), or None. `mlx lock`
    asks it of what a hub or registry answered, plan and apply of what the lock says."""
    bad: str | None = None
    if entry.hf is not None:
        if not _COMMIT.fullmatch(entry.hf.commit):
            bad = f"commit {entry.hf.commit[:60]!r} is not a 40-hex commit"
        for f in entry.hf.files:
            parts = PurePosixPath(f.path).parts
            odd = f.path.startswith("/") or "\\" in f.path or "\0" in f.path
            if not parts or odd or ".." in parts:
                bad = f"file path {f.path[:60]!r} is not a path inside the repo"
            elif not 0 <= f.size <= MAX_SIZE:
                bad = f"{f.path[:60]}: size {f.size} is not a file size"
            elif f.sha256 is not None and not _SHA256.fullmatch(f.sha256):
                bad = f"{f.path[:60]}: sha256 {f.sha256[:70]!r} is not 64 hex digits"
            elif f.blob_id is not None and not _COMMIT.fullmatch(f.blob_id):
                bad = f"{f.path[:60]}: blob_id {f.blob_id[:60]!r} is not 40 hex digits"
    if entry.ollama is not None:
        for digest in (entry.ollama.digest, *(x.digest for x in entry.ollama.layers)):
            if not _DIGEST.fullmatch(digest):
                bad = f"digest {digest[:80]!r} is not sha256:<64 hex>"
        for layer in entry.ollama.layers:
            if not 0 <= layer.size <= MAX_SIZE:
                bad = f"layer size {layer.size} is not a blob size"
    return bad


def same_manifest(model: OllamaModel, lock: OllamaLock) -> bool:
    """The installed manifest is the locked one: the same bytes, or (Ollama may store the
    manifest it received re-serialized) the same config and layers."""
    if f"sha256:{model.manifest_digest}" == lock.digest:
        return True
    installed = [f"sha256:{x.digest}" for x in model.all_layers]
    return sorted(installed) == sorted(x.digest for x in lock.layers)


def lock_mode(locked: bool, frozen: bool) -> LockMode:
    """``--locked`` (check, then follow) wins over ``--frozen`` (follow as is)."""
    return "locked" if locked else "frozen" if frozen else "off"


def pinned(lock: LockUse | None, name: str | None) -> LockEntry | None:
    return lock.pins.get(name) if lock is not None and name else None


def locked_commits(pins: Mapping[str, LockEntry] | None) -> dict[str, str]:
    """Model name -> the HF commit mlx.lock pins. A locked download is made by commit, so no
    ref names it: links and the detached-revision cleanup must find it by this instead."""
    return {name: e.hf.commit for name, e in (pins or {}).items() if e.hf is not None}
