"""A Hugging Face download pinned by mlx.lock: every locked file is checked against its
sha256 (LFS) or git blob id after the download, and on a mismatch what that download wrote
is taken back out, confined to the repo's own folder (docs/lock.md).

What counts as "written by the download" is what was not there before it: the repo folder
(then the whole repo goes, by ``delete_repo``), the snapshot folder of the commit or, when it
existed, the links added to it, refs naming the commit, and blobs those new links point at
that no other revision or repo links to. Nothing that was there before is touched.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from mlxstate.apply.hf_delete import (
    _blob_name,
    _linked_blobs,
    _linked_from_other_repos,
    _links,
    _other_revisions_blobs,
    _real_dir,
    _rmtree,
    _sweep,
    _unlink,
    _unlink_blob,
    delete_repo,
    find_repo,
    read_refs,
)
from mlxstate.facts import RemoteFile
from mlxstate.lock.model import HfLock
from mlxstate.plan.files import wanted_files

__all__ = ["CacheBefore", "before_download", "mismatches", "undo_download"]

_CHUNK = 8 << 20


@dataclass(frozen=True)
class CacheBefore:
    """The repo's folder as it was right before the download."""

    existed: bool
    refs: frozenset[str] = frozenset()
    snapshot_existed: bool = False
    snapshot_links: frozenset[str] = frozenset()  # relative to the snapshot folder
    blobs: frozenset[str] = frozenset()


def before_download(cache_dir: Path, repo_id: str, commit: str) -> CacheBefore:
    repo = find_repo(cache_dir, repo_id)
    if repo is None:
        return CacheBefore(existed=False)
    snapshot = repo / "snapshots" / commit
    snapshots = _real_dir(repo / "snapshots", repo_id)
    there = snapshots is not None and _real_dir(snapshot, repo_id) is not None
    blobs = _real_dir(repo / "blobs", repo_id)
    return CacheBefore(
        existed=True,
        refs=frozenset(read_refs(repo, repo_id)),
        snapshot_existed=there,
        snapshot_links=frozenset(os.path.relpath(x, snapshot) for x in _links(snapshot))
        if there
        else frozenset(),
        blobs=frozenset(os.listdir(blobs)) if blobs is not None else frozenset(),
    )


def mismatches(
    cache_dir: Path,
    folder: str,
    lock: HfLock,
    include: tuple[str, ...] | None,
    exclude: tuple[str, ...] | None,
) -> list[str]:
    """One line per locked file the snapshot does not hold exactly (missing, another size,
    another sha256 or blob id). Only the files include/exclude select are checked: with
    --frozen, mlx.yaml may select fewer than the lock lists."""
    snapshot = cache_dir / folder / "snapshots" / lock.commit
    listing = [RemoteFile(f.path, f.size, "") for f in lock.files]
    wanted = {f.path for f in wanted_files(listing, include, exclude)}
    bad: list[str] = []
    for f in sorted(lock.files, key=lambda f: f.path):
        if f.path not in wanted:
            continue
        try:
            with open(snapshot / f.path, "rb") as handle:  # the link, followed to its blob
                size, sha256, blob_id = _digests(handle, git=f.sha256 is None)
        except OSError as exc:
            bad.append(f"{f.path}: {exc.strerror or 'cannot be read'}")
            continue
        if size != f.size:
            bad.append(f"{f.path}: {size} bytes, the lock says {f.size}")
        elif f.sha256 is not None and sha256 != f.sha256:
            bad.append(f"{f.path}: sha256 {sha256[:12]}…, the lock says {f.sha256[:12]}…")
        elif f.sha256 is None and f.blob_id is not None and blob_id != f.blob_id:
            bad.append(f"{f.path}: git blob {blob_id[:12]}…, the lock says {f.blob_id[:12]}…")
    return bad


def _digests(handle: BinaryIO, *, git: bool) -> tuple[int, str, str]:
    """(size, sha256, git blob id — only when ``git``) of an open file."""
    size = os.fstat(handle.fileno()).st_size
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(f"blob {size}\0".encode()) if git else None
    read = 0
    while chunk := handle.read(_CHUNK):
        read += len(chunk)
        sha256.update(chunk)
        if sha1 is not None:
            sha1.update(chunk)
    return read, sha256.hexdigest(), sha1.hexdigest() if sha1 is not None else ""


def undo_download(cache_dir: Path, repo_id: str, commit: str, before: CacheBefore) -> None:
    """Take out what the download wrote (ActionError if something cannot be removed)."""
    if not before.existed:
        delete_repo(cache_dir, repo_id)  # the exact repo folder, links never followed
        return
    repo = find_repo(cache_dir, repo_id)
    if repo is None:
        return
    for name, target in read_refs(repo, repo_id).items():
        # A ref named after the locked commit is one the library wrote when a hub answered
        # another commit for it: it would send later offline lookups of the pin elsewhere.
        if name not in before.refs and commit in (target, name):
            _unlink(repo / "refs" / name, repo_id)
    snapshots = _real_dir(repo / "snapshots", repo_id)
    snapshot = _real_dir(snapshots / commit, repo_id) if snapshots is not None else None
    if snapshots is None or snapshot is None:
        return
    blobs = _real_dir(repo / "blobs", repo_id)
    real_blobs = os.path.realpath(blobs) if blobs is not None else ""
    old = before.snapshot_links
    added = [x for x in _links(snapshot) if os.path.relpath(x, snapshot) not in old]
    written = {n for x in added if (n := _blob_name(x, real_blobs)) and n not in before.blobs}
    if before.snapshot_existed:
        for link in added:
            _unlink(Path(link), repo_id)
    else:
        _rmtree(snapshot, repo_id)
    if blobs is None:
        return
    # A blob another revision or repo links to stays, even if this download wrote it.
    keep = _other_revisions_blobs(snapshots, commit, blobs, repo_id)
    keep |= _linked_from_other_repos(repo, blobs)
    if before.snapshot_existed:
        keep |= _linked_blobs(snapshot, blobs)
    stores: list[Path] = []
    for name in sorted(written - keep):
        _unlink_blob(cache_dir, blobs / name, stores, repo_id)
    _sweep(cache_dir, stores)
