"""Dedup effect: replace a duplicate with a hardlink, clone or symlink of the kept copy.

Never deletes first. Right before replacing: re-stat both files (device, inode, size,
mtime_ns as the plan saw them), hash both (streaming sha256, in parallel), and only if both
match the digest: make the link under a temp name in the duplicate's folder and
``os.replace`` it over the duplicate — readers see the old file or the new link, never
nothing. A file whose bytes do not match its sha256 name is reported as corrupt and left.
Both files must lie in a store or app folder (their parent folders resolved) when the
action runs, not only when it was planned.

A duplicate replaced by a *symlink* depends on the kept copy: before that copy is deleted
(a model removed, a revision or orphan cleaned up), ``restore_symlinked`` turns the symlink
back into a real file (a hardlink, or a copy on another filesystem) or refuses the delete.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import fcntl
import os
import shutil
import stat
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mlxstate.apply.result import Result
from mlxstate.errors import ActionError
from mlxstate.observe.duplicates import sha256_file
from mlxstate.plan.actions import Action
from mlxstate.plan.params import DedupParams, RevisionCleanupParams
from mlxstate.registry import DedupRecord

__all__ = ["CloneUnsupported", "HashMemo", "clone_file", "dedup", "restore_symlinked"]

FICLONE = 0x40049409  # Linux ioctl: reflink the whole file (btrfs, xfs; not ext4)


class CloneUnsupported(Exception):
    pass


class HashMemo:
    """The kept copy is often verified for several duplicates in one apply: hash each file
    state (device, inode, size, mtime_ns) once. One memo per apply, owned by its context."""

    def __init__(self) -> None:
        self._known: dict[tuple[int, int, int, int], str] = {}

    def sha256(self, path: Path) -> str:
        key = _facts(path)
        if key not in self._known:
            self._known[key] = sha256_file(path)
        return self._known[key]


def _facts(path: Path) -> tuple[int, int, int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _check_unchanged(path: Path, planned: Sequence[int]) -> None:
    try:
        now = _facts(path)
    except FileNotFoundError:
        raise ActionError(f"{path} is gone since the plan; nothing to deduplicate") from None
    if list(now) != list(planned):
        raise ActionError(f"{path} changed since the plan; left alone")


def _confined(path: Path, roots: Sequence[Path]) -> bool:
    """``path``'s folder, symlinks resolved, lies in one of ``roots`` (resolved too)."""
    parent = os.path.realpath(path.parent)
    return any(Path(parent).is_relative_to(os.path.realpath(root)) for root in roots)


def dedup(
    action: Action,
    roots: Sequence[Path] | None = None,
    memo: HashMemo | None = None,
    clone: Callable[[Path, Path], None] | None = None,
) -> Result:
    """Carry out one ``dedup.link``; returns what was done (raises ActionError otherwise).
    ``roots``: the stores and app folders both files must still be in."""
    p = action.params_as(DedupParams)
    dup, keep, digest, how = Path(action.subject), Path(p.canonical), p.sha256, p.mechanism
    if os.path.islink(dup):
        raise ActionError(f"{dup} is a link now; left alone")
    for path in (dup, keep) if roots is not None else ():
        # A folder swapped for a link since the plan must not let mlx replace (or link to)
        # a file outside the stores and app folders.
        if not _confined(path, roots or ()):
            raise ActionError(f"{path} is no longer inside a model store or app folder; left alone")
    if roots is not None and not _confined(Path(os.path.realpath(keep)), roots):
        # The kept copy is (now) a link out of the stores: linking to it would make the
        # duplicate depend on, or share its inode with, a file mlx does not own.
        raise ActionError(f"{keep} leads outside the model stores and app folders; left alone")
    try:
        if _facts(dup)[:2] == _facts(keep)[:2]:
            return Result("noop", "already the same file")
    except FileNotFoundError:
        pass  # reported just below, with which one is gone
    _check_unchanged(dup, p.dup)
    _check_unchanged(keep, p.keep)
    with ThreadPoolExecutor(max_workers=2) as pool:  # hashing releases the GIL
        got_dup, got_keep = pool.map((memo or HashMemo()).sha256, (dup, keep))
    if got_keep != digest:
        raise ActionError(
            f"{keep} is corrupt: its bytes do not hash to {digest[:12]}…; nothing linked"
        )
    if got_dup != digest:
        if digest in dup.name:  # a blob named by its sha256 whose bytes do not match it
            raise ActionError(
                f"{dup} is corrupt: its bytes do not hash to its name; nothing linked"
            )
        raise ActionError(f"{dup} differs from {keep} (sha256 {got_dup[:12]}…); nothing linked")
    # Nothing may have changed while we were hashing either.
    _check_unchanged(dup, p.dup)
    _check_unchanged(keep, p.keep)
    tmp = dup.with_name(f".{dup.name}.mlx-dedup-{uuid.uuid4().hex[:8]}")
    try:
        _make(how, keep, tmp, clone or clone_file)
    except CloneUnsupported as exc:
        return Result("noop", f"left as is: {exc}", dedup_unsupported=True)
    try:
        os.replace(tmp, dup)  # never delete first: the duplicate stays until this rename
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ActionError(f"cannot replace {dup}: {exc.strerror or exc}") from None
    return Result("done", f"now a {how} of {keep}")


def _make(how: str, keep: Path, tmp: Path, clone: Callable[[Path, Path], None]) -> None:
    if how == "hardlink":
        try:
            os.link(keep, tmp)
        except OSError as exc:
            raise ActionError(f"cannot hardlink {keep}: {exc.strerror or exc}") from None
    elif how == "symlink":
        os.symlink(keep, tmp)
    elif how == "clone":
        clone(keep, tmp)
    else:
        raise ActionError(f"unknown dedup mechanism {how!r}")


def clone_file(src: Path, dst: Path) -> None:
    """A copy-on-write clone of ``src`` at ``dst`` (clonefile on macOS, FICLONE on Linux);
    CloneUnsupported where the filesystem cannot."""
    if sys.platform == "darwin":
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.clonefile(os.fsencode(src), os.fsencode(dst), 0) != 0:
            code = ctypes.get_errno()
            raise CloneUnsupported(f"clonefile failed ({os.strerror(code)})")
        return
    fd_out = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with open(src, "rb") as fin:
            fcntl.ioctl(fd_out, FICLONE, fin.fileno())
        os.fchmod(fd_out, os.stat(src).st_mode & 0o7777)
    except OSError as exc:
        os.close(fd_out)
        with contextlib.suppress(OSError):
            os.unlink(dst)
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS):
            raise CloneUnsupported("this filesystem cannot clone (copy-on-write) files") from None
        raise ActionError(f"cannot clone {src}: {exc.strerror or exc}") from None
    os.close(fd_out)


# -- keeping symlinked duplicates readable ---------------------------------------------------


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or path.is_relative_to(root) for root in roots)


def _still_mlx_symlink(record: DedupRecord) -> bool:
    """The file is still the symlink dedup made to the kept copy (else it is the user's)."""
    try:
        raw = os.readlink(record.path)
    except OSError:
        return False
    return Path(os.path.normpath(os.path.join(record.path.parent, raw))) == record.canonical


def restore_symlinked(paths: Iterable[Path], dedups: Sequence[DedupRecord]) -> list[Path]:
    """Before ``paths`` (files, or folders with all below them) are deleted: every file dedup
    replaced with a symlink to one of them becomes a real file with the same bytes again.

    Only a file that is still mlx's symlink to the kept copy is restored; one the user
    changed, or one that is itself about to be deleted, is left alone. Returns the restored
    files: their dedup records are stale, and the caller removes them from the registry.
    Raises ActionError when one cannot be restored: then the delete must not happen."""
    doomed = [Path(os.path.abspath(p)) for p in paths]
    restored: list[Path] = []
    for record in dedups:
        if record.mechanism != "symlink" or not _under(record.canonical, doomed):
            continue
        if _under(record.path, doomed) or not _still_mlx_symlink(record):
            continue
        if not os.path.exists(record.canonical):
            continue  # already dangling: nothing this delete could still save
        _restore(record.path, record.canonical)
        restored.append(record.path)
    return restored


def _restore(path: Path, canonical: Path) -> None:
    """Put a real file with ``canonical``'s bytes at ``path`` (mlx's symlink), atomically."""
    tmp = path.with_name(f".{path.name}.mlx-restore-{uuid.uuid4().hex[:8]}")
    try:
        try:
            os.link(canonical, tmp)  # same filesystem: shares the bytes, costs nothing
        except OSError:
            shutil.copyfile(canonical, tmp)  # another filesystem: a full copy
            os.chmod(tmp, stat.S_IMODE(os.stat(canonical).st_mode))
        os.replace(tmp, path)  # readers see the symlink or the file, never nothing
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ActionError(
            f"cannot turn {path} back into a file before {canonical} is deleted "
            f"({exc.strerror or exc}); nothing deleted"
        ) from None


def doomed_paths(action: Action, ollama_dir: Path, hf_dir: Path) -> list[Path]:
    """What carrying out ``action`` may delete (a superset is fine: restoring a file whose
    kept copy survives costs a hardlink). For a replace: what the old source holds."""
    from mlxstate.sources import HfSource, OllamaSource, parse_source

    kind, subject = action.kind, action.subject
    if action.op == "replace" and action.replaces:
        subject = action.replaces
        kind = "ollama.delete" if subject.startswith("ollama://") else "hf.delete"
    if kind == "cleanup.orphan":
        return [Path(subject)]
    if isinstance(p := action.params, RevisionCleanupParams):
        repo = _repo_folder(hf_dir, p.repo_type, p.repo)
        return _snapshot_blobs(repo / "snapshots" / p.commit)
    try:
        src = parse_source(subject)
    except ValueError:
        return []
    if kind == "ollama.delete" and isinstance(src, OllamaSource):
        from mlxstate.observe.ollama_store import read_one_model

        model = read_one_model(ollama_dir, (src.host, src.namespace, src.model, src.tag))
        layers = model.all_layers if model is not None else ()
        return [ollama_dir / "blobs" / f"sha256-{layer.digest}" for layer in layers]
    if kind == "hf.delete" and isinstance(src, HfSource):
        return [_repo_folder(hf_dir, "model", src.repo_id)]
    return []


def _repo_folder(hf_dir: Path, repo_type: str, repo_id: str) -> Path:
    name = f"{repo_type}s--{repo_id.replace('/', '--')}"
    with contextlib.suppress(OSError):
        names = os.listdir(hf_dir)
        # The exact spelling first: with models--org--m and models--Org--M both on disk, the
        # delete takes only the exact one, and files dedup linked from the other into it
        # must be restored, not taken for part of the delete. A variant only on a disk that
        # folds case (one folder, spelled otherwise).
        for other in sorted(names, key=lambda n: n != name):
            if other == name or other.lower() == name.lower():
                return hf_dir / other
    return hf_dir / name


def _snapshot_blobs(snapshot: Path) -> list[Path]:
    out = [snapshot]
    for dirpath, _dirs, files in os.walk(snapshot):
        for name in files:
            link = Path(dirpath, name)
            with contextlib.suppress(OSError):
                out.append(Path(os.path.normpath(os.path.join(dirpath, os.readlink(link)))))
    return out
