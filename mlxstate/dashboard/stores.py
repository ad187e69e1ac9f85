"""The ``stores`` part of a snapshot: each store's size, free space and reclaimable bytes,
from one observation (docs/dashboard.md, "disk")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxstate.facts import DiskSpace, Observed
from mlxstate.status import detached_bytes, pinned_commits
from mlxstate.text import iso_time

if TYPE_CHECKING:
    from mlxstate.mlxyaml.models import Spec

__all__ = ["store_documents"]

FreeSpace = Callable[[Path], DiskSpace | None]


def store_documents(
    observed: Observed, spec: Spec | None, free: FreeSpace, scanned_at: float
) -> list[dict[str, Any]]:
    """One entry per store and app folder that exists. ``free`` is asked now (cheap), the
    rest is as observed at ``scanned_at``."""
    ollama, hf = observed.ollama, observed.hf
    extra = _duplicate_bytes(observed)
    out: list[dict[str, Any]] = []
    if ollama.exists:
        blobs = {x.digest: x.on_disk or 0 for m in ollama.models for x in m.all_layers}
        leftovers = sum(f.size for f in (*ollama.partials, *ollama.temps, *ollama.orphans))
        out.append(
            _entry("ollama", ollama.root, sum(blobs.values()), len(ollama.models), free)
            | {"reclaimable_bytes": leftovers + extra.get(ollama.root, 0)}
        )
    if hf.exists:
        pinned = pinned_commits(spec)
        leftovers = (
            sum(f.size for f in hf.incomplete)
            + sum(f.size for r in hf.repos for f in (*r.incomplete, *r.orphans))
            + sum(detached_bytes(hf, r, pinned) for r in hf.repos)
        )
        models = sum(r.repo_type == "model" for r in hf.repos)
        size = sum(r.size_on_disk for r in hf.repos)
        out.append(
            _entry("huggingface", hf.root, size, models, free)
            | {"reclaimable_bytes": leftovers + extra.get(hf.root, 0)}
        )
    for app in observed.apps:
        if not app.exists:
            continue
        size = sum(e.size for e in app.entries if e.kind == "file")
        out.append(
            _entry("app", app.path, size, len(app.entries), free)
            | {"name": app.name, "reclaimable_bytes": extra.get(app.path, 0)}
        )
    for entry in out:
        entry["scanned_at"] = iso_time(scanned_at)
    return out


def _entry(kind: str, path: Path, size: int, models: int, free: FreeSpace) -> dict[str, Any]:
    space = free(path)
    return {
        "kind": kind,
        "path": str(path),
        "size_bytes": size,
        "free_bytes": None if space is None else space.free,
        "reclaimable_bytes": 0,
        "models": models,
    }


def _duplicate_bytes(observed: Observed) -> dict[Path, int]:
    """Bytes dedup would give back, counted under the folder holding each extra copy (the
    first copy of a group stays)."""
    roots = [observed.ollama.root, observed.hf.root, *(a.path for a in observed.apps)]
    out: dict[Path, int] = {}
    for group in observed.duplicates:
        left = group.reclaimable
        for path in group.paths[1:]:
            root = next((r for r in roots if path.is_relative_to(r)), None)
            if root is None or left <= 0:
                continue
            out[root] = out.get(root, 0) + min(group.size, left)
            left -= group.size
    return out
