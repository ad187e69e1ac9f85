"""Hugging Face effects: downloads through ``snapshot_download`` (progress through a
``tqdm_class`` adapter), each checked on disk afterwards; deletions confined to the repo's
own folder (``hf_delete``)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from mlxstate.apply import failpoints
from mlxstate.apply.hf_delete import delete_repo
from mlxstate.apply.hf_locked import CacheBefore, before_download, mismatches, undo_download
from mlxstate.apply.progress import HfProgress
from mlxstate.errors import ActionError
from mlxstate.hf_errors import describe_hf_error
from mlxstate.lock.model import HfLock
from mlxstate.observe.hf_cache import read_ref, read_tree, repo_folder_name, scan_hf_repo
from mlxstate.plan.actions import Action
from mlxstate.plan.params import PullParams

__all__ = ["HfEffects", "seed_ollama_blob"]

_COMMIT = re.compile(r"[0-9a-f]{40}")


class HfEffects:
    def __init__(self, cache_dir: Path, token: str | None, endpoint: str | None) -> None:
        self.cache_dir, self.token, self.endpoint = cache_dir, token, endpoint

    def download(
        self,
        repo_id: str,
        revision: str,
        include: Sequence[str] | None,
        exclude: Sequence[str] | None,
        progress: Callable[[int, int | None], None],
        lock: HfLock | None = None,
    ) -> str:
        """Fetch the snapshot (only missing files); returns the commit it resolved to.
        ``lock``: mlx.lock's pin of this commit; every locked file is checked after the
        download, and on a mismatch what the download wrote is removed (hf_locked.py)."""
        from huggingface_hub import snapshot_download

        before = self._before(repo_id, lock) if lock is not None else None
        failpoints.hit("hf.download.started")
        allow = list(include) if include is not None else None
        ignore = list(exclude) if exclude else None
        bar = HfProgress(progress, lambda: self._bytes_to_fetch(repo_id, revision, allow, ignore))
        try:
            with _library_quiet():
                folder = snapshot_download(
                    repo_id,
                    revision=revision,
                    allow_patterns=allow,
                    ignore_patterns=ignore,
                    cache_dir=self.cache_dir,
                    token=self.token or False,
                    endpoint=self.endpoint,
                    tqdm_class=bar.tqdm_class,
                    max_workers=4,
                )
        except Exception as exc:  # every failure of the library is this action's failure
            line = describe_hf_error(exc, repo_id, revision, self.endpoint, "download")
            raise ActionError(line) from None
        commit = Path(folder).name
        try:
            self._verify(repo_id, commit, allow, ignore)
        except ActionError as exc:
            if lock is not None and before is not None:  # a pinned install is whole or gone
                self._undo(repo_id, commit, before, exc.message)
            raise
        if lock is not None and before is not None:
            self._check_locked(repo_id, commit, lock, include, exclude, before)
        bar.finish()
        return commit

    def _before(self, repo_id: str, lock: HfLock) -> CacheBefore:
        try:
            return before_download(self.cache_dir, repo_id, lock.commit)
        except OSError as exc:
            raise ActionError(
                f"cannot read the cache folder of hf://{repo_id}: {exc.strerror or exc}"
            ) from None

    def _check_locked(
        self,
        repo_id: str,
        commit: str,
        lock: HfLock,
        include: Sequence[str] | None,
        exclude: Sequence[str] | None,
        before: CacheBefore,
    ) -> None:
        """Every locked file as the lock says, or nothing of this download stays."""
        inc = tuple(include) if include is not None else None
        exc_ = tuple(exclude) if exclude is not None else None
        bad = (
            [f"the download resolved to {commit[:12]}, the lock pins {lock.commit[:12]}"]
            if commit != lock.commit
            else mismatches(self.cache_dir, repo_folder_name(repo_id), lock, inc, exc_)
        )
        if not bad:
            return
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        self._undo(
            repo_id,
            commit,
            before,
            f"hf://{repo_id}@{commit[:12]} does not match mlx.lock: {bad[0]}{more}",
        )

    def _undo(self, repo_id: str, commit: str, before: CacheBefore, line: str) -> None:
        """Take out what a pinned download wrote, then fail the action with ``line``."""
        try:
            undo_download(self.cache_dir, repo_id, commit, before)
            undone = "removed what this download wrote"
        except (ActionError, OSError) as exc:
            why = exc.message if isinstance(exc, ActionError) else str(exc)
            undone = f"could not remove what this download wrote ({why})"
        raise ActionError(f"{line}; {undone}")

    def _bytes_to_fetch(
        self, repo_id: str, revision: str, allow: list[str] | None, ignore: list[str] | None
    ) -> int | None:
        """What the download will fetch, from the file list the library has just cached
        (trees/<commit>.json); None when it is not there."""
        from huggingface_hub.utils._paths import filter_repo_objects

        repo = self.cache_dir / repo_folder_name(repo_id)
        try:
            commit = revision if _COMMIT.fullmatch(revision) else read_ref(repo / "refs" / revision)
        except (OSError, ValueError):
            return None
        listed = read_tree(repo / "trees" / f"{commit}.json")
        if listed is None:
            return None
        wanted = filter_repo_objects(
            listed, allow_patterns=allow, ignore_patterns=ignore, key=_path
        )
        snapshot = repo / "snapshots" / commit
        return sum(f.size for f in wanted if not os.path.exists(snapshot / f.path))

    def _verify(
        self, repo_id: str, commit: str, allow: list[str] | None, ignore: list[str] | None
    ) -> None:
        """The snapshot is really there, every wanted file a link to a present blob: the
        library returns a cached folder as is when the hub cannot be asked."""
        from huggingface_hub.utils._paths import filter_repo_objects

        repo, why = scan_hf_repo(self.cache_dir, repo_id)
        revision = repo.revision(commit) if repo is not None else None
        if revision is None:
            raise ActionError(
                f"hf://{repo_id}: snapshot {commit[:12]} is not in the cache after the download "
                f"({why or 'no such snapshot'}); apply again"
            )
        present = {f.path for f in revision.files if f.present}
        missing = set(revision.dangling)
        if revision.remote is not None:
            wanted = filter_repo_objects(
                [f.path for f in revision.remote], allow_patterns=allow, ignore_patterns=ignore
            )
            missing |= {path for path in wanted if path not in present}
        if missing:
            names = sorted(missing)
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            raise ActionError(
                f"hf://{repo_id}@{commit[:12]} is incomplete after the download: "
                f"missing {', '.join(names[:3])}{more}; apply again (with the hub reachable)"
            )

    def delete(self, repo_id: str) -> int:
        """Delete every cached revision of the repo (exactly this id, case included);
        returns the bytes freed."""
        return delete_repo(self.cache_dir, repo_id)


def _path(item: Any) -> str:
    return str(item.path)


@contextlib.contextmanager
def _library_quiet() -> Iterator[None]:
    """huggingface_hub logs retries and resumes as multi-line warnings on stderr, over the
    progress bars; the outcome is reported once, as one line."""
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def seed_ollama_blob(
    action: Action, models_dir: Path, clone: Callable[[Path, Path], None] | None = None
) -> str:
    """Zero-copy pull from Hugging Face: plant ``blobs/sha256-<hex>`` as a hardlink (or a
    clone) of the GGUF the HF cache already holds, right before ``ollama pull``, so Ollama
    finds that layer present and fetches only the small ones.

    If the guess is wrong (the Ollama manifest does not use this digest) nothing breaks: a
    blob's name IS the sha256 of its bytes, so it can never be the wrong content for its
    name; unreferenced, it is an orphan that Ollama's own pruning removes after an hour, and
    being a link, removing it never touches the HF copy.
    """
    from mlxstate.apply.ollama_effects import confine
    from mlxstate.observe.ollama_store import blob_file

    seed = action.params_as(PullParams)
    src = Path(str(seed.seed_blob))
    try:
        # The blob's name comes from the plan: built only from a validated digest, and its
        # folder must resolve inside the store.
        target = blob_file(models_dir, str(seed.seed_sha256))
        target.parent.mkdir(parents=True, exist_ok=True)
        confine(target, models_dir / "blobs")
    except (ValueError, ActionError, OSError):
        return "cannot place the GGUF in Ollama's store: downloading instead"
    if target.exists():
        return "the GGUF is already in Ollama's store"
    try:
        if os.path.getsize(src) != seed.seed_size:
            return "the HF copy changed since the plan: downloading instead"
    except OSError:
        return "the HF copy is gone: downloading instead"
    # The temp name is outside blobs/ (Ollama deletes non-digest files there) but on the
    # same filesystem, then renamed in: Ollama never sees a half-made blob.
    tmp = models_dir / f".mlx-seed-{uuid.uuid4().hex[:8]}"
    try:
        os.link(src, tmp)
    except OSError:
        try:
            from mlxstate.apply.dedup_effects import CloneUnsupported, clone_file

            (clone or clone_file)(src, tmp)
        except (CloneUnsupported, ActionError, OSError):
            return "cannot link or clone the HF copy here: downloading instead"
    try:
        os.replace(tmp, target)
    except OSError:  # blobs/ read-only, say: Ollama downloads it instead
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return "cannot place the GGUF in Ollama's store: downloading instead"
    return f"linked the GGUF from the HF cache ({src.name[:12]}…): not downloaded again"
