"""Write the exact Hugging Face hub cache layout (huggingface_hub 2.4.0) into a cache folder.

Per repo, ``<cache>/<type>s--ORG--NAME/``::

    refs/<branch|tag>                 the commit hash, no newline (refs/pr/1 nests folders)
    blobs/<etag>                      sha256 for LFS files, git blob sha1 for small files
    snapshots/<commit>/<path>         RELATIVE symlink ../../blobs/<etag> (one more ../ per folder)
    .no_exist/<commit>/<path>         empty marker: the file is known to be absent upstream
    trees/<commit>.json               the repo's file listing at that commit (_tree_cache.py)
    blobs/<etag>.<8hex>.incomplete    an interrupted download

Cache-wide shared Xet store (utils/_shared_blobs.py): ``<cache>/blobs/.huggingface-shared-blobs``
holds ``"1\\n"``; payloads live at ``<cache>/blobs/<xet[:2]>/<xet>`` next to a ``<xet>.refs``
manifest listing the repo blobs that point at them (``models--o--n/blobs/<etag>`` per line),
and the repo's ``blobs/<sha256>`` is a relative symlink ``../../blobs/<xet[:2]>/<xet>``.

The file facts (LFS or not, etag, git ids) come from :func:`describe_file`, which the fake hub
(``tests.fakes.hf_hub``) uses too, so a cache built here and one downloaded from the fake by
the real library are identical.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tests.builders.common import git_blob_sha1, make_old, set_mtime, sha256_hex

REPO_TYPES = ("model", "dataset", "space", "kernel")
SHARED_BLOBS_MARKER = ".huggingface-shared-blobs"
SHARED_BLOBS_LAYOUT_VERSION = "1\n"
TREE_FORMAT_VERSION = 1

# Extensions the Hub's default .gitattributes sends to LFS (abridged).
LFS_SUFFIXES = frozenset(
    {
        ".7z",
        ".arrow",
        ".bin",
        ".bz2",
        ".ckpt",
        ".ftz",
        ".gguf",
        ".gz",
        ".h5",
        ".joblib",
        ".mlmodel",
        ".model",
        ".msgpack",
        ".npy",
        ".npz",
        ".onnx",
        ".ot",
        ".parquet",
        ".pb",
        ".pickle",
        ".pkl",
        ".pt",
        ".pth",
        ".rar",
        ".safetensors",
        ".tar",
        ".tflite",
        ".tgz",
        ".wasm",
        ".xz",
        ".zip",
        ".zst",
    }
)
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024


def is_lfs_default(path: str, data: bytes) -> bool:
    """Whether the Hub would store this file in LFS: by extension, binary content or size."""
    suffix = PurePosixPath(path).suffix.lower()
    return suffix in LFS_SUFFIXES or b"\0" in data[:8000] or len(data) >= LFS_SIZE_THRESHOLD


def lfs_pointer(data: bytes) -> bytes:
    """The git-lfs pointer file committed in place of an LFS file."""
    return (
        b"version https://git-lfs.github.com/spec/v1\n"
        + f"oid sha256:{sha256_hex(data)}\nsize {len(data)}\n".encode()
    )


def xet_hash_for(data: bytes) -> str:
    """A stand-in Xet hash (64 hex, distinct from the sha256); real ones are merkle hashes."""
    return sha256_hex(b"xet\0" + data)


@dataclass(frozen=True)
class FileFacts:
    """Everything the Hub and the cache say about one repo file."""

    path: str  # posix path in the repo
    data: bytes
    lfs: bool
    xet_hash: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return sha256_hex(self.data)

    @property
    def pointer(self) -> bytes | None:
        return lfs_pointer(self.data) if self.lfs else None

    @property
    def blob_id(self) -> str:
        """The git oid in the tree: of the LFS pointer for LFS files, else of the content."""
        pointer = self.pointer
        return git_blob_sha1(pointer if pointer is not None else self.data)

    @property
    def etag(self) -> str:
        """The cache blob name: sha256 for LFS files, git blob sha1 for small files."""
        return self.sha256 if self.lfs else git_blob_sha1(self.data)

    def tree_entry(self) -> dict[str, object]:
        """This file in ``GET /api/models/{repo}/tree/{rev}`` (``expand=false``)."""
        entry: dict[str, object] = {"type": "file", "oid": self.blob_id, "size": self.size}
        entry["path"] = self.path
        pointer = self.pointer
        if pointer is not None:
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(pointer)}
        if self.xet_hash is not None:
            entry["xetHash"] = self.xet_hash
        return entry

    def tree_cache_entry(self) -> dict[str, object]:
        """This file in ``trees/<commit>.json`` (``TreeCacheEntry.to_json``)."""
        entry: dict[str, object] = {"size": self.size, "blob_id": self.blob_id}
        if self.lfs:
            entry["lfs_sha256"] = self.sha256
            entry["lfs_size"] = self.size
        if self.xet_hash is not None:
            entry["xet_hash"] = self.xet_hash
        return entry


def describe_file(
    path: str, data: bytes, *, lfs: bool | None = None, xet: bool = False
) -> FileFacts:
    """Facts for one file; ``lfs=None`` decides like the Hub (:func:`is_lfs_default`)."""
    is_lfs = is_lfs_default(path, data) if lfs is None else lfs
    if xet and not is_lfs:
        raise ValueError(f"only LFS files are stored in Xet: {path}")
    return FileFacts(path, data, is_lfs, xet_hash_for(data) if xet else None)


def describe_files(
    files: Mapping[str, bytes],
    *,
    lfs: Collection[str] | None = None,
    xet: Collection[str] = (),
) -> dict[str, FileFacts]:
    """Facts for many files; ``lfs`` lists the LFS paths exactly (None: decide per file)."""
    return {
        path: describe_file(path, data, lfs=None if lfs is None else path in lfs, xet=path in xet)
        for path, data in files.items()
    }


def fake_commit(seed: str) -> str:
    return git_blob_sha1(seed.encode())


def repo_folder_name(repo_id: str, repo_type: str = "model") -> str:
    if repo_type not in REPO_TYPES:
        raise ValueError(f"unknown repo type {repo_type!r}")
    return "--".join([f"{repo_type}s", *repo_id.split("/")])


def repo_dir(cache_dir: Path, repo_id: str, repo_type: str = "model") -> Path:
    return Path(cache_dir, repo_folder_name(repo_id, repo_type))


@dataclass(frozen=True)
class CachedFile:
    facts: FileFacts
    snapshot_path: Path  # snapshots/<commit>/<path>: a symlink, or the file (no-symlink mode)
    blob_path: Path  # the repo-local blob (== snapshot_path in no-symlink mode)
    store_path: Path | None = None  # the shared Xet store payload, if any

    @property
    def size(self) -> int:
        return self.facts.size


@dataclass(frozen=True)
class CachedRevision:
    cache_dir: Path
    repo_id: str
    repo_type: str
    commit: str
    refs: tuple[str, ...]
    files: Mapping[str, CachedFile]

    @property
    def repo_dir(self) -> Path:
        return repo_dir(self.cache_dir, self.repo_id, self.repo_type)

    @property
    def snapshot_dir(self) -> Path:
        return self.repo_dir / "snapshots" / self.commit

    @property
    def size_on_disk(self) -> int:
        """Sum over distinct blobs, as ``scan_cache_dir`` counts a revision."""
        return sum({f.blob_path: f.size for f in self.files.values()}.values())


def set_ref(
    cache_dir: Path,
    repo_id: str,
    ref: str,
    commit: str,
    *,
    repo_type: str = "model",
    newline: bool = False,
) -> Path:
    """``refs/<ref>``: the commit with no trailing newline, like the library (``newline``
    adds one, as a hand edit or a shell ``echo`` would)."""
    path = repo_dir(cache_dir, repo_id, repo_type) / "refs" / ref
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(commit + ("\n" if newline else ""))
    return path


def delete_ref(cache_dir: Path, repo_id: str, ref: str, *, repo_type: str = "model") -> None:
    (repo_dir(cache_dir, repo_id, repo_type) / "refs" / ref).unlink()


def add_revision(
    cache_dir: Path,
    repo_id: str,
    files: Mapping[str, bytes],
    *,
    repo_type: str = "model",
    commit: str | None = None,
    refs: Iterable[str] = ("main",),
    lfs: Collection[str] | None = None,
    xet: Collection[str] = (),
    symlinks: bool = True,
    tree: bool = True,
    remote_files: Mapping[str, bytes] | None = None,
    no_exist: Iterable[str] = (),
    mtime: float | None = None,
) -> CachedRevision:
    """Cache one revision of a repo as ``snapshot_download`` leaves it.

    ``files`` are the downloaded files (path -> bytes); ``remote_files`` the whole repo at that
    commit for ``trees/<commit>.json`` (default: ``files``). ``refs`` point at the commit (pass
    ``()`` for a detached revision; a ref that pointed elsewhere moves). ``xet`` paths go to the
    shared store. ``symlinks=False`` writes the no-symlink (Windows) layout: real files in
    ``snapshots/``, no ``blobs/``. ``mtime`` backdates blobs and links.
    """
    facts = describe_files(files, lfs=lfs, xet=xet)
    commit = commit or fake_commit(
        f"{repo_type}/{repo_id}:" + ",".join(sorted(f.etag for f in facts.values()))
    )
    base = repo_dir(cache_dir, repo_id, repo_type)
    snapshot = base / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    cached = {
        path: _write_file(cache_dir, base, snapshot, fact, symlinks=symlinks, mtime=mtime)
        for path, fact in facts.items()
    }
    ref_names = tuple(refs)
    for ref in ref_names:
        set_ref(cache_dir, repo_id, ref, commit, repo_type=repo_type)
    for missing in no_exist:
        add_no_exist(cache_dir, repo_id, commit, missing, repo_type=repo_type)
    if tree:
        listing = facts if remote_files is None else describe_files(remote_files, lfs=lfs, xet=xet)
        write_tree_cache(base, commit, listing.values())
    return CachedRevision(Path(cache_dir), repo_id, repo_type, commit, ref_names, cached)


def _write_file(
    cache_dir: Path,
    base: Path,
    snapshot: Path,
    fact: FileFacts,
    *,
    symlinks: bool,
    mtime: float | None,
) -> CachedFile:
    pointer = snapshot.joinpath(*fact.path.split("/"))
    pointer.parent.mkdir(parents=True, exist_ok=True)
    if not symlinks:
        pointer.write_bytes(fact.data)
        if mtime is not None:
            set_mtime(pointer, mtime)
        return CachedFile(fact, pointer, pointer)
    blob = base / "blobs" / fact.etag
    blob.parent.mkdir(parents=True, exist_ok=True)
    store: Path | None = None
    if fact.xet_hash is not None:
        store = _publish_shared(cache_dir, blob, fact)
    elif not blob.is_file():
        blob.write_bytes(fact.data)
    if pointer.is_symlink() or pointer.exists():
        pointer.unlink()
    # Relative, like file_download._create_symlink: ../../blobs/<etag> plus ../ per subfolder.
    os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    if mtime is not None:
        set_mtime(blob, mtime, follow_symlinks=store is None)
        set_mtime(pointer, mtime, follow_symlinks=False)
    return CachedFile(fact, pointer, blob, store)


def shared_store_path(cache_dir: Path, xet_hash: str) -> Path:
    return Path(cache_dir, "blobs", xet_hash[:2], xet_hash)


def _publish_shared(cache_dir: Path, blob: Path, fact: FileFacts) -> Path:
    assert fact.xet_hash is not None
    store_dir = Path(cache_dir, "blobs")
    store_dir.mkdir(parents=True, exist_ok=True)
    (store_dir / SHARED_BLOBS_MARKER).write_text(SHARED_BLOBS_LAYOUT_VERSION)
    store = shared_store_path(cache_dir, fact.xet_hash)
    store.parent.mkdir(parents=True, exist_ok=True)
    if not store.is_file():
        store.write_bytes(fact.data)
        store.chmod(0o444)  # the library makes payloads read-only
    reference = blob.relative_to(cache_dir).as_posix()
    manifest = store.with_name(store.name + ".refs")
    known = manifest.read_text().splitlines() if manifest.exists() else []
    if reference not in known:
        with manifest.open("a") as f:
            f.write(reference + "\n")
    if blob.is_symlink() or blob.exists():
        blob.unlink()
    os.symlink(os.path.relpath(store, blob.parent), blob)
    return store


def set_shared_marker(cache_dir: Path, content: str = SHARED_BLOBS_LAYOUT_VERSION) -> Path:
    """``blobs/.huggingface-shared-blobs`` with ``content`` (another layout version, say)."""
    marker = Path(cache_dir, "blobs", SHARED_BLOBS_MARKER)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(content)
    return marker


def write_tree_cache(base: Path, commit: str, files: Iterable[FileFacts]) -> Path:
    """``trees/<commit>.json`` exactly as ``_tree_cache.write_tree_cache`` writes it."""
    entries = {f.path: f.tree_cache_entry() for f in files}
    data = {
        "format_version": TREE_FORMAT_VERSION,
        "files": {path: entries[path] for path in sorted(entries)},
    }
    path = base / "trees" / f"{commit}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    return path


def add_no_exist(
    cache_dir: Path, repo_id: str, commit: str, path: str, *, repo_type: str = "model"
) -> Path:
    marker = repo_dir(cache_dir, repo_id, repo_type).joinpath(".no_exist", commit, *path.split("/"))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    return marker


def add_incomplete(
    cache_dir: Path,
    repo_id: str,
    data: bytes,
    *,
    etag: str | None = None,
    suffix: str = "0badc0de",
    repo_type: str = "model",
    age: float | None = None,
) -> Path:
    """A partial download ``blobs/<etag>.<8hex>.incomplete`` holding ``data`` so far."""
    name = f"{etag or sha256_hex(data)}.{suffix}.incomplete"
    path = repo_dir(cache_dir, repo_id, repo_type) / "blobs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age is not None:
        make_old(path, seconds=age)
    return path


def add_orphan_blob(
    cache_dir: Path,
    repo_id: str,
    data: bytes,
    *,
    lfs: bool = True,
    repo_type: str = "model",
    age: float | None = None,
) -> Path:
    """A blob no snapshot links to (``scan_cache_dir`` does not see it)."""
    fact = FileFacts("orphan", data, lfs)
    path = repo_dir(cache_dir, repo_id, repo_type) / "blobs" / fact.etag
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if age is not None:
        make_old(path, seconds=age)
    return path


def remove_blob(revision: CachedRevision, path: str) -> Path:
    """Delete the blob behind ``path``: its snapshot link dangles (scan reports a warning)."""
    blob = revision.files[path].blob_path
    blob.unlink()
    return blob
