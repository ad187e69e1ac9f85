"""What every action handler works with: settings, registry, the stores' effect clients,
mlx.yaml, and the checks several kinds share (present? enough space? the replaced source)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from mlxstate.apply.dedup_effects import HashMemo
from mlxstate.apply.hf_effects import HfEffects
from mlxstate.apply.ollama_effects import OllamaEffects
from mlxstate.apply.progress import Display
from mlxstate.apply.result import Result
from mlxstate.errors import ActionError, MlxError
from mlxstate.lock.model import OllamaLock
from mlxstate.lock.use import LockUse, same_manifest
from mlxstate.mlxyaml.models import Spec
from mlxstate.observe.hf_cache import repo_folder_name
from mlxstate.observe.ollama_store import read_one_model
from mlxstate.plan.actions import Action
from mlxstate.plan.params import LinkParams
from mlxstate.registry import Registry, RegistryFacts
from mlxstate.seams import DEFAULT, Seams
from mlxstate.settings import Settings
from mlxstate.sources import HfSource, OllamaSource, Source, parse_source
from mlxstate.text import human_bytes

__all__ = ["ApplyContext", "Handler", "source_of"]


class Handler(NamedTuple):
    """One action kind: its effect (re-checking its precondition first), then what the
    registry records about it (``ws``: the workspace applying), in the same step."""

    effect: Callable[[Action, ApplyContext], Result]
    record: Callable[[Action, Result, Registry, str], None]


@dataclass(frozen=True)
class ApplyContext:
    settings: Settings
    registry: Registry
    display: Display
    ollama: OllamaEffects
    hf: HfEffects
    spec: Spec | None
    seams: Seams = DEFAULT  # clock, free space, cloner: passed in, never patched
    hashes: HashMemo = field(default_factory=HashMemo)  # lives for this apply only
    lock: LockUse | None = None  # mlx.lock, with --locked / --frozen (docs/lock.md)

    def facts(self) -> RegistryFacts:
        return self.registry.facts(self.settings.workspace)

    def app_root(self, action: Action) -> Path:
        app = action.params_as(LinkParams).app
        if self.spec is not None and app in self.spec.apps:
            return self.spec.apps[app].path
        return Path(action.subject).parent  # the app left mlx.yaml: remove nothing above

    def roots(self) -> list[Path]:
        """Where mlx may replace files: the stores and the declared app folders."""
        apps = [a.path for a in self.spec.apps.values()] if self.spec is not None else []
        return [self.settings.ollama_models_dir, self.settings.hf_cache_dir, *apps]

    def present(self, src: Source) -> str | None:
        if isinstance(src, OllamaSource):
            return self.ollama_present(src)
        if isinstance(src, HfSource):
            # The exact on-disk folder: a case variant is another repo.
            snapshots = self.settings.hf_cache_dir / repo_folder_name(src.repo_id) / "snapshots"
            return "ok" if snapshots.is_dir() and any(snapshots.iterdir()) else None
        return None

    def ollama_present(self, src: OllamaSource) -> str | None:
        parts = (src.host, src.namespace, src.model, src.tag)
        model = read_one_model(self.settings.ollama_models_dir, parts)
        return None if model is None else model.status

    def ollama_is_locked(self, src: OllamaSource, lock: OllamaLock) -> bool:
        parts = (src.host, src.namespace, src.model, src.tag)
        model = read_one_model(self.settings.ollama_models_dir, parts)
        return model is not None and same_manifest(model, lock)

    def upstream_digest(self, src: OllamaSource) -> str:
        """The manifest digest the registry serves for ``src``'s tag now."""
        from mlxstate._httpx import httpx
        from mlxstate.apply.ollama_locked import tag_digest

        with httpx.Client(timeout=30.0, follow_redirects=True) as client:
            return tag_digest(src, self.settings.ollama_registry, client)

    def check_space(self, action: Action, root: Path) -> None:
        """disk.min_free again, right before the download (the plan may be old)."""
        disk = self.seams.disk_space(root)
        if disk is None:
            return
        # Size unknown (every fresh Ollama pull): refuse at least when already below the floor.
        after = disk.free - (action.download_bytes or 0)
        if after < self.settings.min_free:
            size = human_bytes(action.download_bytes) if action.download_bytes else "size unknown"
            raise ActionError(
                f"not enough disk space for {action.subject}: {size} "
                f"to download, {human_bytes(disk.free)} free, settings.disk.min_free is "
                f"{human_bytes(self.settings.min_free)}"
            )

    def delete_replaced(self, action: Action) -> str:
        """A replace deletes the old source only after the new one is in place. The new one
        is installed either way: a failed delete of the old one is reported, and the old one
        stays managed (the next plan proposes its delete again)."""
        old = action.replaces
        if action.op != "replace" or not old:
            return ""
        old_src = source_of(old)
        try:
            if isinstance(old_src, OllamaSource) and self.ollama_present(old_src) is not None:
                self.ollama.delete(old_src)
            elif isinstance(old_src, HfSource):
                self.hf.delete(old_src.repo_id)
        except (MlxError, OSError) as exc:
            text = exc.message if isinstance(exc, MlxError) else str(exc)
            self.display.log(f"  could not delete the replaced {old}: {text}")
            return f"; the replaced {old} is still there ({text})"
        with self.registry.transaction():
            self.registry.remove_model(old)
        return f"; deleted {old}"


def source_of(text: str) -> Source | None:
    try:
        return parse_source(text)
    except ValueError:
        return None
