"""Scan an Ollama models dir (docs/status-json.md, ``stores.ollama``) without reading blobs.

Manifests live at ``manifests/<host>/<namespace>/<model>/<tag>`` (exactly four levels),
blobs at ``blobs/sha256-<hex>``. Partial downloads are ``<blob>-partial`` plus
``-partial-N`` sidecars; any other name in ``blobs/`` is a temp file.

Manifests are hostile input (see ``ollama_manifest``): one that fails a check is a
warning, never a model, and no path is built from what it says.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mlxstate.facts import FileFact, Layer, OllamaModel, OllamaStore
from mlxstate.observe.ollama_manifest import (
    Entry,
    Manifest,
    blob_file,
    find_manifest,
    load_manifest,
    manifest_candidates,
    manifest_files,
    valid_name,
)
from mlxstate.text import printable

__all__ = [
    "blob_file",
    "find_manifest",
    "manifest_candidates",
    "manifest_digests",
    "manifest_files",
    "manifest_path",
    "read_one_model",
    "referenced_digests",
    "scan_ollama_store",
    "valid_name",
]

_BLOB_RE = re.compile(r"sha256[-:]([0-9a-f]{64})")
_PARTIAL_RE = re.compile(r"sha256[-:]([0-9a-f]{64})-partial(-\d+)?")


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
    used: set[str] = set()
    unparseable = 0
    for path, parts in manifest_files(root, warnings):
        where = printable(str(path))
        try:
            manifest = load_manifest(path)
            used |= manifest.digests  # referenced even when its name is unusable
            if valid_name(parts):
                models.append(_model(path, parts, manifest, blobs))
            else:
                warnings.append(f"Ollama manifest with an invalid name, left alone: {where}")
        except (OSError, ValueError) as exc:
            unparseable += 1
            warnings.append(f"unreadable Ollama manifest {where}: {_reason(exc)}")
    orphans: tuple[FileFact, ...] = ()
    if unparseable:
        # Ollama's own pruning (server/images.go) skips entirely when a manifest fails to
        # parse: its blobs would look unreferenced. We report no orphans for the same reason.
        warnings.append("orphan blobs not reported: a manifest could not be read")
    else:
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
    return printable(str(exc)[:200]) or type(exc).__name__


def _scan_blobs(folder: Path, warnings: list[str]) -> _Blobs:
    out = _Blobs()
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return out
    except OSError as exc:
        warnings.append(f"cannot list {printable(str(folder))}: {_reason(exc)}")
        return out
    for entry in entries:
        try:
            st = entry.stat()  # follows symlinks: Ollama opens linked blobs like files
        except OSError:
            warnings.append(f"dangling link in Ollama blobs: {printable(entry.path)}")
            continue
        if not entry.is_file():
            continue
        _classify(entry.name, Path(entry.path), st, out)
    return out


def _classify(name: str, path: Path, st: os.stat_result, out: _Blobs) -> None:
    # fullmatch: ``$`` would also accept a name ending in a newline.
    if m := _BLOB_RE.fullmatch(name):
        digest = m.group(1)
        out.sizes[digest] = st.st_size
        out.atimes[digest] = st.st_atime
        out.facts[digest] = FileFact(path, st.st_size, st.st_mtime, "orphan", digest)
    elif m := _PARTIAL_RE.fullmatch(name):
        out.partials.append(FileFact(path, st.st_size, st.st_mtime, "partial", m.group(1)))
    else:
        out.temps.append(FileFact(path, st.st_size, st.st_mtime, "temp"))


def manifest_path(root: Path, parts: tuple[str, str, str, str]) -> Path:
    """Like :func:`find_manifest`, but the exact path when nothing is found."""
    return find_manifest(root, parts) or root.joinpath("manifests", *parts)


def manifest_digests(path: Path) -> frozenset[str]:
    """The validated hex digests (config and layers) a manifest file references; raises
    ``OSError`` or ``ValueError`` when it cannot be read or used."""
    return load_manifest(path).digests


def referenced_digests(root: Path, skip: Path | None = None) -> tuple[set[str], bool]:
    """Digests referenced by every manifest but ``skip``, and whether any could not be read
    (then, like Ollama's pruning, nobody can tell which blobs are unreferenced)."""
    used: set[str] = set()
    unreadable = False
    for path, _parts in manifest_files(root):
        if path == skip:
            continue
        try:
            used |= manifest_digests(path)
        except (OSError, ValueError):
            unreadable = True
    return used, unreadable


def read_one_model(root: Path, parts: tuple[str, str, str, str]) -> OllamaModel | None:
    """One model (host, namespace, model, tag) without scanning the store: its manifest and
    a stat of each of its blobs. None when absent or unreadable (apply's re-checks)."""
    path = find_manifest(root, parts)
    if path is None:
        return None
    on_disk = (path.parts[-4], path.parts[-3], path.parts[-2], path.parts[-1])
    try:
        manifest = load_manifest(path)
    except (OSError, ValueError):
        return None
    blobs = _Blobs()
    for digest in manifest.digests:  # validated: safe to build a path from
        try:
            st = os.stat(blob_file(root, digest))
        except OSError:
            continue
        blobs.sizes[digest], blobs.atimes[digest] = st.st_size, st.st_atime
    try:
        return _model(path, on_disk, manifest, blobs)
    except OSError:
        return None


def _model(
    path: Path, parts: tuple[str, str, str, str], manifest: Manifest, blobs: _Blobs
) -> OllamaModel:
    def layer(e: Entry) -> Layer:
        return Layer(e.media_type, e.digest, e.size, blobs.sizes.get(e.digest))

    layers = tuple(layer(e) for e in manifest.layers)
    host, namespace, model, tag = parts
    return OllamaModel(
        host=host,
        namespace=namespace,
        model=model,
        tag=tag,
        manifest_path=path,
        # The model's "digest" in /api/tags is the sha256 of the manifest FILE as stored.
        manifest_digest=hashlib.sha256(manifest.raw).hexdigest(),
        config=layer(manifest.config) if manifest.config else None,
        layers=layers,
        mtime=path.stat().st_mtime,
        last_used=max((blobs.atimes.get(x.digest, 0.0) for x in layers), default=0.0),
    )
