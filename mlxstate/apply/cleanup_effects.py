"""Cleanup effects: remove stale partials, orphan blobs and detached HF revisions, each
after checking again that it is still exactly what the plan saw and still garbage."""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

from mlxstate.apply import hf_delete
from mlxstate.apply.hf_delete import blob_in_use, check_cache_file
from mlxstate.errors import ActionError
from mlxstate.plan.actions import Action
from mlxstate.plan.cleanup import STALE_AFTER
from mlxstate.plan.params import FileCleanupParams
from mlxstate.text import printable

__all__ = [
    "check_cache_file",
    "delete_hf_file",
    "delete_ollama_file",
    "delete_revision",
    "delete_stale_file",
    "hf_blob_in_use",
]


def delete_stale_file(action: Action, in_use: bool, now: float | None = None) -> bool:
    """Unlink the file if it is unchanged since the plan, still old (at ``now``, default the
    clock), and not in use."""
    path = Path(action.subject)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ActionError(f"cannot read {path}: {exc.strerror or exc}; left alone") from None
    planned = action.params_as(FileCleanupParams)
    if st.st_size != planned.size or abs(st.st_mtime - planned.mtime) > 1e-3:
        raise ActionError(f"{path} changed since the plan (a download resumed?); left alone")
    if (time.time() if now is None else now) - st.st_mtime < STALE_AFTER:
        raise ActionError(f"{path} was written in the last hour; left alone")
    if in_use:
        raise ActionError(
            f"{path} is in use again (a manifest or snapshot references it); left alone"
        )
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ActionError(
            f"cannot delete {path}: {exc.strerror or exc} (make its folder writable, then "
            "apply again)"
        ) from None
    return True


_OLLAMA_NAME = {
    "cleanup.orphan": re.compile(r"sha256[-:][0-9a-f]{64}"),
    "cleanup.partial": re.compile(r"sha256[-:][0-9a-f]{64}-partial(-[0-9]+)?"),
}


def delete_ollama_file(action: Action, models_dir: Path, now: float | None = None) -> bool:
    """A stale partial download or orphan blob of the Ollama store: deleted only when its
    name is one Ollama gives such files (a validated digest) and its folder resolves to the
    store's ``blobs/``; a link is deleted as a link. Every failure is one ActionError line."""
    from mlxstate.apply.ollama_effects import confine

    path, blobs = Path(action.subject), models_dir / "blobs"
    name_re = _OLLAMA_NAME.get(action.kind)
    where = printable(str(path))
    if name_re is None or path.parent != blobs or not name_re.fullmatch(path.name):
        raise ActionError(f"refusing to delete {where}: not an Ollama {action.kind} name")
    confine(path, blobs)
    in_use = action.kind == "cleanup.orphan" and ollama_blob_in_use(models_dir, path)
    try:
        return delete_stale_file(action, in_use, now)
    except PermissionError:
        raise ActionError(f"cannot delete {where}: permission denied") from None
    except OSError as exc:
        raise ActionError(f"cannot delete {where}: {exc.strerror or exc}") from None


def ollama_blob_in_use(models_dir: Path, digest_path: Path) -> bool:
    """True when a manifest references the blob, or any manifest cannot be read (then, like
    Ollama, nobody can tell what is unreferenced)."""
    from mlxstate.observe.ollama_store import scan_ollama_store

    store = scan_ollama_store(models_dir)
    if not store.orphans_known:
        return True
    name = digest_path.name
    return not any(f.path.name == name for f in store.orphans)


def delete_hf_file(action: Action, cache_dir: Path, now: float | None = None) -> bool:
    """A stale ``.incomplete`` download or orphan blob of the HF cache: only a file of a
    repo's own ``blobs/`` folder (no folder on the way a link, the repo folder directly in
    the cache), and a partial only when it is a regular file named as the library names
    them — a link or a folder with that name is left alone (the repo may be otherwise
    unreadable, so nothing else about it is trusted)."""
    path = Path(action.subject)
    check_cache_file(cache_dir, path)
    if action.kind == "cleanup.partial":
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise ActionError(f"cannot read {path}: {exc.strerror or exc}; left alone") from None
        if not path.name.endswith(".incomplete") or not stat.S_ISREG(mode):
            raise ActionError(f"{printable(str(path))} is not a partial download; left alone")
    in_use = action.kind == "cleanup.orphan" and hf_blob_in_use(cache_dir, path)
    return delete_stale_file(action, in_use, now)


def hf_blob_in_use(cache_dir: Path, blob: Path) -> bool:
    """True when a snapshot of the blob's repo links to it (or when that cannot be told).
    ActionError when ``blob`` is not a file of a repo of the cache."""
    check_cache_file(cache_dir, blob)
    return blob_in_use(blob)


def delete_revision(cache_dir: Path, repo_type: str, repo_id: str, commit: str) -> int:
    """Delete a detached revision, confined to its repo folder (see ``hf_delete``)."""
    return hf_delete.delete_revision(cache_dir, repo_type, repo_id, commit)
