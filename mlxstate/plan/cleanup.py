"""Cleanups (``settings.cleanup``), planned as a pure function like models and links.

Each is off unless enabled (docs/mlx-yaml.md, ``settings.cleanup``). What goes follows the
stores' own rules:

- ``partials``: Ollama ``*-partial*`` files and HF ``*.incomplete`` files older than one
  hour — never anything written in the last hour, which may be a live download;
- ``orphans``: Ollama blobs no manifest references (none at all when a manifest cannot be
  parsed, as Ollama's own pruning does) and HF blobs no snapshot references, older than
  one hour;
- ``detached_revisions``: HF snapshots no ref points to and no declared model pins.
"""

from __future__ import annotations

from collections.abc import Mapping

from mlxstate.facts import FileFact, Observed
from mlxstate.mlxyaml.models import CleanupSettings, Spec
from mlxstate.plan.actions import Action, Kind, Plan, ReasonCode
from mlxstate.plan.order import order_key
from mlxstate.plan.params import FileCleanupParams, RevisionCleanupParams
from mlxstate.sources import HfSource

__all__ = ["EVERY_CLEANUP", "STALE_AFTER", "cleanup_plan", "plan_cleanups"]

STALE_AFTER = 3600.0  # seconds: Ollama prunes after 1 hour too (server/images.go, v0.21+)


_CODES: dict[Kind, ReasonCode] = {
    "cleanup.partial": "cleanup-partial",
    "cleanup.orphan": "cleanup-orphan",
}


def _file_action(kind: Kind, fact: FileFact, store: str, why: str) -> Action:
    return Action(
        f"cleanup/{store}/{fact.path.name}",
        "delete",
        kind,
        str(fact.path),
        0,
        fact.size,
        why,
        None,
        FileCleanupParams(mtime=fact.mtime, size=fact.size),
        _CODES[kind],
    )


# `mlx clean`: every cleanup this module plans, whatever settings.cleanup says.
EVERY_CLEANUP = CleanupSettings(partials=True, orphans=True, detached_revisions=True)


def plan_cleanups(
    spec: Spec,
    observed: Observed,
    which: CleanupSettings | None = None,
    locked: Mapping[str, str] | None = None,
) -> list[Action]:
    """The cleanups ``which`` enables (default: the spec's ``settings.cleanup``).
    ``locked``: model name -> the HF commit mlx.lock pins; never a detached revision (a
    locked download is made by commit, so no ref points to it)."""
    cleanup = which or spec.settings.cleanup
    old = observed.now - STALE_AFTER

    def stale(fact: FileFact) -> bool:
        return fact.mtime < old

    actions: list[Action] = []
    ollama, hf = observed.ollama, observed.hf
    if cleanup.partials:
        actions += [
            _file_action(
                "cleanup.partial", f, "ollama", "partial download, untouched for over 1 hour"
            )
            for f in ollama.partials
            if stale(f)
        ]
        actions += [
            _file_action(
                "cleanup.partial", f, r.repo_id, "partial download, untouched for over 1 hour"
            )
            for r in hf.repos
            for f in r.incomplete
            if stale(f)
        ]
        # Partials of repo folders that could not be read as repos: named by their folder.
        actions += [
            _file_action(
                "cleanup.partial",
                f,
                f.path.parent.parent.name.partition("--")[2].replace("--", "/"),
                "partial download of a repo folder that cannot be read, untouched for over 1 hour",
            )
            for f in hf.incomplete
            if stale(f)
        ]
    if cleanup.orphans:
        if ollama.orphans_known:
            actions += [
                _file_action("cleanup.orphan", f, "ollama", "blob no Ollama manifest references")
                for f in ollama.orphans
                if stale(f)
            ]
        actions += [
            _file_action("cleanup.orphan", f, r.repo_id, "blob no snapshot references")
            for r in hf.repos
            for f in r.orphans
            if stale(f)
        ]
    if cleanup.detached_revisions:
        actions += _detached(spec, observed, locked or {})
    return actions


def cleanup_plan(spec: Spec, observed: Observed, locked: Mapping[str, str] | None = None) -> Plan:
    """``mlx clean``: a plan of every cleanup and nothing else. The same actions, with the
    same re-checks at apply time, as ``mlx apply`` runs when ``settings.cleanup`` enables
    them; the rest of mlx.yaml (downloads, prunes, links) plays no part, so a disk too full
    to download anything can still be cleaned. The stores' warnings say what the scan could
    not read (e.g. an unreadable manifest: then no Ollama blob counts as an orphan).
    ``locked``: the commits mlx.lock pins, kept like declared revisions."""
    actions = sorted(plan_cleanups(spec, observed, EVERY_CLEANUP, locked), key=order_key)
    return Plan(tuple(actions), (*observed.ollama.warnings, *observed.hf.warnings))


def _detached(spec: Spec, observed: Observed, locked: Mapping[str, str]) -> list[Action]:
    pinned = {
        (m.parsed_source.repo_id.lower(), commit.lower())
        for name, m in spec.models.items()
        if isinstance(m.parsed_source, HfSource)
        for commit in (m.revision or "", locked.get(name, ""))
    }
    out = []
    for repo in observed.hf.repos:
        kept = [r for r in repo.revisions if r.refs or (repo.repo_id.lower(), r.commit) in pinned]
        live = {f.blob for r in kept for f in r.files}
        counted: set[str] = set()  # a blob shared by two detached revisions frees once
        for rev in repo.detached:
            if (repo.repo_id.lower(), rev.commit) in pinned:
                continue
            blobs = {
                f.blob: f.size if observed.hf.frees_payload(repo, f) else 0
                for f in rev.files
                if f.present and f.blob not in live
            }
            freed = sum(size for blob, size in blobs.items() if blob not in counted)
            counted |= set(blobs)
            out.append(
                Action(
                    f"cleanup/{repo.repo_id}/{rev.commit[:12]}",
                    "delete",
                    "cleanup.revision",
                    f"{repo.repo_type}s/{repo.repo_id}@{rev.commit}",
                    0,
                    freed,
                    "snapshot no ref points to and mlx.yaml does not pin",
                    None,
                    RevisionCleanupParams(
                        commit=rev.commit, repo=repo.repo_id, repo_type=repo.repo_type
                    ),
                    "cleanup-detached",
                )
            )
    return out
