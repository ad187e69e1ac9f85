"""Hugging Face effects: downloads through ``snapshot_download`` (progress through a
``tqdm_class`` adapter), deletions through ``DeleteCacheStrategy`` so the shared Xet store
is cleaned the library's way."""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from mlxstate.apply import failpoints
from mlxstate.apply.progress import hf_tqdm_class
from mlxstate.errors import ActionError

__all__ = ["HfEffects", "seed_ollama_blob"]


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
    ) -> str:
        """Fetch the snapshot (only missing files); returns the commit it resolved to."""
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )

        failpoints.hit("hf.download.started")
        try:
            folder = snapshot_download(
                repo_id,
                revision=revision,
                allow_patterns=list(include) if include is not None else None,
                ignore_patterns=list(exclude) if exclude else None,
                cache_dir=self.cache_dir,
                token=self.token or False,
                endpoint=self.endpoint,
                tqdm_class=hf_tqdm_class(progress),
                max_workers=4,
            )
        except GatedRepoError:
            raise ActionError(
                f"hf://{repo_id} is gated: accept its terms on the hub and set a token"
            ) from None
        except RepositoryNotFoundError:
            raise ActionError(
                f"the hub has no repo {repo_id!r} (or it is private: set a token in the variable "
                "named by settings.huggingface.token_env)"
            ) from None
        except RevisionNotFoundError:
            raise ActionError(f"hf://{repo_id} has no revision {revision!r} on the hub") from None
        except LocalEntryNotFoundError as exc:
            raise ActionError(f"cannot reach the hub for hf://{repo_id}: {exc}") from None
        except HfHubHTTPError as exc:
            raise ActionError(f"download of hf://{repo_id} failed: {exc}") from None
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise ActionError(
                    f"disk full while downloading hf://{repo_id} into {self.cache_dir}"
                ) from None
            raise ActionError(f"download of hf://{repo_id} failed: {exc.strerror or exc}") from None
        return Path(folder).name

    def delete(self, repo_id: str) -> int:
        """Delete every cached revision of the repo; returns the bytes expected to be freed."""
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound

        try:
            info = scan_cache_dir(self.cache_dir)
        except CacheNotFound:
            return 0
        repo = next(
            (
                r
                for r in info.repos
                if r.repo_type == "model" and r.repo_id.lower() == repo_id.lower()
            ),
            None,
        )
        if repo is None:
            return 0
        strategy = info.delete_revisions(*(rev.commit_hash for rev in repo.revisions))
        try:
            strategy.execute()
        except OSError as exc:
            raise ActionError(f"cannot delete hf://{repo_id}: {exc.strerror or exc}") from None
        return int(strategy.expected_freed_size)


def seed_ollama_blob(action: Any, models_dir: Path) -> str:
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

    src = Path(str(action.param("seed_blob")))
    try:
        # The blob's name comes from the plan: built only from a validated digest, and its
        # folder must resolve inside the store.
        target = blob_file(models_dir, str(action.param("seed_sha256")))
        target.parent.mkdir(parents=True, exist_ok=True)
        confine(target, models_dir / "blobs")
    except (ValueError, ActionError, OSError):
        return "cannot place the GGUF in Ollama's store: downloading instead"
    if target.exists():
        return "the GGUF is already in Ollama's store"
    try:
        if os.path.getsize(src) != action.param("seed_size"):
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
            from mlxstate.apply.dedup_effects import CloneUnsupported, _clone

            _clone(src, tmp)
        except (CloneUnsupported, ActionError, OSError):
            return "cannot link or clone the HF copy here: downloading instead"
    try:
        os.replace(tmp, target)
    except OSError:  # blobs/ read-only, say: Ollama downloads it instead
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return "cannot place the GGUF in Ollama's store: downloading instead"
    return f"linked the GGUF from the HF cache ({src.name[:12]}…): not downloaded again"
