"""Scan a Hugging Face hub cache with ``os.scandir`` (docs/status-json.md, ``stores.huggingface``).

Same model as ``huggingface_hub.scan_cache_dir`` (repos, revisions, refs, files, sizes; a
test keeps the two in parity) but several times faster — one ``scandir`` per folder and one
``stat`` per blob instead of ``pathlib`` globbing — and it also reports what the library
does not: orphan blobs, ``.incomplete`` partials, dangling snapshot links (as broken files
instead of dropping the repo), the remote file lists in ``trees/<commit>.json``.
"""

from __future__ import annotations

import gc
import json
import os
import re
import stat
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path

from mlxstate.facts import FileFact, HfCache, HfFile, HfRepo, HfRevision, RemoteFile

__all__ = [
    "IGNORED_NAMES",
    "TRASH_PREFIX",
    "read_ref",
    "repo_folder_name",
    "repo_type_of",
    "scan_hf_cache",
    "scan_hf_repo",
]

# Folder prefix -> repo type, as huggingface_hub.constants.REPO_TYPES_MAPPING (2.4.0). A
# prefix not listed here is looked up in the installed library (repo_type_of): the types it
# knows are the types the cache may hold, and importing it only then keeps the scan fast.
_TYPES: dict[str, str] = {
    "models": "model",
    "datasets": "dataset",
    "spaces": "space",
    "kernels": "kernel",
}
# huggingface_hub's FILES_TO_IGNORE (.DS_Store, Thumbs.db, desktop.ini) plus what it skips at
# the top level (.locks, CACHEDIR.TAG). ``.git`` is skipped inside repos only: at the top
# level the library warns about it, and so does this scanner.
_IGNORED = frozenset({".DS_Store", "Thumbs.db", "desktop.ini", ".locks", "CACHEDIR.TAG", ".git"})
_TOP_IGNORED = _IGNORED - {".git"}
IGNORED_NAMES = _IGNORED
TRASH_PREFIX = ".mlx-deleting-"  # a repo folder mlx is deleting (renamed out of sight first)
SHARED_MARKER = ".huggingface-shared-blobs"
SHARED_LAYOUT = b"1\n"  # the only shared-store layout the library reads (_shared_blobs.py)
TREE_FORMAT_VERSION = 1  # trees/<commit>.json of another version are not read (_tree_cache.py)
_XET_HASH = re.compile(r"[0-9a-fA-F]{64}")


class _Corrupt(Exception):
    pass


def repo_folder_name(repo_id: str, repo_type: str = "model") -> str:
    return f"{repo_type}s--" + repo_id.replace("/", "--")


def repo_type_of(prefix: str) -> str | None:
    """The repo type a cache folder prefix names (``models`` -> ``model``), or None."""
    return _TYPES.get(prefix) or _library_types().get(prefix)


@cache
def _library_types() -> dict[str, str]:
    """huggingface_hub's own prefix -> type table, read once and only for a prefix this
    module does not know (a type added by a newer library)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return {}
    mapping = getattr(constants, "REPO_TYPES_MAPPING", None)
    if not isinstance(mapping, dict):
        return {}
    return {str(k): str(v) for k, v in mapping.items()}


def scan_hf_cache(root: Path) -> HfCache:
    """Every repo in the cache at ``root``; a corrupt repo becomes a warning."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return HfCache(root=root, exists=False)
    warnings: list[str] = []
    marker = _shared_marker(root)
    if marker is not None and marker != SHARED_LAYOUT:
        warnings.append(
            f"{root}/blobs is a shared blob store of an unsupported layout "
            f"({marker[:16]!r}): huggingface_hub does not read it either; left as it is"
        )
    # The store folder is no repo, whatever its version: one warning above, not two.
    todo = [e for e in entries if e.name not in _TOP_IGNORED and not (e.name == "blobs" and marker)]
    repos: list[HfRepo] = []
    stray: list[FileFact] = []
    warnings += [
        f"{e.path} was left by an interrupted delete: mlx removes it at its next HF delete"
        for e in todo
        if e.name.startswith(TRASH_PREFIX)
    ]
    todo = [e for e in todo if not e.name.startswith(TRASH_PREFIX)]
    # The library resolves the cache folder before it reads links: an absolute snapshot
    # link through the real path then names the same blob as a relative one.
    real_root = os.path.realpath(root)
    # The scan allocates one small object per file and creates no reference cycles; the
    # cyclic GC would otherwise re-walk the growing heap dozens of times (~30% of the time).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for entry in todo:
            result = _scan_repo_safely(entry, warnings, real_root)
            if result is not None:
                repos.append(result)
            else:
                stray += _stray_partials(entry)
    finally:
        if gc_was_enabled:
            gc.enable()
    return HfCache(
        root=root,
        exists=True,
        repos=_without_linked_orphans(repos),
        warnings=tuple(warnings),
        shared_store=marker == SHARED_LAYOUT,
        incomplete=tuple(stray),
    )


def _shared_marker(root: Path) -> bytes | None:
    """The content of ``blobs/.huggingface-shared-blobs`` (None when there is none)."""
    try:
        return read_small_file(os.path.join(root, "blobs", SHARED_MARKER), 64)
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return b"?"  # there, but not a small readable file: not a layout the library reads


def _stray_partials(entry: os.DirEntry[str]) -> list[FileFact]:
    """``blobs/*.incomplete`` of a repo folder that could not be read as a repo (no
    ``snapshots/``, a bad ref): the library lists them too, and they are still garbage.
    Only regular files in a real ``<repo>/blobs`` folder of a repo-named folder: nothing
    reached through a link."""
    prefix, sep, _ = entry.name.partition("--")
    if not sep or repo_type_of(prefix) is None:
        return []
    blobs = os.path.join(entry.path, "blobs")
    try:
        if not entry.is_dir(follow_symlinks=False) or not stat.S_ISDIR(os.lstat(blobs).st_mode):
            return []
        found = []
        for e in os.scandir(blobs):
            if e.name.endswith(".incomplete") and e.is_file(follow_symlinks=False):
                st = e.stat(follow_symlinks=False)
                found.append(FileFact(Path(e.path), st.st_size, st.st_mtime, "incomplete"))
        return sorted(found, key=lambda f: f.path)
    except OSError:
        return []


def _without_linked_orphans(repos: list[HfRepo]) -> tuple[HfRepo, ...]:
    """A snapshot link into ANOTHER repo's ``blobs/`` (not the library's layout, but made by
    hand or by other tools) keeps that blob in use: it is no orphan of its own repo."""
    real: dict[str, str] = {}  # folder -> its real path, each resolved once

    def resolved(folder: str) -> str:
        if folder not in real:
            real[folder] = os.path.realpath(folder)
        return real[folder]

    linked: set[tuple[str, str]] = set()
    for repo in repos:
        own = os.path.normpath(repo.path / "blobs") + "/"  # once per repo: the loop is per file
        start = len(own)
        for rev in repo.revisions:
            for f in rev.files:
                path = f.blob_file
                # The common case, a blob of its own repo, with two C calls (no dirname).
                if path.startswith(own) and path.find("/", start) < 0:
                    continue
                folder, name = os.path.split(path)
                linked.add((resolved(folder), name))
    if not linked:
        return tuple(repos)
    out = []
    for repo in repos:
        kept = tuple(
            o for o in repo.orphans if (resolved(str(o.path.parent)), o.path.name) not in linked
        )
        out.append(repo if len(kept) == len(repo.orphans) else replace(repo, orphans=kept))
    return tuple(out)


def scan_hf_repo(root: Path, repo_id: str, repo_type: str = "model") -> tuple[HfRepo | None, str]:
    """One repo of the cache, by its exact folder name; (None, why) when it cannot be read."""
    name = repo_folder_name(repo_id, repo_type)
    try:
        entry = next((e for e in os.scandir(root) if e.name == name), None)
    except OSError as exc:
        return None, f"cannot read {root}: {exc.strerror or exc}"
    if entry is None:
        return None, f"{root / name} does not exist"
    warnings: list[str] = []
    repo = _scan_repo_safely(entry, warnings, os.path.realpath(root))
    return repo, "; ".join(warnings)


def _scan_repo_safely(
    entry: os.DirEntry[str], warnings: list[str], real_root: str
) -> HfRepo | None:
    try:
        if not entry.is_dir():
            raise _Corrupt(f"not a repo folder (a file): {entry.path}")
        return _scan_repo(Path(entry.path), entry.name, warnings, real_root)
    except _Corrupt as exc:
        warnings.append(str(exc))
    except OSError as exc:
        warnings.append(f"cannot read {entry.path}: {exc.strerror or exc}")
    return None


def _scan_repo(path: Path, name: str, warnings: list[str], real_root: str) -> HfRepo:
    prefix, sep, rest = name.partition("--")
    repo_type = repo_type_of(prefix) if sep else None
    if repo_type is None:
        raise _Corrupt(f"not a Hugging Face cache folder: {path}")
    snapshots = f"{path}/snapshots"
    try:
        snapshot_entries = sorted(os.scandir(snapshots), key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        raise _Corrupt(f"no snapshots folder in cached repo: {path}") from None
    refs, unreadable, padded = _read_refs(f"{path}/refs")
    if unreadable:
        warnings.append(
            f"cannot read {', '.join(unreadable)} in {path}: "
            "which revisions are detached is unknown, all are kept"
        )
    if padded:
        # Leniency on purpose (docs/status-json.md, stores.huggingface): the library reads
        # the file as is, finds no such commit and skips the whole repo.
        warnings.append(
            f"{', '.join(padded)} in {path} has a newline or spaces around the commit: mlx "
            "reads it without them, huggingface_hub skips this repo (rewrite the ref file "
            "without a final newline)"
        )
    scan = _Scan(os.path.normpath(f"{path}/blobs"), os.path.join(real_root, name, "blobs"))
    _stat_blobs(scan)
    revisions = [
        _scan_revision(e, refs, path, scan) for e in snapshot_entries if e.name not in _IGNORED
    ]
    scan.used.update(f.blob for r in revisions for f in r.files)
    missing = {c for _, c in refs} - {r.commit for r in revisions}
    if missing:
        raise _Corrupt(f"refs point to commits that are not cached: {sorted(missing)} ({path})")
    used = [st for key, st in scan.stats.items() if st is not None and key in scan.used]
    if used:
        accessed, modified = max(st[2] for st in used), max(st[1] for st in used)
    else:  # as scan_cache_dir: the folder's own times when it holds no blob
        here = path.stat()
        accessed, modified = here.st_atime, here.st_mtime
    return HfRepo(
        repo_type=repo_type,
        repo_id=rest.replace("--", "/"),
        path=path,
        refs=refs,
        revisions=tuple(revisions),
        orphans=tuple(_orphans(scan)),
        incomplete=tuple(scan.incomplete),
        last_accessed=accessed,
        last_modified=modified,
        refs_known=not unreadable,
    )


_Refs = tuple[tuple[str, str], ...]


def _read_refs(folder: str) -> tuple[_Refs, list[str], list[str]]:
    """``refs/<name>`` files (``refs/pr/1`` nested, named so as the library names them) →
    (name, commit); the refs that cannot be read (not UTF-8, a dangling or looping link, a
    folder that cannot be listed — ``refs`` itself included); the refs read leniently."""
    out: list[tuple[str, str]] = []
    bad: list[str] = []
    padded: list[str] = []
    try:
        _collect_refs(folder, "", out, bad, padded)
    except FileNotFoundError:
        # No refs folder: no refs. A dangling link in its place: refs that cannot be read.
        return (), (["refs"] if os.path.islink(folder) else []), []
    except NotADirectoryError:
        raise _Corrupt(f"refs is a file, not a folder: {folder}") from None
    except OSError:
        return (), ["refs"], []
    return tuple(sorted(out)), sorted(bad), sorted(padded)


def _collect_refs(
    folder: str, prefix: str, out: list[tuple[str, str]], bad: list[str], padded: list[str]
) -> None:
    for entry in os.scandir(folder):
        if entry.name in _IGNORED:
            continue
        name = f"refs/{prefix}{entry.name}"
        # A link to a folder is not followed: refs/loop -> . would recurse forever.
        if entry.is_dir(follow_symlinks=False):
            try:
                _collect_refs(entry.path, f"{prefix}{entry.name}/", out, bad, padded)
            except OSError:
                bad.append(name)
            continue
        try:
            raw = read_small_file(entry.path, 4096).decode("utf-8")
        except (OSError, ValueError):
            bad.append(name)
            continue
        commit = raw.strip()
        if commit != raw:
            padded.append(name)
        out.append((prefix + entry.name, commit))


def read_ref(path: str | Path) -> str:
    """The commit a ref file names; OSError/ValueError when it is not a small UTF-8 file."""
    return read_small_file(path, 4096).decode("utf-8").strip()


def read_small_file(path: str | Path, limit: int) -> bytes:
    """At most ``limit`` bytes of a regular file (following links, as the library does).

    Opened non-blocking and checked to be a regular file first: a FIFO planted in the
    cache would otherwise block the scan forever. ValueError when it is larger.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{path} is not a regular file")
        with os.fdopen(os.dup(fd), "rb") as fh:
            data = fh.read(limit + 1)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValueError(f"{path} is larger than {limit} bytes")
    return data


_Stat = tuple[int, float, float]  # size, mtime, atime


@dataclass
class _Scan:
    blobs_dir: str  # <repo>/blobs
    # The same folder as huggingface_hub names it: under the resolved cache root. A link to
    # a blob through this path is the same blob (the library counts it once too).
    lib_blobs_dir: str
    # blob name (for <repo>/blobs/<etag>) or absolute path (anything else) -> stat or None
    stats: dict[str, _Stat | None] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)  # keys of `stats` that snapshots reference
    incomplete: list[FileFact] = field(default_factory=list)
    real: dict[str, str] = field(default_factory=dict)  # blob name -> payload, for Xet links


def _open_dir(path: str, dir_fd: int | None = None) -> int:
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY, dir_fd=dir_fd)


def _stat_blobs(scan: _Scan) -> None:
    """One scandir + stat per blob; snapshot links are then resolved by name, no stat.

    Calls go through a directory fd (fstatat): the kernel does not re-walk the long
    cache path for every blob, which is ~20% of the scan.
    """
    try:
        fd = _open_dir(scan.blobs_dir)
    except OSError:
        return
    try:
        for entry in os.scandir(fd):
            try:
                st = entry.stat()  # follows a Xet link into the shared store
            except OSError:
                continue  # a dangling blob link: snapshot files using it are missing
            if entry.is_dir():  # answered from d_type or the stat above: no syscall
                continue
            name = entry.name
            if name.endswith(".incomplete"):
                if entry.is_symlink():  # not a download the library left: never listed
                    continue
                path = Path(scan.blobs_dir, name)
                scan.incomplete.append(FileFact(path, st.st_size, st.st_mtime, "incomplete"))
            else:
                scan.stats[name] = (st.st_size, st.st_mtime, st.st_atime)
                if entry.is_symlink():  # Xet: the payload lives in the shared store
                    scan.real[name] = os.path.realpath(os.path.join(scan.blobs_dir, name))
    finally:
        os.close(fd)


def _orphans(scan: _Scan) -> list[FileFact]:
    """Blobs in <repo>/blobs that no snapshot links to (Path objects only for those)."""
    out = []
    for name, st in sorted(scan.stats.items()):
        if st is None or name in scan.used or name.startswith(".") or os.sep in name:
            continue
        digest = name if len(name) == 64 else None
        out.append(FileFact(Path(scan.blobs_dir, name), st[0], st[1], "orphan", digest))
    return out


def _scan_revision(
    entry: os.DirEntry[str], refs: tuple[tuple[str, str], ...], repo: Path, scan: _Scan
) -> HfRevision:
    if not entry.is_dir():
        raise _Corrupt(f"snapshots folder corrupted, found a file: {entry.path}")
    commit = entry.name
    files: list[HfFile] = []
    _walk_snapshot(entry.path, "", 0, files, scan)
    files.sort()
    present = [f.mtime for f in files if f.present]
    return HfRevision(
        commit=commit,
        refs=tuple(sorted(r for r, c in refs if c == commit)),
        files=tuple(files),
        snapshot_path=Path(entry.path),
        last_modified=max(present) if present else entry.stat().st_mtime,
        tree_path=repo / "trees" / f"{commit}.json",
    )


def _walk_snapshot(folder: str, prefix: str, depth: int, out: list[HfFile], scan: _Scan) -> None:
    fd = _open_dir(folder)
    try:
        _walk_fd(fd, folder, prefix, depth, out, scan)
    finally:
        os.close(fd)


def _walk_fd(fd: int, folder: str, prefix: str, depth: int, out: list[HfFile], scan: _Scan) -> None:
    # The hot loop of the scan (one iteration per cached file): no pathlib, locals bound,
    # readlink relative to the folder's fd.
    expected = "../" * (depth + 2) + "blobs/"  # ../../blobs/<etag>, one more ../ per subfolder
    cut = len(expected)
    stats, blobs = scan.stats, scan.blobs_dir + "/"
    readlink, append, make = os.readlink, out.append, HfFile
    for entry in os.scandir(fd):
        name = entry.name
        if entry.is_symlink():
            target = readlink(name, dir_fd=fd)
            blob = target[cut:]
            st = stats.get(blob) if target.startswith(expected) and "/" not in blob else None
            if st is not None:
                real = scan.real.get(blob, "") if scan.real else ""
                append(make(prefix + name, blob, st[0], True, blobs + blob, st[1], st[2], real))
            elif not entry.is_dir():  # a link to a folder is skipped, as scan_cache_dir does
                # Keep the first hop; it may itself link into the shared Xet store.
                blob_file = os.path.normpath(os.path.join(folder, target))
                append(_other_file(prefix + name, blob_file, scan))
        elif entry.is_dir():
            sub = _open_dir(name, dir_fd=fd)
            try:
                _walk_fd(sub, f"{folder}/{name}", f"{prefix}{name}/", depth + 1, out, scan)
            finally:
                os.close(sub)
        else:
            append(_other_file(prefix + name, f"{folder}/{name}", scan))  # no-symlink layout


def _other_file(rel: str, blob_file: str, scan: _Scan) -> HfFile:
    """A snapshot file that is not a standard blob link: stat it where it points."""
    folder, name = os.path.split(blob_file)
    # The etag names blobs in <repo>/blobs; anything else (no-symlink layout, a link that
    # points elsewhere) is named by its path, so that distinct files never share a name:
    # sizes and file counts are summed per distinct blob, as scan_cache_dir does.
    if folder == scan.lib_blobs_dir and folder != scan.blobs_dir:
        # An absolute link through the resolved cache root (the cache moved to another
        # disk behind a link): this repo's own blob, counted once and never an orphan.
        folder, blob_file = scan.blobs_dir, f"{scan.blobs_dir}/{name}"
    key = name if folder == scan.blobs_dir else blob_file
    if key not in scan.stats:
        try:
            st = os.stat(blob_file)
            scan.stats[key] = (st.st_size, st.st_mtime, st.st_atime)
        except OSError:
            scan.stats[key] = None
    found = scan.stats[key]
    scan.used.add(key)
    if found is None:
        return HfFile(rel, key, 0, False, blob_file)
    real = scan.real.get(key, "") if key == name else ""
    return HfFile(rel, key, found[0], True, blob_file, found[1], found[2], real)


_TREE_LIMIT = 256 * 1024 * 1024  # a listing of ~1M files; anything larger is not one


def read_tree(path: Path) -> tuple[RemoteFile, ...] | None:
    """The file list huggingface_hub >= 1.22 caches per commit; None if absent, unreadable,
    of another ``format_version`` or holding a Xet hash that is not one (a masked value):
    the library does not use such a listing either (``_tree_cache.read_tree_cache``)."""
    try:
        doc = json.loads(read_small_file(path, _TREE_LIMIT))
        if doc.get("format_version") != TREE_FORMAT_VERSION:
            return None
        out = []
        for name, info in sorted(doc["files"].items()):
            xet = info.get("xet_hash")
            if xet is not None and not (isinstance(xet, str) and _XET_HASH.fullmatch(xet)):
                return None
            blob = str(info.get("lfs_sha256") or info["blob_id"])
            out.append(RemoteFile(name, int(info["size"]), blob))
        return tuple(out)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
