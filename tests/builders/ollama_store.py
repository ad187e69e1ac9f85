"""Write the exact Ollama blob-store format (manifest/paths.go, manifest.go) into a folder.

Layout written under ``models_dir``::

    manifests/<host>/<namespace>/<model>/<tag>   compact JSON, stored byte-for-byte
    blobs/sha256-<64 hex>                        sha256 of the file's bytes

The manifest's digest (what ``/api/tags`` reports) is the sha256 of the manifest FILE, so
manifests are serialized once, here, and never re-serialized by readers.

Helpers at the bottom make the broken states the observers and cleanup rules must handle:
missing or truncated blobs, partial downloads, orphans, junk names, unparseable manifests.
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.builders.common import make_old, set_mtime, sha256_hex

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_MEDIA_PREFIX = "application/vnd.ollama.image."

Layers = Sequence[tuple[str, bytes]]
_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ModelName:
    """A parsed Ollama model name: ``[host/][namespace/]model[:tag]``."""

    host: str
    namespace: str
    model: str
    tag: str

    @classmethod
    def parse(cls, name: str) -> ModelName:
        """Parse like Ollama's ``model.ParseName`` (defaults filled in, ``@digest`` dropped)."""
        name = name.split("@", 1)[0]
        head, _, last = name.rpartition("/")
        model, sep, tag = last.partition(":")
        prefix = head.split("/") if head else []
        if not model or len(prefix) > 2 or (sep and not tag) or "" in name.split("/"):
            raise ValueError(f"invalid Ollama model name: {name!r}")
        host = prefix[0] if len(prefix) == 2 else DEFAULT_HOST
        namespace = prefix[-1] if prefix else DEFAULT_NAMESPACE
        return cls(host, namespace, model, tag or DEFAULT_TAG)

    @property
    def manifest_relpath(self) -> Path:
        return Path("manifests", self.host, self.namespace, self.model, self.tag)

    @property
    def full(self) -> str:
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def display(self) -> str:
        """Ollama's ``DisplayShortest``: the name ``/api/tags`` reports (tag always shown)."""
        if self.host.lower() != DEFAULT_HOST:
            return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"
        if self.namespace.lower() != DEFAULT_NAMESPACE:
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.model}:{self.tag}"


def parse_name(name: str) -> ModelName:
    return ModelName.parse(name)


@dataclass(frozen=True)
class Blob:
    """One manifest entry (a layer or the config)."""

    media_type: str
    digest: str  # "sha256:<hex>", as in the manifest
    size: int

    @property
    def hex(self) -> str:
        return self.digest.removeprefix("sha256:")

    @property
    def filename(self) -> str:
        return "sha256-" + self.hex


@dataclass(frozen=True)
class ManifestInfo:
    """What a manifest on disk says, plus where it is and its file digest."""

    models_dir: Path
    name: ModelName
    path: Path
    raw: bytes
    config: Blob
    layers: tuple[Blob, ...]

    @property
    def digest(self) -> str:
        """sha256 hex of the manifest file: the model's ``digest`` in ``/api/tags``."""
        return sha256_hex(self.raw)

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """Layers then config: the order in which Ollama pulls them."""
        return (*self.layers, self.config)

    @property
    def size(self) -> int:
        """Sum of config and layer sizes: the model's ``size`` in ``/api/tags``."""
        return sum(blob.size for blob in self.blobs)

    def blob_path(self, blob: Blob) -> Path:
        return blob_path(self.models_dir, blob.digest)

    def layer(self, kind: str) -> Blob | None:
        """The first layer of media type ``application/vnd.ollama.image.<kind>``."""
        wanted = media_type(kind)
        return next((layer for layer in self.layers if layer.media_type == wanted), None)


def media_type(kind: str) -> str:
    """``"model"`` -> ``application/vnd.ollama.image.model``; full media types pass through."""
    return kind if "/" in kind else LAYER_MEDIA_PREFIX + kind


def blob_path(models_dir: Path, digest: str) -> Path:
    """Path of a blob given ``sha256:<hex>``, ``sha256-<hex>`` or a bare hex digest; any
    other text is a ``ValueError`` (like Ollama's GetBlobsPath: no path from a bad digest)."""
    hex_digest = digest.removeprefix("sha256:").removeprefix("sha256-")
    if not _HEX.fullmatch(hex_digest):
        raise ValueError(f"invalid blob digest {digest[:80]!r}")
    return Path(models_dir, "blobs", "sha256-" + hex_digest)


def manifest_path(models_dir: Path, name: str | ModelName) -> Path:
    parsed = name if isinstance(name, ModelName) else ModelName.parse(name)
    return Path(models_dir, parsed.manifest_relpath)


def fake_gguf(seed: str, size: int = 4096) -> bytes:
    """Deterministic bytes that start with a valid (empty) GGUF v3 header."""
    header = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
    filler = (sha256_hex(seed.encode()) * (size // 64 + 1)).encode()
    return (header + filler)[: max(size, len(header))]


def default_layers(seed: str, model_size: int = 4096) -> list[tuple[str, bytes]]:
    """A typical chat model: GGUF weights, template, params, license; distinct per ``seed``."""
    return [
        ("model", fake_gguf(seed, model_size)),
        ("template", b"{{ if .System }}<|system|>{{ .System }}{{ end }}{{ .Prompt }}"),
        ("params", b'{"stop":["<|im_end|>"],"temperature":0.7}'),
        ("license", f"Test license for {seed}\n".encode()),
    ]


def default_config(layers: Layers = (), **overrides: object) -> dict[str, object]:
    """The config blob Ollama writes (``model.ConfigV2``), with test-friendly defaults."""
    config: dict[str, object] = {
        "model_format": "gguf",
        "model_family": "llama",
        "model_families": ["llama"],
        "model_type": "7B",
        "file_type": "Q4_K_M",
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + sha256_hex(d) for _, d in layers]},
    }
    config.update(overrides)
    return config


def compact_json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def build_manifest(config_blob: bytes, layers: Layers) -> bytes:
    """Manifest bytes exactly as the registry serves them (Go ``json.Marshal`` field order)."""

    def entry(kind: str, data: bytes) -> dict[str, object]:
        return {
            "mediaType": media_type(kind),
            "digest": "sha256:" + sha256_hex(data),
            "size": len(data),
        }

    return compact_json(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": entry(CONFIG_MEDIA_TYPE, config_blob),
            "layers": [entry(kind, data) for kind, data in layers],
        }
    )


def write_blob(models_dir: Path, data: bytes) -> Path:
    """Write ``blobs/sha256-<sha256(data)>`` (unchanged if already there); return its path."""
    path = blob_path(models_dir, sha256_hex(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not (path.is_file() and path.stat().st_size == len(data)):
        path.write_bytes(data)
    return path


def write_manifest(models_dir: Path, name: str | ModelName, raw: bytes) -> ManifestInfo:
    """Store manifest bytes verbatim under ``manifests/``; blobs are not touched."""
    path = manifest_path(models_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw)
    return parse_manifest(models_dir, path)


def add_model(
    models_dir: Path,
    name: str = "qwen2.5:7b",
    layers: Layers | None = None,
    config: Mapping[str, object] | None = None,
    *,
    mtime: float | None = None,
) -> ManifestInfo:
    """Install a model: write its blobs (layers and config) and its manifest.

    ``layers`` is ``[(kind_or_media_type, bytes)]``, e.g. ``[("model", gguf), ("params", b"{}")]``;
    by default a small GGUF plus template, params and license, distinct per ``name``.
    ``mtime`` backdates the manifest and the blobs written.
    """
    parsed = ModelName.parse(name)
    layers = default_layers(parsed.full) if layers is None else layers
    config_blob = compact_json(dict(config) if config is not None else default_config(layers))
    written = [write_blob(models_dir, data) for data in (*(d for _, d in layers), config_blob)]
    info = write_manifest(models_dir, parsed, build_manifest(config_blob, layers))
    if mtime is not None:
        for path in (*written, info.path):
            set_mtime(path, mtime)
    return info


def parse_manifest(models_dir: Path, path: Path) -> ManifestInfo:
    """Read a manifest file; raises ``ValueError`` (or ``OSError``) if it cannot be used."""
    rel = path.relative_to(Path(models_dir, "manifests")).parts
    if len(rel) != 4:
        raise ValueError(f"manifest not four levels deep: {path}")
    raw = path.read_bytes()
    try:
        data = json.loads(raw)  # json.JSONDecodeError is a ValueError
    except RecursionError:
        raise ValueError(f"manifest nested too deeply: {path}") from None

    def blob(entry: object) -> Blob:
        if not isinstance(entry, dict):
            raise ValueError(f"bad manifest entry in {path}")
        digest = str(entry["digest"])
        if not _HEX.fullmatch(digest.removeprefix("sha256:")) or digest[:7] != "sha256:":
            raise ValueError(f"bad digest in {path}")
        return Blob(str(entry["mediaType"]), digest, int(entry["size"]))

    if not isinstance(data, dict):
        raise ValueError(f"manifest is not an object: {path}")
    name = ModelName(rel[0], rel[1], rel[2], rel[3])
    layers = tuple(blob(e) for e in data.get("layers") or [])
    return ManifestInfo(models_dir, name, path, raw, blob(data["config"]), layers)


def manifest_files(models_dir: Path) -> list[Path]:
    """Every file exactly four levels below ``manifests/`` (what Ollama globs), sorted."""
    root = Path(models_dir, "manifests")
    return sorted(p for p in root.glob("*/*/*/*") if p.is_file())


def read_manifests(models_dir: Path) -> tuple[list[ManifestInfo], list[Path]]:
    """Parse every manifest; returns ``(parsed, unparseable paths)``."""
    parsed: list[ManifestInfo] = []
    broken: list[Path] = []
    for path in manifest_files(models_dir):
        try:
            parsed.append(parse_manifest(models_dir, path))
        except (ValueError, KeyError, TypeError, OSError):
            broken.append(path)
    return parsed, broken


def referenced_digests(manifests: Iterable[ManifestInfo]) -> set[str]:
    return {blob.digest for info in manifests for blob in info.blobs}


# --- broken and unusual states -------------------------------------------------------------


def remove_blob(models_dir: Path, digest: str) -> Path:
    path = blob_path(models_dir, digest)
    path.unlink()
    return path


def truncate_blob(models_dir: Path, digest: str, size: int | None = None) -> Path:
    """Cut a blob to ``size`` bytes (default: half)."""
    path = blob_path(models_dir, digest)
    os.truncate(path, path.stat().st_size // 2 if size is None else size)
    return path


def corrupt_blob(models_dir: Path, digest: str) -> Path:
    """Flip the first byte: same size, wrong sha256 (Ollama never re-verifies)."""
    path = blob_path(models_dir, digest)
    with path.open("r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]) if first else b"\0")
    return path


@dataclass(frozen=True)
class PartialDownload:
    blob_path: Path  # where the blob will land
    partial_path: Path  # <blob>-partial, pre-sized to the full size
    part_paths: tuple[Path, ...]  # <blob>-partial-N JSON sidecars
    digest: str


def write_partial(
    models_dir: Path,
    data: bytes,
    *,
    completed: int | None = None,
    parts: int = 1,
    age: float | None = None,
) -> PartialDownload:
    """An interrupted Ollama download of ``data``, like ``server/download.go`` leaves it.

    ``<blob>-partial`` is sized to ``len(data)`` (sparse past what was written) and each
    ``<blob>-partial-N`` holds ``{"N","Offset","Size","Completed"}``. ``completed`` bytes
    (default: half) are spread over the parts in order. ``age`` backdates all of them.
    """
    target = blob_path(models_dir, sha256_hex(data))
    target.parent.mkdir(parents=True, exist_ok=True)
    total = len(data)
    left = total // 2 if completed is None else completed
    partial = Path(f"{target}-partial")
    with partial.open("wb") as f:
        f.truncate(total)
    part_size = -(-total // parts) if total else 0
    part_paths: list[Path] = []
    with partial.open("r+b") as f:
        for n in range(parts):
            offset = min(n * part_size, total)
            size = min(part_size, total - offset)
            done = min(size, left)
            left -= done
            f.seek(offset)
            f.write(data[offset : offset + done])
            sidecar = Path(f"{partial}-{n}")
            # json.Encoder in Go ends each value with a newline.
            sidecar.write_bytes(
                compact_json({"N": n, "Offset": offset, "Size": size, "Completed": done}) + b"\n"
            )
            part_paths.append(sidecar)
    if age is not None:
        make_old(partial, *part_paths, seconds=age)
    return PartialDownload(target, partial, tuple(part_paths), "sha256:" + sha256_hex(data))


def add_orphan_blob(models_dir: Path, data: bytes, *, age: float | None = None) -> Path:
    """A valid digest blob that no manifest references."""
    path = write_blob(models_dir, data)
    if age is not None:
        make_old(path, seconds=age)
    return path


def add_junk_file(
    models_dir: Path, name: str, data: bytes = b"junk", *, age: float | None = None
) -> Path:
    """A non-digest file in ``blobs/``: a ``sha256-123abc`` temp, ``COPY123``, ``split-gguf-x``."""
    path = Path(models_dir, "blobs", name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age is not None:
        make_old(path, seconds=age)
    return path


def add_legacy_blob(models_dir: Path, data: bytes) -> Path:
    """A blob under the old ``sha256:<hex>`` name that Ollama renames at start."""
    return add_junk_file(models_dir, "sha256:" + sha256_hex(data), data)


def write_unparseable_manifest(
    models_dir: Path, name: str = "broken:latest", content: bytes = b'{"schemaVersion":2,'
) -> Path:
    """A manifest Ollama cannot parse (it then skips its whole blob pruning)."""
    path = manifest_path(models_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def link_blob(models_dir: Path, digest: str, target: Path, *, hard: bool = False) -> Path:
    """Replace a blob by a symlink (absolute) or hardlink to ``target``; Ollama follows both."""
    path = blob_path(models_dir, digest)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".linktmp")
    if hard:
        os.link(target, tmp)
    else:
        os.symlink(os.path.abspath(target), tmp)
    os.replace(tmp, path)
    return path


# --- hostile states ------------------------------------------------------------------------


def write_manifest_at(models_dir: Path, parts: Sequence[str | bytes], raw: bytes) -> bytes:
    """Manifest bytes at ``manifests/<parts...>`` exactly as given: parts may be bytes (names
    that are not UTF-8), contain ``..`` or any other character. Returns the path as bytes."""
    path = os.path.join(os.fsencode(Path(models_dir, "manifests")), *map(os.fsencode, parts))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(raw)
    return path


def add_raw_layer(info: ManifestInfo, digest: object, size: object = 8) -> bytes:
    """Append a layer entry with ``digest`` (any JSON value, unchecked) to an installed
    manifest and rewrite it; returns the new manifest bytes."""
    doc = json.loads(info.raw)
    doc["layers"].append({"mediaType": media_type("license"), "digest": digest, "size": size})
    raw = compact_json(doc)
    info.path.write_bytes(raw)
    return raw


def nested_json(depth: int = 100_000) -> bytes:
    """A JSON text nested ``depth`` deep: ``json.loads`` raises RecursionError on it."""
    return b'{"layers":' + b"[" * depth + b"]" * depth + b"}"
