"""Observed state: frozen facts about the stores, produced by ``mlxstate.observe``.

No I/O here. Observers fill these in; the planner and ``mlx status`` only read them.
Times are POSIX timestamps (float seconds); sizes are bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal, NamedTuple

from mlxstate.sources import OllamaSource

__all__ = [
    "AppLink",
    "AppState",
    "DiskSpace",
    "DuplicateGroup",
    "FileFact",
    "HfCache",
    "HfFile",
    "HfRepo",
    "HfRevision",
    "Layer",
    "OllamaDaemon",
    "OllamaModel",
    "OllamaStore",
    "RemoteFile",
    "RemoteRepo",
    "RunningModel",
]

Status = Literal["ok", "broken", "partial"]
OLLAMA_MEDIA_PREFIX = "application/vnd.ollama.image."
OLLAMA_CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"


@dataclass(frozen=True, slots=True)
class FileFact:
    """A file the stores do not account for: a partial download, an orphan or temp blob."""

    path: Path
    size: int
    mtime: float
    kind: Literal["partial", "orphan", "temp", "incomplete"]
    digest: str | None = None  # sha256 hex when the name says it


@dataclass(frozen=True, slots=True)
class Layer:
    """One layer (or the config) of an Ollama manifest and what is on disk for it."""

    media_type: str
    digest: str  # sha256 hex, without the "sha256:" prefix
    size: int  # as the manifest says
    on_disk: int | None  # size of blobs/sha256-<hex>, None if missing

    @property
    def kind(self) -> str:
        if self.media_type == OLLAMA_CONFIG_TYPE:
            return "config"
        return self.media_type.removeprefix(OLLAMA_MEDIA_PREFIX)

    @property
    def ok(self) -> bool:
        return self.on_disk == self.size


@dataclass(frozen=True, slots=True)
class OllamaModel:
    """One manifest under ``manifests/<host>/<namespace>/<model>/<tag>``."""

    host: str
    namespace: str
    model: str
    tag: str
    manifest_path: Path
    manifest_digest: str  # sha256 of the manifest file: Ollama's "digest" in /api/tags
    config: Layer | None
    layers: tuple[Layer, ...]
    mtime: float
    last_used: float = 0.0  # newest atime of its blobs (relatime: roughly daily)

    @property
    def name(self) -> str:
        return OllamaSource(self.host, self.namespace, self.model, self.tag).name

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.all_layers)

    @property
    def all_layers(self) -> tuple[Layer, ...]:
        return (self.config, *self.layers) if self.config else self.layers

    @property
    def problems(self) -> tuple[str, ...]:
        out = []
        for layer in self.all_layers:
            if layer.on_disk is None:
                out.append(f"{layer.kind} blob sha256-{layer.digest[:12]} is missing")
            elif layer.on_disk != layer.size:
                out.append(
                    f"{layer.kind} blob sha256-{layer.digest[:12]} has {layer.on_disk} bytes, "
                    f"manifest says {layer.size}"
                )
        return tuple(out)

    @property
    def status(self) -> Status:
        return "broken" if self.problems else "ok"

    def layer(self, kind: str) -> Layer | None:
        return next((x for x in self.layers if x.kind == kind), None)


@dataclass(frozen=True)
class OllamaStore:
    root: Path
    exists: bool
    models: tuple[OllamaModel, ...] = ()
    partials: tuple[FileFact, ...] = ()
    orphans: tuple[FileFact, ...] = ()
    temps: tuple[FileFact, ...] = ()
    # False when a manifest could not be parsed: then nobody can tell which blobs are
    # orphans, and (like Ollama's own pruning) none are reported.
    orphans_known: bool = True
    warnings: tuple[str, ...] = ()

    def find(self, name: str) -> OllamaModel | None:
        return next((m for m in self.models if m.name == name), None)


@dataclass(frozen=True, slots=True)
class RunningModel:
    name: str
    size: int
    size_vram: int
    expires_at: str | None
    context_length: int | None = None  # newer daemons say it; None when not


@dataclass(frozen=True)
class OllamaDaemon:
    host: str
    reachable: bool
    version: str | None = None
    running: tuple[RunningModel, ...] = ()
    error: str | None = None


class HfFile(NamedTuple):
    """One file of a snapshot. (A NamedTuple: scans create tens of thousands of these, and
    a tuple is built in C, several times faster than a frozen dataclass.)"""

    path: str  # relative, POSIX separators
    blob: str  # blob name (etag): sha256 for LFS files, git sha1 for small ones
    size: int  # bytes of the blob (0 if missing)
    present: bool  # False: dangling snapshot link
    blob_file: str  # absolute path of the blob (first hop; may link into the Xet store)
    mtime: float = 0.0
    atime: float = 0.0
    # Where the bytes really are when the blob itself is a link (the shared Xet store);
    # empty when blob_file is the file. Links into apps point here: no symlink chains.
    real_file: str = ""

    @property
    def blob_path(self) -> Path:
        return Path(self.blob_file)

    @property
    def is_lfs(self) -> bool:
        return len(self.blob) == 64 and all(c in "0123456789abcdef" for c in self.blob)


class RemoteFile(NamedTuple):
    """A file of a commit as the hub listed it (``trees/<commit>.json``)."""

    path: str
    size: int
    blob: str  # the etag the cache would name its blob: LFS sha256, else git blob id


@dataclass(frozen=True)
class RemoteRepo:
    """What the hub says about a repo at a revision (only with ``plan --refresh``)."""

    repo_id: str
    revision: str
    commit: str
    files: tuple[RemoteFile, ...] | None = None


@dataclass(frozen=True)
class HfRevision:
    commit: str
    refs: tuple[str, ...]
    files: tuple[HfFile, ...]
    snapshot_path: Path
    last_modified: float
    # The hub's file list for this commit: given (``listed``), or read on first use from
    # ``tree_path`` (trees/<commit>.json): most revisions of a cache are never asked for it,
    # and reading every listing was a sixth of a scan. None when not recorded.
    listed: tuple[RemoteFile, ...] | None = None
    tree_path: Path | None = None

    @cached_property
    def remote(self) -> tuple[RemoteFile, ...] | None:
        if self.tree_path is None:
            return self.listed
        from mlxstate.observe.hf_cache import read_tree

        return read_tree(self.tree_path)

    @property
    def size(self) -> int:
        return sum({f.blob: f.size for f in self.files if f.present}.values())

    @property
    def dangling(self) -> tuple[str, ...]:
        """Snapshot files whose blob is missing."""
        return tuple(sorted(f.path for f in self.files if not f.present))

    @cached_property
    def present_paths(self) -> frozenset[str]:
        """Paths of the snapshot files whose blob is there (built once: has_file is asked
        once per listed file, and a scan each time made planning quadratic in the files)."""
        return frozenset(f.path for f in self.files if f.present)

    def has_file(self, path: str) -> bool:
        return path in self.present_paths


@dataclass(frozen=True)
class HfRepo:
    # "model", "dataset", "space", "kernel", or any other type the installed
    # huggingface_hub knows (the cache folder's prefix without its "s").
    repo_type: str
    repo_id: str
    path: Path
    refs: tuple[tuple[str, str], ...]  # (ref name, commit), sorted
    revisions: tuple[HfRevision, ...]
    orphans: tuple[FileFact, ...] = ()
    incomplete: tuple[FileFact, ...] = ()
    last_accessed: float = 0.0
    last_modified: float = 0.0
    # False when a file under refs/ could not be read (not UTF-8, a dangling or looping
    # link): which revisions are detached is then unknown, so none is.
    refs_known: bool = True

    @property
    def size_on_disk(self) -> int:
        blobs = {f.blob: f.size for r in self.revisions for f in r.files if f.present}
        return sum(blobs.values())

    @property
    def nb_files(self) -> int:
        return len({f.blob for r in self.revisions for f in r.files if f.present})

    def ref(self, name: str) -> str | None:
        return dict(self.refs).get(name)

    def revision(self, commit: str) -> HfRevision | None:
        return next((r for r in self.revisions if r.commit == commit), None)

    @property
    def detached(self) -> tuple[HfRevision, ...]:
        if not self.refs_known:
            return ()
        pointed = {commit for _, commit in self.refs}
        return tuple(r for r in self.revisions if r.commit not in pointed)


@dataclass(frozen=True)
class HfCache:
    root: Path
    exists: bool
    repos: tuple[HfRepo, ...] = ()
    warnings: tuple[str, ...] = ()
    shared_store: bool = False
    # ``blobs/*.incomplete`` of repo folders that could not be read as repos (no snapshots
    # folder, a ref to a missing commit): still partial downloads, still garbage.
    incomplete: tuple[FileFact, ...] = ()
    # The filesystem folds case (macOS by default): models--Org--M and models--org--m are
    # one folder there, so repo ids match case-insensitively; elsewhere they match exactly.
    case_insensitive: bool = False

    @cached_property
    def shared_payloads(self) -> dict[str, frozenset[Path]]:
        """Shared Xet store payload -> the repo folders whose snapshots use it. Deleting a
        repo's blob link frees the payload only when no other repo uses it (as the
        library's own estimate, from its manifest)."""
        users: dict[str, set[Path]] = {}
        for repo in self.repos:
            for rev in repo.revisions:
                for f in rev.files:
                    if f.real_file:
                        users.setdefault(f.real_file, set()).add(repo.path)
        return {k: frozenset(v) for k, v in users.items()}

    def frees_payload(self, repo: HfRepo, f: HfFile) -> bool:
        """Whether deleting ``f``'s blob from ``repo`` frees its bytes (no other repo
        uses the shared payload it links to)."""
        return not f.real_file or self.shared_payloads.get(f.real_file, frozenset()) <= {repo.path}

    def find(self, repo_id: str, repo_type: str = "model") -> HfRepo | None:
        return next(
            (r for r in self.repos if r.repo_id == repo_id and r.repo_type == repo_type), None
        )


@dataclass(frozen=True, slots=True)
class AppLink:
    """One entry in an app folder."""

    path: Path
    kind: Literal["link", "dangling", "file", "dir"]
    target: Path | None = None  # where a symlink points (absolute)
    size: int = 0


@dataclass(frozen=True)
class AppState:
    name: str
    path: Path
    layout: str
    exists: bool
    entries: tuple[AppLink, ...] = ()
    warnings: tuple[str, ...] = ()
    declared: bool = True  # False: found (LM Studio's folder), not named in mlx.yaml


@dataclass(frozen=True)
class DuplicateGroup:
    """Files with the same content; all but one could be replaced by links."""

    digest: str
    size: int
    paths: tuple[Path, ...]
    how: Literal["name", "hash"] = "name"
    # Per path, as observed: (st_dev, st_ino, st_size, st_mtime_ns, is_symlink). Dedup
    # re-checks these right before it replaces anything.
    facts: tuple[tuple[int, int, int, int, bool], ...] = ()

    @property
    def reclaimable(self) -> int:
        """Bytes dedup can give back: every copy but one, not counting copies reached through
        a link (the HF Xet layout), which dedup never replaces."""
        copies = len(self.paths)
        if len(self.facts) == copies:
            copies = sum(not fact[4] for fact in self.facts)
        return self.size * max(copies - 1, 0)


@dataclass(frozen=True)
class Observed:
    """Everything observed in one pass."""

    ollama: OllamaStore
    hf: HfCache
    daemon: OllamaDaemon | None
    apps: tuple[AppState, ...] = ()
    duplicates: tuple[DuplicateGroup, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)
    # file:// sources of the spec that exist on disk (the planner never touches the disk)
    existing_files: frozenset[Path] = frozenset()
    # Free space where downloads land: path -> (st_dev, free bytes); None: unknown
    disk: tuple[DiskSpace, ...] = ()
    now: float = 0.0  # when it was observed (POSIX time): "older than 1 hour" is relative to it

    def disk_for(self, path: Path) -> DiskSpace | None:
        return next((d for d in self.disk if d.path == path), None)


@dataclass(frozen=True, slots=True)
class DiskSpace:
    path: Path  # a store root (it may not exist yet: measured at its nearest existing parent)
    device: int
    free: int
