"""Scan an Ollama models dir (FORMATS.md "Ollama blob store") without reading blobs.

Manifests live at ``manifests/<host>/<namespace>/<model>/<tag>`` (exactly four levels),
blobs at ``blobs/sha256-<hex>``. Partial downloads are ``<blob>-partial`` plus
``-partial-N`` sidecars; any other name in ``blobs/`` is a temp file.

Everything here is hostile input: a manifest's digests become file names, so each one is
checked (``sha256:`` + 64 lowercase hex) before any path is built from it, and a manifest
that fails a check is a warning, never a model.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlxstate.state import FileFact, Layer, OllamaModel, OllamaStore
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
_DIGEST_RE = re.compile(r"sha256:([0-9a-f]{64})")
_HEX_RE = re.compile(r"[0-9a-f]{64}")
# Ollama's name parts (types/model/name.go), ASCII only: host may carry a port.
_HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}")
_PART_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # real ones are kilobytes; never slurp a huge file


class BadManifest(ValueError):
    """A manifest file that cannot be used (not JSON, wrong shape, a bad digest)."""


@dataclass
class _Blobs:
    sizes: dict[str, int] = field(default_factory=dict)
    atimes: dict[str, float] = field(default_factory=dict)
    facts: dict[str, FileFact] = field(default_factory=dict)
    partials: list[FileFact] = field(default_factory=list)
    temps: list[FileFact] = field(default_factory=list)


@dataclass(frozen=True)
class _Entry:
    media_type: str
    digest: str  # validated 64 lowercase hex
    size: int


@dataclass(frozen=True)
class _Manifest:
    raw: bytes
    config: _Entry | None
    layers: tuple[_Entry, ...]

    @property
    def digests(self) -> frozenset[str]:
        return frozenset(e.digest for e in (*self.layers, *([self.config] if self.config else [])))


def valid_name(parts: tuple[str, ...]) -> bool:
    """True for (host, namespace, model, tag) parts Ollama accepts: ASCII, no ``/``, no ``..``."""
    if len(parts) != 4:
        return False
    checks = zip((_HOST_RE, _PART_RE, _PART_RE, _PART_RE), parts, strict=True)
    return all(rx.fullmatch(part) is not None and ".." not in part for rx, part in checks)


def blob_file(root: Path, digest: str) -> Path:
    """``<root>/blobs/sha256-<hex>`` for a digest given as hex or ``sha256:<hex>``; any other
    text raises ``ValueError``: a path is only ever built from a validated digest."""
    m = _DIGEST_RE.fullmatch(digest)
    hexdigest = m.group(1) if m else digest
    if _HEX_RE.fullmatch(hexdigest) is None:
        raise ValueError(f"bad blob digest {printable(digest[:80])!r}")
    return root / "blobs" / f"sha256-{hexdigest}"


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
            manifest = _load(path)
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


def manifest_files(
    root: Path, warnings: list[str] | None = None
) -> list[tuple[Path, tuple[str, str, str, str]]]:
    """(path, (host, namespace, model, tag)) of every file exactly four levels below
    ``<root>/manifests`` (what Ollama globs); dot files are skipped (``.DS_Store``)."""
    found: list[tuple[Path, tuple[str, str, str, str]]] = []

    def walk(path: Path, parts: tuple[str, ...]) -> None:
        try:
            entries = list(os.scandir(path))
        except OSError as exc:
            if parts and warnings is not None:
                warnings.append(f"cannot list {printable(str(path))}: {_reason(exc)}")
            return
        for entry in entries:
            here = (*parts, entry.name)
            if len(here) < 4 and _is(entry, dir=True):
                walk(Path(entry.path), here)
            elif len(here) == 4 and _is(entry, dir=False) and not entry.name.startswith("."):
                found.append((Path(entry.path), (here[0], here[1], here[2], here[3])))

    walk(root / "manifests", ())
    return found


def _is(entry: os.DirEntry[str], *, dir: bool) -> bool:
    try:
        return entry.is_dir() if dir else entry.is_file()
    except OSError:
        return False


def manifest_candidates(root: Path, parts: tuple[str, str, str, str]) -> list[Path]:
    """Every manifest file whose four name parts equal ``parts`` ignoring ASCII case (Ollama
    matches names case-insensitively), as spelled on disk; none for an invalid name."""
    if not valid_name(parts):
        return []
    level = [root / "manifests"]
    for depth, part in enumerate(parts):
        wanted, last = part.lower(), depth == 3
        nxt: list[Path] = []
        for folder in level:
            nxt += [Path(e.path) for e in _entries(folder) if _named(e, wanted, last)]
        level = nxt
    return sorted(level)


def _entries(folder: Path) -> Iterator[os.DirEntry[str]]:
    try:
        yield from os.scandir(folder)
    except OSError:
        return


def _named(entry: os.DirEntry[str], wanted: str, last: bool) -> bool:
    # isascii first: str.lower() maps some non-ASCII letters (KELVIN SIGN) onto ASCII ones.
    name = entry.name
    return name.isascii() and name.lower() == wanted and _is(entry, dir=not last)


def find_manifest(root: Path, parts: tuple[str, str, str, str]) -> Path | None:
    """The manifest of (host, namespace, model, tag): the exact spelling if present, else the
    first case variant on disk; None when there is none or the name is invalid."""
    found = manifest_candidates(root, parts)
    exact = root.joinpath("manifests", *parts)
    return exact if exact in found else (found[0] if found else None)


def manifest_path(root: Path, parts: tuple[str, str, str, str]) -> Path:
    """Like :func:`find_manifest`, but the exact path when nothing is found."""
    return find_manifest(root, parts) or root.joinpath("manifests", *parts)


def manifest_digests(path: Path) -> frozenset[str]:
    """The validated hex digests (config and layers) a manifest file references; raises
    ``OSError`` or ``ValueError`` when it cannot be read or used."""
    return _load(path).digests


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
        manifest = _load(path)
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


def _load(path: Path) -> _Manifest:
    """Read and check one manifest; ``BadManifest`` (a ValueError) or ``OSError``."""
    with path.open("rb") as f:
        raw = f.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BadManifest(f"larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        doc = json.loads(raw)
    except RecursionError:  # 100k nested brackets: the decoder recurses per level
        raise BadManifest("JSON nested too deeply") from None
    except UnicodeDecodeError:
        raise BadManifest("not UTF-8 text") from None
    except ValueError as exc:
        raise BadManifest(f"not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list):
        raise BadManifest("not an Ollama manifest (no layers)")
    config = doc.get("config")
    return _Manifest(
        raw,
        _entry(config) if isinstance(config, dict) else None,
        tuple(_entry(x) for x in doc["layers"]),
    )


def _entry(doc: Any) -> _Entry:
    if not isinstance(doc, dict):
        raise BadManifest("a layer is not an object")
    digest = doc.get("digest")
    m = _DIGEST_RE.fullmatch(digest) if isinstance(digest, str) else None
    if m is None:
        raise BadManifest(f"bad layer digest {printable(repr(digest)[:80])}")
    size = doc.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadManifest(f"bad layer size {printable(repr(size)[:40])}")
    return _Entry(str(doc.get("mediaType", "")), m.group(1), size)


def _model(
    path: Path, parts: tuple[str, str, str, str], manifest: _Manifest, blobs: _Blobs
) -> OllamaModel:
    def layer(e: _Entry) -> Layer:
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
