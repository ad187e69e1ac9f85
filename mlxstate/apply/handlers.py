"""One handler per action kind, in one table (``HANDLERS``): the effect (re-checking its
precondition first, returning a ``Result``) and what the registry records about it
(docs/apply.md, "Ownership": what mlx installed is owned by the workspace applying;
deletions forget; claims and releases change only the owners)."""

from __future__ import annotations

from pathlib import Path

from mlxstate.apply.cleanup_effects import (
    delete_hf_file,
    delete_ollama_file,
    delete_revision,
)
from mlxstate.apply.context import ApplyContext, Handler, source_of
from mlxstate.apply.dedup_effects import dedup
from mlxstate.apply.hf_effects import seed_ollama_blob
from mlxstate.apply.link_handlers import LINK_HANDLERS
from mlxstate.apply.ollama_locked import check_installed, check_upstream
from mlxstate.apply.result import Result
from mlxstate.errors import ActionError
from mlxstate.lock.use import pinned
from mlxstate.plan.actions import Action, Kind
from mlxstate.plan.params import (
    DedupParams,
    DownloadParams,
    PullParams,
    RevisionCleanupParams,
)
from mlxstate.registry import Registry
from mlxstate.sources import HfSource, OllamaSource
from mlxstate.text import human_bytes

__all__ = ["HANDLERS", "record_dedup"]


def _ollama_source(action: Action) -> OllamaSource:
    src = source_of(action.subject)
    if not isinstance(src, OllamaSource):
        raise ActionError(f"{action.id}: mlx cannot carry out {action.kind} on {action.subject}")
    return src


def _hf_source(action: Action) -> HfSource:
    src = source_of(action.subject)
    if not isinstance(src, HfSource):
        raise ActionError(f"{action.id}: mlx cannot carry out {action.kind} on {action.subject}")
    return src


# -- models ---------------------------------------------------------------------------------


def _pull(action: Action, ctx: ApplyContext) -> Result:
    src, p = _ollama_source(action), action.params_as(PullParams)
    pin = pinned(ctx.lock, action.model)
    lock = pin.ollama if pin is not None and p.locked_digest is not None else None
    if lock is not None and lock.digest != p.locked_digest:
        raise ActionError(f"{action.id}: mlx.lock changed since the plan; plan again")
    present = ctx.ollama_present(src) == "ok" and action.op in ("create", "replace")
    if present and (lock is None or ctx.ollama_is_locked(src, lock)):
        return Result("noop", "already present" + ctx.delete_replaced(action))
    ctx.check_space(action, ctx.settings.ollama_models_dir)
    if lock is not None:  # Ollama pulls a tag, never a digest: ask the registry first
        check_upstream(action.model or src.name, src, lock, ctx.upstream_digest(src))
    if p.seed_blob:
        seeded = seed_ollama_blob(action, ctx.settings.ollama_models_dir, ctx.seams.clone)
        ctx.display.log(f"  {seeded}")
    ctx.ollama.pull(src, ctx.display.task(f"pull {src.name}"))
    if lock is not None:
        check_installed(action.model or src.name, src, lock, ctx.settings.ollama_models_dir)
    return Result("done", "pulled" + ctx.delete_replaced(action))


def _download(action: Action, ctx: ApplyContext) -> Result:
    src, p = _hf_source(action), action.params_as(DownloadParams)
    ctx.check_space(action, ctx.settings.hf_cache_dir)
    revision = p.commit or p.revision or "main"
    pin = pinned(ctx.lock, action.model)
    # Verified against the lock only for the commit the lock pins (the plan targets it).
    lock = pin.hf if pin is not None and pin.hf is not None and pin.hf.commit == p.commit else None
    task = ctx.display.task(f"download {src.repo_id}")
    commit = ctx.hf.download(src.repo_id, revision, p.include, p.exclude, task, lock)
    return Result("done", f"downloaded {commit[:12]}" + ctx.delete_replaced(action))


def _ollama_delete(action: Action, ctx: ApplyContext) -> Result:
    src = _ollama_source(action)
    if ctx.ollama_present(src) is None:
        return Result("noop", "already gone")
    return Result("done", ctx.ollama.delete(src))


def _hf_delete(action: Action, ctx: ApplyContext) -> Result:
    freed = ctx.hf.delete(_hf_source(action).repo_id)
    return (
        Result("done", f"freed {human_bytes(freed)}") if freed else Result("noop", "already gone")
    )


def _freed(freed: int) -> Result:
    return (
        Result("done", f"freed {human_bytes(freed)}") if freed else Result("noop", "already gone")
    )


def _record_install(action: Action, result: Result, registry: Registry, ws: str) -> None:
    if action.op in ("create", "replace") and result.status == "done":
        p = action.params
        revision = p.revision if isinstance(p, DownloadParams) else None
        registry.add_model(action.subject, action.model or "", revision, ws)


def _record_delete(action: Action, result: Result, registry: Registry, ws: str) -> None:
    registry.remove_model(action.subject)


# -- ownership ------------------------------------------------------------------------------


def _claim(action: Action, ctx: ApplyContext) -> Result:
    src = source_of(action.subject)
    if src is None or ctx.present(src) is None:
        raise ActionError(f"{action.subject} is no longer in its store; nothing to claim")
    return Result("done", f"now owned by workspace {ctx.settings.workspace}")


def _release(action: Action, ctx: ApplyContext) -> Result:
    return Result("done", f"workspace {ctx.settings.workspace} no longer owns it (files kept)")


def _record_claim(action: Action, result: Result, registry: Registry, ws: str) -> None:
    registry.claim(action.subject, ws, action.model or "")


def _record_release(action: Action, result: Result, registry: Registry, ws: str) -> None:
    registry.release(action.subject, ws)


# -- dedup and cleanups ---------------------------------------------------------------------


def _dedup(action: Action, ctx: ApplyContext) -> Result:
    return dedup(action, ctx.roots(), ctx.hashes, ctx.seams.clone)


def record_dedup(registry: Registry, action: Action, mechanism: str) -> None:
    p = action.params_as(DedupParams)
    dev, ino, size, mtime_ns = p.dup
    registry.add_dedup(
        Path(action.subject), Path(p.canonical), p.sha256, mechanism, dev, ino, size, mtime_ns
    )


def _record_dedup(action: Action, result: Result, registry: Registry, ws: str) -> None:
    if result.status == "done":
        record_dedup(registry, action, action.params_as(DedupParams).mechanism)
    elif result.dedup_unsupported:
        record_dedup(registry, action, "unsupported")


def _cleanup_file(action: Action, ctx: ApplyContext) -> Result:
    path = Path(action.subject)
    if path.parent == ctx.settings.ollama_models_dir / "blobs":
        removed = delete_ollama_file(action, ctx.settings.ollama_models_dir, ctx.seams.clock())
    else:  # then it must be a file in a repo's blobs/ folder of the HF cache
        removed = delete_hf_file(action, ctx.settings.hf_cache_dir, ctx.seams.clock())
    return Result("done", "removed") if removed else Result("noop", "already gone")


def _cleanup_revision(action: Action, ctx: ApplyContext) -> Result:
    p = action.params_as(RevisionCleanupParams)
    freed = delete_revision(ctx.settings.hf_cache_dir, p.repo_type, p.repo, p.commit)
    return (
        Result("done", f"freed {human_bytes(freed)}") if freed else Result("noop", "already gone")
    )


def _record_nothing(action: Action, result: Result, registry: Registry, ws: str) -> None:
    return None  # cleanups remove what no one manages


HANDLERS: dict[Kind, Handler] = {
    "ollama.pull": Handler(_pull, _record_install),
    "ollama.delete": Handler(_ollama_delete, _record_delete),
    "hf.download": Handler(_download, _record_install),
    "hf.delete": Handler(_hf_delete, _record_delete),
    **LINK_HANDLERS,
    "dedup.link": Handler(_dedup, _record_dedup),
    "cleanup.partial": Handler(_cleanup_file, _record_nothing),
    "cleanup.orphan": Handler(_cleanup_file, _record_nothing),
    "cleanup.revision": Handler(_cleanup_revision, _record_nothing),
    "registry.claim": Handler(_claim, _record_claim),
    "registry.release": Handler(_release, _record_release),
}
