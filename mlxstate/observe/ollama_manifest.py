"""One Ollama manifest and where a name lives on disk, as hostile input.

A manifest's digests become file names and a model name becomes folder names, so every
digest is checked (``sha256:`` + 64 lowercase hex, in full) and every name part against
Ollama's own rules (ASCII, no ``/``, no ``..``) before any path is built from it. Names
match ignoring ASCII case, as Ollama matches them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxstate.text import printable

__all__ = [
    "BadManifest",
    "Entry",
    "Manifest",
    "blob_file",
    "find_manifest",
    "load_manifest",
    "manifest_candidates",
    "manifest_files",
    "valid_name",
]

_DIGEST_RE = re.compile(r"sha256:([0-9a-f]{64})")
_HEX_RE = re.compile(r"[0-9a-f]{64}")
# Ollama's name parts (types/model/name.go), ASCII only: host may carry a port.
_HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}")
_PART_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
MAX_MANIFEST_BYTES = 16 * 1024 * 1024  # real ones are kilobytes; never slurp a huge file


class BadManifest(ValueError):
    """A manifest file that cannot be used (not JSON, wrong shape, a bad digest)."""


@dataclass(frozen=True)
class Entry:
    media_type: str
    digest: str  # validated 64 lowercase hex
    size: int


@dataclass(frozen=True)
class Manifest:
    raw: bytes
    config: Entry | None
    layers: tuple[Entry, ...]

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
                warnings.append(f"cannot list {printable(str(path))}: {exc.strerror or exc}")
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


def load_manifest(path: Path) -> Manifest:
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
    return Manifest(
        raw,
        _entry(config) if isinstance(config, dict) else None,
        tuple(_entry(x) for x in doc["layers"]),
    )


def _entry(doc: Any) -> Entry:
    if not isinstance(doc, dict):
        raise BadManifest("a layer is not an object")
    digest = doc.get("digest")
    m = _DIGEST_RE.fullmatch(digest) if isinstance(digest, str) else None
    if m is None:
        raise BadManifest(f"bad layer digest {printable(repr(digest)[:80])}")
    size = doc.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadManifest(f"bad layer size {printable(repr(size)[:40])}")
    return Entry(str(doc.get("mediaType", "")), m.group(1), size)
