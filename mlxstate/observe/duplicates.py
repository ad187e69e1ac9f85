"""Files with the same content across stores (docs/status-json.md, "duplicates").

Ollama blobs and HF LFS blobs are named by the sha256 of their bytes, so duplicates among
them are found by NAME, with no reads. Plain files in app folders are matched by size
first and hashed only on a size collision; hashes are cached in the registry keyed by
(dev, inode, size, mtime_ns). Names that already share an inode (hardlinks, or links that
resolve to the same file) are not duplicates.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlxstate.facts import AppState, DuplicateGroup, HfCache, OllamaStore
from mlxstate.observe import hash_progress

__all__ = ["HashCache", "find_duplicates", "sha256_file"]

HashCache = tuple[
    Callable[[int, int, int, int], str | None],  # lookup(dev, ino, size, mtime_ns)
    Callable[[int, int, int, int, str], None],  # store(dev, ino, size, mtime_ns, sha256)
]


def sha256_file(path: Path) -> str:
    """Streaming sha256 (hashlib releases the GIL, so threads scale across files)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _sha256_reporting(path: Path, advance: Callable[[int], None]) -> str:
    """:func:`sha256_file`, telling ``advance`` about every chunk read."""
    digest = hashlib.sha256()
    chunk = bytearray(1 << 20)
    view = memoryview(chunk)
    with open(path, "rb") as fh:
        while count := fh.readinto(chunk):
            digest.update(view[:count])
            advance(count)
    return digest.hexdigest()


def named_blobs(ollama: OllamaStore, hf: HfCache) -> dict[str, set[str]]:
    """sha256 hex → paths of blobs whose NAME is that digest, in both stores."""
    out: dict[str, set[str]] = defaultdict(set)
    blobs = f"{ollama.root}/blobs/sha256-"
    for model in ollama.models:
        for layer in model.all_layers:
            if layer.on_disk is not None:
                out[layer.digest].add(blobs + layer.digest)
    for fact in ollama.orphans:
        if fact.digest:
            out[fact.digest].add(str(fact.path))
    for repo in hf.repos:
        for revision in repo.revisions:
            for f in revision.files:
                if f.present and f.is_lfs:
                    out[f.blob].add(f.blob_file)
    return out


def find_duplicates(
    ollama: OllamaStore,
    hf: HfCache,
    apps: Iterable[AppState] = (),
    cache: HashCache | None = None,
) -> tuple[DuplicateGroup, ...]:
    by_digest = named_blobs(ollama, hf)
    hashed = _hash_app_files(by_digest, apps, cache)
    for digest, hashed_paths in hashed.items():
        by_digest[digest] |= {str(p) for p in hashed_paths}
    groups = []
    for digest, paths in sorted(by_digest.items()):
        group = _group(digest, paths, "hash" if digest in hashed else "name")
        if group is not None:
            groups.append(group)
    return tuple(sorted(groups, key=lambda g: (-g.reclaimable, g.digest)))


def _group(digest: str, paths: set[str], how: str) -> DuplicateGroup | None:
    if len(paths) < 2:
        return None
    by_inode: dict[tuple[int, int], str] = {}
    facts: dict[str, tuple[int, int, int, int, bool]] = {}
    size = 0
    for path in sorted(paths):
        try:
            st = os.stat(path)  # follows links: a symlinked duplicate is the same file
            link = os.path.islink(path)
        except OSError:
            continue
        if by_inode.setdefault((st.st_dev, st.st_ino), path) == path:
            facts[path] = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, link)
        size = st.st_size
    if len(by_inode) < 2:
        return None
    kept = sorted(by_inode.values(), key=Path)
    return DuplicateGroup(
        digest,
        size,
        tuple(Path(p) for p in kept),
        "hash" if how == "hash" else "name",
        tuple(facts[p] for p in kept),
    )


def _hash_app_files(
    by_digest: dict[str, set[str]], apps: Iterable[AppState], cache: HashCache | None
) -> dict[str, set[Path]]:
    """Hash plain app files whose size matches a named blob or another plain file.

    A plain file that is a hard link of a named blob (same device and inode) takes the
    blob's digest from its name: no read.
    """
    plain = [e for app in apps for e in app.entries if e.kind == "file" and e.size > 0]
    if not plain:
        return {}  # nothing to hash: no need to stat every blob either
    sizes: dict[int, int] = defaultdict(int)
    inodes: dict[tuple[int, int], str] = {}
    for digest, paths in by_digest.items():
        for path in list(paths)[:1]:
            with contextlib.suppress(OSError):
                st = os.stat(path)
                sizes[st.st_size] += 1
                inodes[(st.st_dev, st.st_ino)] = digest
    for entry in plain:
        sizes[entry.size] += 1
    out: dict[str, set[Path]] = defaultdict(set)
    candidates = []
    for entry in plain:
        if sizes[entry.size] <= 1:
            continue
        try:
            st = os.stat(entry.path)
        except OSError:
            continue
        known = inodes.get((st.st_dev, st.st_ino))
        if known:
            out[known].add(entry.path)
        else:
            candidates.append(entry.path)
    for digest, hashed in (_hash_files(candidates, cache) if candidates else {}).items():
        out[digest] |= hashed
    return out


def _hash_files(paths: list[Path], cache: HashCache | None) -> dict[str, set[Path]]:
    """sha256 of each path: cache lookups and stores stay on this thread (SQLite objects are
    bound to their thread); only the hashing itself runs in the pool."""
    out: dict[str, set[Path]] = defaultdict(set)
    todo: list[tuple[Path, tuple[int, int, int, int]]] = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        known = cache[0](*key) if cache is not None else None
        if known:
            out[known].add(path)
        else:
            todo.append((path, key))
    if not todo:
        return out
    # Many gigabytes take many seconds: say so on stderr rather than hang in silence.
    progress = hash_progress.current(sum(key[2] for _, key in todo))
    if progress is not None:
        progress.start(sum(key[2] for _, key in todo), [p for p, _ in todo])
    try:
        with ThreadPoolExecutor(max_workers=min(len(todo), os.cpu_count() or 2)) as pool:
            digests = pool.map(lambda p: _hash_or_none(p, progress), [p for p, _ in todo])
            for (path, key), digest in zip(todo, digests, strict=True):
                if digest is None:
                    continue
                out[digest].add(path)
                if cache is not None:
                    cache[1](*key, digest)
    finally:
        if progress is not None:
            progress.finish()
    return out


def _hash_or_none(path: Path, progress: hash_progress.HashProgress | None) -> str | None:
    try:
        return sha256_file(path) if progress is None else _sha256_reporting(path, progress.advance)
    except OSError:
        return None
