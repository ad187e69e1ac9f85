"""Deletes in the Hugging Face cache that never leave the repo's own folder.

huggingface_hub's ``DeleteCacheStrategy`` deletes each snapshot file's link target (one
hop), wherever it points: a snapshot link aimed outside the cache lost its target, one aimed
at another repo's blob broke that repo; and it logs a permission error instead of raising
it. So mlx deletes by itself (docs/apply.md, `hf.delete` and `cleanup.revision`):

- the repo folder is found by its exact on-disk name (``models--Org--Model`` and
  ``models--org--model`` are two repos on a case-sensitive disk) and must be a real folder
  directly in the cache, never a link;
- snapshot folders are removed with their links unlinked, never followed;
- a blob is deleted only when a snapshot link of the revision resolves (one hop, after
  resolving the link's folders) to ``<repo>/blobs/<name>`` and no other revision of the
  repo links to it; a blob that is itself a link into the shared Xet store is unlinked,
  and the payload goes only when the library's own manifest says nothing else uses it;
- when the refs cannot be read, no revision counts as detached: nothing is deleted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

from mlxstate.errors import ActionError
from mlxstate.observe.hf_cache import IGNORED_NAMES, TRASH_PREFIX, read_ref, repo_folder_name

__all__ = ["blob_in_use", "check_cache_file", "delete_repo", "delete_revision"]


def delete_repo(cache_dir: Path, repo_id: str, repo_type: str = "model") -> int:
    """Delete the whole repo folder; returns the bytes freed (0: it was not there)."""
    repo = find_repo(cache_dir, repo_id, repo_type)
    _remove_leftovers(Path(os.path.realpath(cache_dir)))
    if repo is None:
        return 0
    stores, freed = _repo_payloads(repo)
    # Out of sight in one rename: a kill from here on leaves no half-deleted repo where
    # the library, an app or the user looks, only a hidden folder the next delete removes.
    trash = repo.parent / f"{TRASH_PREFIX}{repo.name}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(repo, trash)
    except OSError as exc:
        raise ActionError(_delete_failed(exc, repo_id)) from None
    try:
        _empty(trash, repo_id)
    except ActionError as exc:
        with contextlib.suppress(OSError):
            os.rename(trash, repo)  # back where it can be seen, fixed and deleted again
        raise ActionError(exc.message.replace(str(trash), str(repo))) from None
    return freed + _sweep(cache_dir, stores)


def _empty(trash: Path, repo_id: str) -> None:
    # Refs and snapshots first: a delete stopped half-way by a permission error leaves
    # orphan blobs (garbage that cleanup.orphans removes), never a link to a missing blob.
    for part in ("refs", "snapshots", ""):
        target = trash / part if part else trash
        if os.path.isdir(target) and not os.path.islink(target):
            _rmtree(target, repo_id)
        else:
            _unlink(target, repo_id)


def _remove_leftovers(cache: Path) -> None:
    """Folders of deletes a kill interrupted: mlx's own by their name."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(cache):
            if entry.name.startswith(TRASH_PREFIX) and not entry.is_symlink():
                shutil.rmtree(entry.path, ignore_errors=True)


def delete_revision(cache_dir: Path, repo_type: str, repo_id: str, commit: str) -> int:
    """Delete a detached revision and the blobs only it used; returns the bytes freed."""
    _check_component(commit, "commit")
    repo = find_repo(cache_dir, repo_id, repo_type)
    snapshots = _real_dir(repo / "snapshots", repo_id) if repo else None
    if repo is None or snapshots is None or not os.path.lexists(snapshots / commit):
        return 0
    snapshot = _real_dir(snapshots / commit, repo_id)
    assert snapshot is not None
    src = f"{repo_id}@{commit[:12]}"
    pointing = sorted(name for name, target in read_refs(repo, repo_id).items() if target == commit)
    if pointing:
        raise ActionError(f"{src} has a ref again ({', '.join(pointing)}); left alone")
    blobs = _real_dir(repo / "blobs", repo_id)
    try:
        mine = _linked_blobs(snapshot, blobs)
        others = _other_revisions_blobs(snapshots, commit, blobs, repo_id)
        others |= _linked_from_other_repos(repo, blobs)
        freed = _regular_size(snapshot)
    except OSError as exc:
        raise ActionError(f"{_why(exc)}: {src} is kept") from None
    _rmtree(snapshot, repo_id)
    stores: list[Path] = []
    if blobs is not None:
        for name in sorted(mine - others):
            freed += _unlink_blob(cache_dir, blobs / name, stores, repo_id)
    return freed + _sweep(cache_dir, stores)


def find_repo(cache_dir: Path, repo_id: str, repo_type: str = "model") -> Path | None:
    """``<cache>/<type>s--ORG--NAME`` exactly as named (case included), or None."""
    name = repo_folder_name(repo_id, repo_type)
    _check_component(name, "repo")
    try:
        present = name in os.listdir(cache_dir)  # exact name: never a case variant
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ActionError(f"{_why(exc)}: hf://{repo_id} left alone") from None
    if not present:
        return None
    return _real_dir(Path(os.path.realpath(cache_dir)) / name, repo_id)


def read_refs(repo: Path, repo_id: str) -> dict[str, str]:
    """Every ref of the repo; ActionError when any cannot be read (then nothing is
    known to be detached)."""
    out: dict[str, str] = {}
    folder = repo / "refs"
    if not os.path.lexists(folder):
        return out
    if _real_dir(folder, repo_id) is None:
        return out
    for dirpath, dirs, files in os.walk(folder, onerror=_raise):
        links = [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]
        for name in [*files, *links]:
            path = os.path.join(dirpath, name)
            if name in IGNORED_NAMES:
                continue
            try:
                out[os.path.relpath(path, folder)] = read_ref(path)
            except (OSError, ValueError):
                raise ActionError(
                    f"cannot read the ref {path}: the revisions of hf://{repo_id} are kept "
                    "(fix or delete that ref file)"
                ) from None
    return out


def check_cache_file(cache_dir: Path, path: Path) -> None:
    """ActionError unless ``path`` is ``<cache>/<repo folder>/blobs/<name>``, every folder
    real (not a link) and the repo folder directly in the cache."""
    blobs, repo = path.parent, path.parent.parent
    real_cache = os.path.realpath(cache_dir)
    ok = (
        blobs.name == "blobs"
        and path.name not in ("", ".", "..")
        and os.path.realpath(repo.parent) == real_cache
        and not os.path.islink(repo)
        and not os.path.islink(blobs)
    )
    if not ok:
        raise ActionError(f"{path} is not a file in a repo of the HF cache {cache_dir}; left alone")


def blob_in_use(blob: Path) -> bool:
    """True when a snapshot of the blob's repo, or of any other repo of the cache, links to
    it (one hop), or when that cannot be told."""
    repo = blob.parent.parent
    try:
        snapshots = _real_dir(repo / "snapshots", repo.name)
        if snapshots is not None and blob.name in _other_revisions_blobs(
            snapshots, "", blob.parent, repo.name
        ):
            return True
        return blob.name in _linked_from_other_repos(repo, blob.parent)
    except (OSError, ActionError):
        return True  # unknown: keep it


# --- helpers ------------------------------------------------------------------------------


def _check_component(name: str, what: str) -> None:
    if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
        raise ActionError(f"invalid {what} name {name!r}; nothing deleted")


def _real_dir(path: Path, repo_id: str) -> Path | None:
    """``path`` if it is a real folder (not a link); None if absent; ActionError otherwise."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ActionError(f"{_why(exc)}: hf://{repo_id} left alone") from None
    if stat.S_ISLNK(st.st_mode):
        raise ActionError(
            f"{path} is a symlink: mlx does not delete through it; hf://{repo_id} left alone"
        )
    if not stat.S_ISDIR(st.st_mode):
        raise ActionError(f"{path} is not a folder; hf://{repo_id} left alone")
    return path


def _raise(exc: OSError) -> None:
    raise exc


def _links(folder: Path) -> Iterator[str]:
    """Paths of the symlinks below ``folder``; links to folders are not followed."""
    for dirpath, dirs, files in os.walk(folder, onerror=_raise):
        for name in (*dirs, *files):
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                yield path


def _blob_name(link: str, real_blobs: str) -> str | None:
    """The name in ``<repo>/blobs`` the link points at (one hop), or None if elsewhere."""
    parent, name = os.path.split(os.path.join(os.path.dirname(link), os.readlink(link)))
    if name in ("", ".", "..") or os.path.realpath(parent) != real_blobs:
        return None
    return name


def _linked_blobs(snapshot: Path, blobs: Path | None) -> set[str]:
    if blobs is None:
        return set()
    real = os.path.realpath(blobs)
    return {n for link in _links(snapshot) if (n := _blob_name(link, real)) is not None}


def _linked_from_other_repos(repo: Path, blobs: Path | None) -> set[str]:
    """Names in ``blobs`` that a snapshot link of ANOTHER repo of the cache points at. Not
    the library's layout, but a link made by hand or by another tool still reads that blob:
    deleting it would break a repo mlx was not asked to touch."""
    if blobs is None:
        return set()
    real, used = os.path.realpath(blobs), set()
    for entry in os.scandir(repo.parent):
        if entry.path == str(repo) or not entry.is_dir(follow_symlinks=False):
            continue
        snapshots = os.path.join(entry.path, "snapshots")
        if os.path.isdir(snapshots) and not os.path.islink(snapshots):
            used |= {n for link in _links(Path(snapshots)) if (n := _blob_name(link, real))}
    return used


def _other_revisions_blobs(
    snapshots: Path, commit: str, blobs: Path | None, repo_id: str
) -> set[str]:
    """Blob names every snapshot but ``commit`` links to."""
    used: set[str] = set()
    for entry in os.scandir(snapshots):
        if entry.name == commit or not entry.is_dir():
            continue
        if entry.is_symlink():  # what it uses cannot be told: keep every blob
            raise ActionError(f"{entry.path} is a symlink: hf://{repo_id} left alone")
        used |= _linked_blobs(Path(entry.path), blobs)
    return used


def _regular_size(folder: Path) -> int:
    """Bytes of the real files below ``folder`` (the no-symlink layout keeps files there)."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder, onerror=_raise):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


def _repo_payloads(repo: Path) -> tuple[list[Path], int]:
    """(shared Xet payloads the repo's blobs link to, bytes of its own files)."""
    stores: list[Path] = []
    try:
        blobs = _real_dir(repo / "blobs", repo.name)
        freed = _regular_size(repo / "snapshots") if os.path.isdir(repo / "snapshots") else 0
        if blobs is not None:
            freed += _regular_size(blobs)
            stores = [s for e in os.scandir(blobs) if (s := _shared_target(e.path)) is not None]
    except (OSError, ActionError):
        return stores, 0  # the sizes are only for the report; the rmtree decides
    return stores, freed


def _shared_target(blob: str) -> Path | None:
    """The shared Xet store payload a repo blob links to, as huggingface_hub validates it."""
    if not os.path.islink(blob):
        return None
    try:
        from huggingface_hub.utils import _shared_blobs
    except ImportError:  # an older library: no shared store to clean
        return None
    cache = Path(blob).parent.parent.parent
    if not _shared_blobs.is_shared_blobs_dir(_shared_blobs.shared_blobs_dir(cache)):
        return None
    return _shared_blobs.shared_blob_target(blob, cache)


def _sweep(cache_dir: Path, stores: list[Path]) -> int:
    """Let the library collect the payloads nothing references any more (it re-checks)."""
    if not stores:
        return 0
    from huggingface_hub.utils import _shared_blobs

    cache = Path(os.path.realpath(cache_dir))
    return sum(_shared_blobs.sweep_shared_blob(s, cache_dir=cache) for s in set(stores))


def _unlink_blob(cache_dir: Path, blob: Path, stores: list[Path], repo_id: str) -> int:
    try:
        st = os.lstat(blob)
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise ActionError(_delete_failed(exc, repo_id)) from None
    if stat.S_ISDIR(st.st_mode):
        return 0
    if (store := _shared_target(str(blob))) is not None:
        stores.append(store)
    _unlink(blob, repo_id)
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def _unlink(path: Path, repo_id: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ActionError(_delete_failed(exc, repo_id)) from None


def _rmtree(path: Path, repo_id: str) -> None:
    # shutil.rmtree unlinks symlinks found inside and never descends into them; it refuses
    # a top-level symlink, which _real_dir has ruled out already.
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ActionError(_delete_failed(exc, repo_id)) from None


def _delete_failed(exc: OSError, repo_id: str) -> str:
    return f"cannot delete hf://{repo_id}: {_why(exc)} (make it writable, then apply again)"


def _why(exc: OSError) -> str:
    what = exc.strerror or type(exc).__name__
    return f"{what}: {exc.filename}" if exc.filename else what
