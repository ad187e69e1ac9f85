"""``mlx status`` as data: the observed inventory, as one JSON-ready document.

The document is the stable ``mlx status --json`` output (docs/status-json.md); the
human tables are rendered from it, so both always say the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxstate import __version__
from mlxstate.facts import AppState, FileFact, HfCache, HfRepo, HfRevision, Observed, OllamaModel
from mlxstate.keys import declared_by_key, hf_key, ollama_key, source_key
from mlxstate.registry import RegistryFacts
from mlxstate.text import iso_time

if TYPE_CHECKING:
    from mlxstate.mlxyaml.models import Spec

__all__ = [
    "FORMAT_VERSION",
    "build_status",
    "detached_bytes",
    "missing_models",
    "pinned_commits",
    "reclaimable",
]

FORMAT_VERSION = "1"


def build_status(
    observed: Observed,
    spec: Spec | None,
    facts: RegistryFacts,
    spec_path: Path | None = None,
    *,
    invalid_spec: tuple[Path, str, int] | None = None,
) -> dict[str, Any]:
    """The status document. ``invalid_spec`` (path, how to show it, number of errors) names
    an mlx.yaml that could not be loaded: ``spec`` is then None, the inventory is shown
    without declarations."""
    if invalid_spec is not None:
        spec_path = invalid_spec[0]
    fold = observed.hf.case_insensitive
    declared = declared_by_key(spec, fold)
    managed = {source_key(m.source, fold): list(m.owner_names) for m in facts.models}
    ctx = _Ctx(declared, managed, {str(link.path) for link in facts.links}, fold)
    reclaim = _reclaimable(observed, pinned_commits(spec))
    return {
        "format_version": FORMAT_VERSION,
        "mlxstate_version": __version__,
        "spec": {
            "path": str(spec_path) if spec_path else None,
            "valid": None if spec_path is None else invalid_spec is None,
        },
        "workspace": facts.workspace,
        "stores": {"ollama": _ollama(observed, ctx), "huggingface": _hf(observed.hf, ctx)},
        "apps": [_app(app, ctx) for app in observed.apps],
        "duplicates": [
            {
                "sha256": g.digest,
                "size": g.size,
                "paths": [str(p) for p in g.paths],
                "reclaimable": g.reclaimable,
                "found_by": g.how,
            }
            for g in observed.duplicates
        ],
        "missing": missing_models(observed, spec),
        "reclaimable": reclaim,
        "warnings": [*_invalid_spec(invalid_spec), *observed.warnings],
    }


def _invalid_spec(invalid: tuple[Path, str, int] | None) -> list[str]:
    if invalid is None:
        return []
    _, shown, errors = invalid
    noun, them = ("error", "it") if errors == 1 else ("errors", "them")
    return [
        f"{shown} is invalid ({errors} {noun}; `mlx validate` shows {them}): declared "
        "models not shown, stores at their default locations"
    ]


def missing_models(observed: Observed, spec: Spec | None) -> list[dict[str, Any]]:
    """Models mlx.yaml declares (``ensure: present``) that no store holds."""
    from mlxstate.sources import FileSource, HfSource, OllamaSource

    present = {ollama_key(m) for m in observed.ollama.models}
    present |= {hf_key(r) for r in observed.hf.repos if r.repo_type == "model"}
    out = []
    for name, model in spec.models.items() if spec else ():
        source = model.parsed_source
        if model.ensure == "absent":
            continue
        if isinstance(source, OllamaSource) and ollama_key(source) not in present:
            store = "ollama"
        elif isinstance(source, HfSource) and hf_key(source) not in present:
            store = "huggingface"
        elif isinstance(source, FileSource) and source.path not in observed.existing_files:
            store = "file"
        else:
            continue
        out.append(
            {"name": name, "source": str(source), "store": store, "revision": model.revision}
        )
    return out


class _Ctx:
    def __init__(
        self,
        declared: dict[str, str],
        managed: dict[str, list[str]],
        links: set[str],
        fold: bool = False,
    ) -> None:
        self.fold = fold
        self.declared = declared
        self.managed = managed
        self.links = links


def _owners(workspaces: list[str] | None) -> list[str]:
    """Workspaces owning a managed model; ``(before workspaces)`` for legacy rows."""
    return [w or "(before workspaces)" for w in workspaces or ()]


iso = iso_time


def _facts(items: tuple[FileFact, ...]) -> list[dict[str, Any]]:
    return [{"path": str(f.path), "size": f.size, "modified": iso(f.mtime)} for f in items]


def _ollama(observed: Observed, ctx: _Ctx) -> dict[str, Any]:
    store = observed.ollama
    daemon = observed.daemon
    return {
        "path": str(store.root),
        "exists": store.exists,
        "daemon": None
        if daemon is None
        else {
            "host": daemon.host,
            "reachable": daemon.reachable,
            "version": daemon.version,
            "error": daemon.error,
            "running": [
                {
                    "name": r.name,
                    "size": r.size,
                    "size_vram": r.size_vram,
                    "expires_at": r.expires_at,
                }
                for r in daemon.running
            ],
        },
        "count": len(store.models),
        # Each blob once: models that share a layer share its bytes on disk.
        "total_bytes": sum(
            {x.digest: x.on_disk or 0 for m in store.models for x in m.all_layers}.values()
        ),
        "models": [_ollama_model(m, ctx) for m in store.models],
        "partials": _facts(store.partials),
        "orphans": _facts(store.orphans),
        "orphans_known": store.orphans_known,
        "temp_files": _facts(store.temps),
    }


def _ollama_model(m: OllamaModel, ctx: _Ctx) -> dict[str, Any]:
    key = ollama_key(m)
    return {
        "name": m.name,
        "source": f"ollama://{m.name}",
        "size": m.size,
        "declared_as": ctx.declared.get(key),
        "managed": key in ctx.managed,
        "owners": _owners(ctx.managed.get(key)),
        "status": m.status,
        "problems": list(m.problems),
        "manifest_digest": m.manifest_digest,
        "modified": iso(m.mtime),
        "last_used": iso(m.last_used),
        "layers": [
            {"kind": x.kind, "sha256": x.digest, "size": x.size, "present": x.ok}
            for x in m.all_layers
        ],
    }


def repo_status(repo: HfRepo) -> str:
    if any(r.dangling for r in repo.revisions):
        return "broken"
    return "partial" if repo.incomplete else "ok"


def _hf(cache: HfCache, ctx: _Ctx) -> dict[str, Any]:
    return {
        "path": str(cache.root),
        "exists": cache.exists,
        "count": len(cache.repos),
        "total_bytes": sum(r.size_on_disk for r in cache.repos),
        "repos": [_hf_repo(r, ctx) for r in cache.repos],
        "incomplete": _facts(cache.incomplete),
    }


def _hf_repo(repo: HfRepo, ctx: _Ctx) -> dict[str, Any]:
    key = hf_key(repo, ctx.fold)
    is_model = repo.repo_type == "model"
    return {
        "type": repo.repo_type,
        "id": repo.repo_id,
        "source": f"hf://{repo.repo_id}" if is_model else None,
        "size": repo.size_on_disk,
        "declared_as": ctx.declared.get(key) if is_model else None,
        "managed": is_model and key in ctx.managed,
        "owners": _owners(ctx.managed.get(key)) if is_model else [],
        "status": repo_status(repo),
        "refs": dict(repo.refs),
        "last_used": iso(repo.last_accessed),
        "modified": iso(repo.last_modified),
        "revisions": [_revision(r, repo.refs_known) for r in repo.revisions],
        "incomplete": _facts(repo.incomplete),
        "orphans": _facts(repo.orphans),
    }


def _revision(rev: HfRevision, refs_known: bool) -> dict[str, Any]:
    return {
        "commit": rev.commit,
        "refs": list(rev.refs),
        "size": rev.size,
        "files": len(rev.files),
        "dangling": list(rev.dangling),
        # Refs that cannot be read: whether any revision is detached is unknown, so none is.
        "detached": refs_known and not rev.refs,
    }


def _app(app: AppState, ctx: _Ctx) -> dict[str, Any]:
    def entry(e: Any) -> dict[str, Any]:
        return {
            "path": str(e.path),
            "kind": e.kind,
            "target": str(e.target) if e.target else None,
            "managed": str(e.path) in ctx.links,
        }

    return {
        "name": app.name,
        "path": str(app.path),
        "layout": app.layout,
        "declared": app.declared,
        "exists": app.exists,
        "entries": [entry(e) for e in app.entries],
    }


def pinned_commits(spec: Spec | None) -> frozenset[str]:
    """Commits mlx.yaml pins with ``revision: <40 hex>``: never detached garbage
    (docs/mlx-yaml.md, ``revision``)."""
    revisions = (m.revision for m in (spec.models.values() if spec else ()))
    return frozenset(r.lower() for r in revisions if r and len(r) == 40)


def reclaimable(observed: Observed, spec: Spec | None) -> dict[str, int]:
    """Bytes each kind of cleanup (and dedup) could give back (``reclaimable`` above)."""
    return _reclaimable(observed, pinned_commits(spec))


def _reclaimable(observed: Observed, pinned: frozenset[str]) -> dict[str, int]:
    ollama, hf = observed.ollama, observed.hf
    # Temp files (COPY*, sha256-<random>) are leftovers of interrupted work, like partials.
    partials = (
        sum(f.size for f in ollama.partials)
        + sum(f.size for f in ollama.temps)
        + sum(f.size for r in hf.repos for f in r.incomplete)
        + sum(f.size for f in hf.incomplete)
    )
    orphans = sum(f.size for f in ollama.orphans) + sum(f.size for r in hf.repos for f in r.orphans)
    detached = sum(detached_bytes(hf, r, pinned) for r in hf.repos)
    dups = sum(g.reclaimable for g in observed.duplicates)
    # An orphan blob that is also a duplicate is one set of bytes: freeing it either way
    # frees it once, so the total counts it once.
    orphan_paths = {f.path for f in ollama.orphans} | {f.path for r in hf.repos for f in r.orphans}
    overlap = sum(
        g.size * min(len([p for p in g.paths if p in orphan_paths]), len(g.paths) - 1)
        for g in observed.duplicates
    )
    return {
        "duplicates": dups,
        "partials": partials,
        "orphans": orphans,
        "detached_revisions": detached,
        "total": dups + partials + orphans + detached - overlap,
    }


def detached_bytes(hf: HfCache, repo: HfRepo, pinned: frozenset[str]) -> int:
    """Bytes only unpinned detached revisions use (blobs shared with a kept one stay, and
    so do shared Xet payloads another repo uses)."""
    kept = [r for r in repo.revisions if r.refs or r.commit in pinned]
    live = {f.blob for r in kept for f in r.files}
    gone = [r for r in repo.detached if r.commit not in pinned]
    blobs = {
        f.blob: f.size if hf.frees_payload(repo, f) else 0
        for r in gone
        for f in r.files
        if f.present
    }
    return sum(size for blob, size in blobs.items() if blob not in live)
