"""Scan an Ollama models dir (FORMATS.md "Ollama blob store") without reading blobs.

Manifests live at ``manifests/<host>/<namespace>/<model>/<tag>`` (exactly four levels),
blobs at ``blobs/sha256-<hex>``. Partial downloads are ``<blob>-partial`` plus
``-partial-N`` sidecars; any other name in ``blobs/`` is a temp file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxstate.state import FileFact, Layer, OllamaModel, OllamaStore

__all__ = ["manifest_path", "read_one_model", "scan_ollama_store"]

_BLOB_RE = re.compile(r"^sha256[-:]([0-9a-f]{64})$")
_PARTIAL_RE = re.compile(r"^sha256[-:]([0-9a-f]{64})-partial(-\d+)?$")


@dataclass
class _Blobs:
    sizes: dict[str, int] = field(default_factory=dict)
    atimes: dict[str, float] = field(default_factory=dict)
    facts: dict[str, FileFact] = field(default_factory=dict)
    partials: list[FileFact] = field(default_factory=list)
    temps: list[FileFact] = field(default_factory=list)


def scan_ollama_store(root: Path) -> OllamaStore:
    """Everything in the store at ``root``; problems with single files become warnings."""
    if not root.is_dir():
        return OllamaStore(root=root, exists=False)
    warnings: list[str] = []
    blobs = _scan_blobs(root / "blobs", warnings)
    models: list[OllamaModel] = []
    unparseable = 0
    for path, parts in _manifest_files(root / "manifests", warnings):
        try:
            models.append(_read_manifest(path, parts, blobs))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            unparseable += 1
            warnings.append(f"unreadable Ollama manifest {path}: {_reason(exc)}")
    orphans: tuple[FileFact, ...] = ()
    if unparseable:
        # Ollama's own pruning (server/images.go) skips entirely when a manifest fails to
        # parse: its blobs would look unreferenced. We report no orphans for the same reason.
        warnings.append("orphan blobs not reported: a manifest could not be read")
    else:
        used = {layer.digest for m in models for layer in m.all_layers}
        orphans = tuple(fact for digest, fact in sorted(blobs.facts.items()) if digest not in used)
    models.sort(key=lambda m: m.name)
    return OllamaStore(
        root=root,
        exists=True,
        models=tuple(models),
        partials=tuple(blobs.partials),
        orphans=orphans,
        temps=tuple(blobs.temps),
        orphans_known=not unparseable,
        warnings=tuple(warnings),
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc) or type(exc).__name__


def _scan_blobs(folder: Path, warnings: list[str]) -> _Blobs:
    out = _Blobs()
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return out
    except OSError as exc:
        warnings.append(f"cannot list {folder}: {_reason(exc)}")
        return out
    for entry in entries:
        try:
            st = entry.stat()  # follows symlinks: Ollama opens linked blobs like files
        except OSError:
            warnings.append(f"dangling link in Ollama blobs: {entry.path}")
            continue
        if not entry.is_file():
            continue
        _classify(entry.name, Path(entry.path), st, out)
    return out


def _classify(name: str, path: Path, st: os.stat_result, out: _Blobs) -> None:
    if m := _BLOB_RE.fullmatch(name):
        digest = m.group(1)
        out.sizes[digest] = st.st_size
        out.atimes[digest] = st.st_atime
        out.facts[digest] = FileFact(path, st.st_size, st.st_mtime, "orphan", digest)
    elif m := _PARTIAL_RE.fullmatch(name):
        out.partials.append(FileFact(path, st.st_size, st.st_mtime, "partial", m.group(1)))
    else:
        out.temps.append(FileFact(path, st.st_size, st.st_mtime, "temp"))


def _manifest_files(folder: Path, warnings: list[str]) -> list[tuple[Path, tuple[str, ...]]]:
    """(path, (host, namespace, model, tag)) of every file exactly four levels down."""
    found: list[tuple[Path, tuple[str, ...]]] = []

    def walk(path: Path, parts: tuple[str, ...]) -> None:
        try:
            entries = list(os.scandir(path))
        except OSError as exc:
            if parts:
                warnings.append(f"cannot list {path}: {_reason(exc)}")
            return
        for entry in entries:
            here = (*parts, entry.name)
            if len(here) < 4 and entry.is_dir():
                walk(Path(entry.path), here)
            elif len(here) == 4 and entry.is_file() and not entry.name.startswith("."):
                found.append((Path(entry.path), here))

    walk(folder, ())
    return found


def manifest_path(root: Path, parts: tuple[str, str, str, str]) -> Path:
    """The manifest of (host, namespace, model, tag); Ollama matches names case-insensitively,
    so a differently-cased folder on disk is found too."""
    exact = root.joinpath("manifests", *parts)
    if exact.exists():
        return exact
    folder = root / "manifests"
    for part in parts:
        try:
            match = next(e.name for e in os.scandir(folder) if e.name.lower() == part.lower())
        except (OSError, StopIteration):
            return exact
        folder = folder / match
    return folder


def read_one_model(root: Path, parts: tuple[str, str, str, str]) -> OllamaModel | None:
    """One model (host, namespace, model, tag) without scanning the store: its manifest and
    a stat of each of its blobs. None when absent or unreadable (apply's re-checks)."""
    path = manifest_path(root, parts)
    parts = path.parts[-4:]  # type: ignore[assignment]  # as spelled on disk
    try:
        doc = json.loads(path.read_bytes())
        digests = [x["digest"] for x in [doc.get("config") or {}, *doc["layers"]] if "digest" in x]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    blobs = _Blobs()
    for digest in digests:
        hexd = str(digest).removeprefix("sha256:")
        try:
            st = os.stat(root / "blobs" / f"sha256-{hexd}")
        except OSError:
            continue
        blobs.sizes[hexd], blobs.atimes[hexd] = st.st_size, st.st_atime
    try:
        return _read_manifest(path, parts, blobs)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_manifest(path: Path, parts: tuple[str, ...], blobs: _Blobs) -> OllamaModel:
    raw = path.read_bytes()
    doc = json.loads(raw)
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list):
        raise ValueError("not an Ollama manifest (no layers)")
    sizes = blobs.sizes
    config = _layer(doc["config"], sizes) if isinstance(doc.get("config"), dict) else None
    layers = tuple(_layer(x, sizes) for x in doc["layers"])
    host, namespace, model, tag = parts
    return OllamaModel(
        host=host,
        namespace=namespace,
        model=model,
        tag=tag,
        manifest_path=path,
        # The model's "digest" in /api/tags is the sha256 of the manifest FILE as stored.
        manifest_digest=hashlib.sha256(raw).hexdigest(),
        config=config,
        layers=layers,
        mtime=path.stat().st_mtime,
        last_used=max((blobs.atimes.get(x.digest, 0.0) for x in layers), default=0.0),
    )


def _layer(doc: Any, sizes: dict[str, int]) -> Layer:
    digest = str(doc["digest"])
    if not digest.startswith("sha256:") or len(digest) != 71:
        raise ValueError(f"bad layer digest {digest[:80]!r}")
    hexdigest = digest.removeprefix("sha256:")
    size = doc.get("size", 0)
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"bad layer size {size!r}")
    return Layer(str(doc.get("mediaType", "")), hexdigest, size, sizes.get(hexdigest))
