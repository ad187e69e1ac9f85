"""Who owns an installed model: ``mlx import`` and ``mlx forget`` (docs/apply.md,
"Ownership"). Only the registry changes; files never do.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlxstate.errors import MlxError

if TYPE_CHECKING:
    from mlxstate.mlxyaml.load import LoadedSpec
    from mlxstate.settings import Settings
    from mlxstate.sources import HfSource, OllamaSource

__all__ = ["Forgotten", "Imported", "forget_model", "import_model"]


@dataclass(frozen=True)
class Imported:
    source: str  # as the store spells it
    name: str
    workspace: str
    already: bool  # this workspace owned it before


@dataclass(frozen=True)
class Forgotten:
    source: str
    workspace: str
    still_owned_by: tuple[str, ...]  # empty: no longer managed; the files are the user's


def import_model(
    loaded: LoadedSpec, settings: Settings, source: str, name: str | None, wait: float
) -> Imported:
    """Make an installed model managed by this workspace."""
    from mlxstate.registry import Registry

    src = _model_source(source)
    stored = _on_disk(src, settings)
    ws = settings.workspace or ""
    # The declared name first (docs/commands.md): it is what a source change under prune
    # finds the old model by; --name only names a model this file does not declare.
    label = _declared_name(loaded, stored) or name or _derived_name(loaded, src)
    with _locked(settings, wait), Registry.open(settings.state_dir) as registry:
        managed = registry.facts(ws).find(stored, settings_folds(settings))
        if managed is not None and ws in managed.owner_names:
            return Imported(stored, managed.name_in(ws) or label, ws, already=True)
        with registry.transaction():
            if managed is None:
                registry.add_model(stored, label, None, ws)
            else:
                registry.claim(managed.source, ws, label)
    return Imported(stored, label, ws, already=False)


def forget_model(settings: Settings, source: str, wait: float) -> Forgotten:
    """Drop this workspace's claim (and a legacy one); MlxError if it has none."""
    from mlxstate.registry import Registry

    src = _model_source(source)
    ws = settings.workspace or ""
    with _locked(settings, wait), Registry.open(settings.state_dir) as registry:
        managed = registry.facts(ws).find(str(src), settings_folds(settings))
        if managed is None or not ({ws, ""} & set(managed.owner_names)):
            names = managed.owner_names if managed is not None else ()
            owners = ", ".join(w or "(before workspaces)" for w in names)
            raise MlxError(
                f"{src} is not managed by workspace {ws}"
                + (f" (owners: {owners}; forget it from their mlx.yaml)" if owners else ""),
                hint="`mlx status` shows each managed model's owners",
            )
        with registry.transaction():
            registry.release(managed.source, ws)
        after = registry.facts(ws).find(managed.source, settings_folds(settings))
    return Forgotten(managed.source, ws, after.owner_names if after is not None else ())


def _model_source(text: str) -> OllamaSource | HfSource:
    from mlxstate.sources import HfSource, OllamaSource, parse_source

    try:
        src = parse_source(text.strip())
    except ValueError as exc:
        raise MlxError(f"{text!r}: {exc}") from None
    if not isinstance(src, OllamaSource | HfSource):
        raise MlxError(
            f"{text}: file:// sources are the user's files and are never managed by mlx",
            hint="import an ollama:// or hf:// model",
        )
    return src


def _on_disk(src: OllamaSource | HfSource, settings: Settings) -> str:
    """The source as the store spells it; an error when it is not there."""
    from mlxstate.keys import hf_key
    from mlxstate.observe.ollama_store import read_one_model
    from mlxstate.observe.scan import scan_hf
    from mlxstate.sources import OllamaSource

    if isinstance(src, OllamaSource):
        parts = (src.host, src.namespace, src.model, src.tag)
        if read_one_model(settings.ollama_models_dir, parts) is not None:
            return str(src)
        where = settings.ollama_models_dir
    else:
        cache = scan_hf(settings.hf_cache_dir)
        want = hf_key(src, cache.case_insensitive)
        for repo in cache.repos:
            if repo.repo_type == "model" and hf_key(repo, cache.case_insensitive) == want:
                return f"hf://{repo.repo_id}"
        where = settings.hf_cache_dir
    raise MlxError(
        f"{src} is not in {where}; there is nothing to import",
        hint="`mlx status` lists what is installed (repo ids exactly as on disk)",
    )


def _declared_name(loaded: LoadedSpec, stored: str) -> str | None:
    from mlxstate.keys import source_key

    key = source_key(stored)
    return next(
        (n for n, m in loaded.spec.models.items() if source_key(str(m.parsed_source)) == key),
        None,
    )


def _derived_name(loaded: LoadedSpec, src: OllamaSource | HfSource) -> str:
    from mlxstate.naming import derive_name

    return derive_name(src, set(loaded.spec.models))


def settings_folds(settings: Settings) -> bool:
    from mlxstate.fsutil import folds_case

    return settings.hf_cache_dir.is_dir() and folds_case(settings.hf_cache_dir)


def _locked(settings: Settings, wait: float) -> AbstractContextManager[None]:
    """The apply lock: the registry changes only between applies, never during one."""
    from mlxstate.apply.lock import apply_lock

    return apply_lock(settings.state_dir, wait)
