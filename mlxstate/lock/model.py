"""The ``mlx.lock`` document: its data, its exact bytes, and the input hash that tells
when an entry no longer matches mlx.yaml (docs/lock.md).

The bytes are deterministic: JSON with sorted keys, two-space indent, a final newline, no
timestamps, no machine paths, lists sorted (files by path, layers in manifest order as the
registry serves them). The same mlx.yaml and the same upstream state give the same bytes on
any machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxstate.errors import MlxError
from mlxstate.mlxyaml.models import ModelSpec
from mlxstate.sources import FileSource, HfSource

__all__ = [
    "LOCK_NAME",
    "LOCK_VERSION",
    "HfFile",
    "HfLock",
    "LockEntry",
    "Lockfile",
    "OllamaLayer",
    "OllamaLock",
    "dump_lock",
    "input_hash",
    "lock_path",
    "lockable",
    "parse_lock",
    "read_lock",
    "read_lock_bytes",
]

LOCK_NAME = "mlx.lock"
LOCK_VERSION = 1
# Far above any real lock (a few KB per model); a lock must not fill the memory.
MAX_LOCK_BYTES = 64 << 20
# Far above any real file or blob: a size no float overflows on when it is shown.
MAX_SIZE = 1 << 60


def lock_path(spec_path: Path) -> Path:
    """``mlx.lock`` beside mlx.yaml (beside the file the path names, not a symlink's target:
    a dotfiles repo links mlx.yaml into place and keeps the lock next to the link's file)."""
    return spec_path.parent / LOCK_NAME


def lockable(spec: ModelSpec) -> bool:
    """Models with something upstream to pin: hf:// and ollama:// that should be present."""
    return spec.ensure == "present" and not isinstance(spec.parsed_source, FileSource)


def input_hash(spec: ModelSpec) -> str:
    """sha256 of the normalized entry: only what decides what is fetched (source, revision,
    include, exclude; pattern order does not matter). Editing `protect:` or `when:` leaves
    the lock fresh; editing `include:` makes it stale."""
    src = spec.parsed_source
    doc: dict[str, Any] = {"source": str(src)}
    if isinstance(src, HfSource):
        doc["revision"] = spec.effective_revision
        doc["include"] = sorted(spec.include) if spec.include else None
        doc["exclude"] = sorted(spec.exclude) if spec.exclude else None
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class HfFile:
    path: str
    size: int
    sha256: str | None = None  # LFS files: the sha256 of the content (the LFS oid)
    blob_id: str | None = None  # regular git files: the git blob id (sha1)

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"path": self.path, "size": self.size}
        if self.sha256 is not None:
            doc["sha256"] = self.sha256
        if self.blob_id is not None:
            doc["blob_id"] = self.blob_id
        return doc


@dataclass(frozen=True, slots=True)
class HfLock:
    revision: str  # what mlx.yaml asked for (main, a tag, a commit)
    commit: str  # what it resolved to
    files: tuple[HfFile, ...]

    def document(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "commit": self.commit,
            "files": [f.document() for f in sorted(self.files, key=lambda f: f.path)],
        }


@dataclass(frozen=True, slots=True)
class OllamaLayer:
    digest: str  # sha256:<hex>
    size: int
    media_type: str

    def document(self) -> dict[str, Any]:
        return {"digest": self.digest, "size": self.size, "media_type": self.media_type}


@dataclass(frozen=True, slots=True)
class OllamaLock:
    name: str  # host/namespace/model:tag, as pulled
    digest: str  # sha256 of the manifest bytes (what Ollama lists as the model's digest)
    layers: tuple[OllamaLayer, ...]  # the config blob first, then the layers in order

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "digest": self.digest,
            "layers": [layer.document() for layer in self.layers],
        }


@dataclass(frozen=True, slots=True)
class LockEntry:
    source: str
    input_hash: str
    hf: HfLock | None = None
    ollama: OllamaLock | None = None

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"source": self.source, "input_hash": self.input_hash}
        if self.hf is not None:
            doc["hf"] = self.hf.document()
        if self.ollama is not None:
            doc["ollama"] = self.ollama.document()
        return doc


@dataclass(frozen=True)
class Lockfile:
    models: Mapping[str, LockEntry] = field(default_factory=dict)

    def stale(self, declared: Mapping[str, ModelSpec]) -> list[str]:
        """One line per reason the lock does not match ``declared`` (empty: fresh)."""
        problems: list[str] = []
        wanted = {name: spec for name, spec in declared.items() if lockable(spec)}
        for name, spec in sorted(wanted.items()):
            entry = self.models.get(name)
            if entry is None:
                problems.append(f"{name}: not in the lock")
            elif entry.input_hash != input_hash(spec):
                problems.append(f"{name}: its mlx.yaml entry changed since it was locked")
        problems += [
            f"{name}: locked but no longer declared" for name in self.models.keys() - wanted.keys()
        ]
        return problems


def dump_lock(lock: Lockfile) -> bytes:
    doc = {
        "lock_version": LOCK_VERSION,
        "models": {name: lock.models[name].document() for name in sorted(lock.models)},
    }
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def read_lock(path: Path) -> Lockfile | None:
    """The lock at ``path``; None when there is none. A lock that is not ours is MlxError."""
    raw = read_lock_bytes(path)
    return None if raw is None else parse_lock(raw, path)


def read_lock_bytes(path: Path) -> bytes | None:
    """The bytes of the lock at ``path`` (None: there is none). Only a regular file (a
    symlink to one is fine) of sane size: a FIFO would block forever, /dev/zero never ends."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MlxError(f"cannot read {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise MlxError(f"{path} is not a regular file", hint="remove it and run `mlx lock`")
        if st.st_size > MAX_LOCK_BYTES:
            raise MlxError(
                f"{path} is {st.st_size} bytes, more than a lock can be",
                hint="run `mlx lock` to write it again",
            )
        try:
            return handle.read(MAX_LOCK_BYTES + 1)
        except OSError as exc:
            raise MlxError(f"cannot read {path}: {exc.strerror or exc}") from None


def parse_lock(raw: bytes, path: Path) -> Lockfile:
    fix = "run `mlx lock` to write it again"
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise MlxError(f"{path} is not valid JSON", hint=fix) from None
    if not isinstance(doc, dict) or doc.get("lock_version") != LOCK_VERSION:
        version = doc.get("lock_version") if isinstance(doc, dict) else None
        raise MlxError(f"{path}: unsupported lock_version {version!r} (expected 1)", hint=fix)
    models = doc.get("models")
    if not isinstance(models, dict):
        raise MlxError(f"{path}: 'models' must be an object", hint=fix)
    try:
        return Lockfile({str(name): _entry(value) for name, value in models.items()})
    except (KeyError, TypeError, ValueError) as exc:
        raise MlxError(f"{path}: a malformed entry ({exc})", hint=fix) from None


def _entry(doc: Any) -> LockEntry:
    if not isinstance(doc, dict):
        raise TypeError("an entry must be an object")
    hf = doc.get("hf")
    ollama = doc.get("ollama")
    return LockEntry(
        source=_str(doc["source"]),
        input_hash=_str(doc["input_hash"]),
        hf=None
        if hf is None
        else HfLock(
            revision=_str(hf["revision"]),
            commit=_str(hf["commit"]),
            files=tuple(
                HfFile(
                    path=_str(f["path"]),
                    size=_int(f["size"]),
                    sha256=_opt_str(f.get("sha256")),
                    blob_id=_opt_str(f.get("blob_id")),
                )
                for f in hf["files"]
            ),
        ),
        ollama=None
        if ollama is None
        else OllamaLock(
            name=_str(ollama["name"]),
            digest=_str(ollama["digest"]),
            layers=tuple(
                OllamaLayer(_str(x["digest"]), _int(x["size"]), _str(x["media_type"]))
                for x in ollama["layers"]
            ),
        ),
    )


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _int(value: Any) -> int:
    """A size: a non-negative int no larger than ``MAX_SIZE``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SIZE:
        raise TypeError(f"expected a size, got {value!r}")
    return value
