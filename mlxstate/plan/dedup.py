"""Deduplication (``settings.dedup``), planned as a pure function.

For each group of identical files (found by sha256 name, or by hash for plain app files),
one copy is kept — an Ollama blob first, then an HF blob, then the first app file — and
every other copy becomes a ``dedup.link`` action: ``hardlink`` (same filesystem),
``clone`` (copy-on-write: APFS ``clonefile``, Linux ``FICLONE``), or ``symlink``. ``auto``
picks a hardlink on one filesystem and a clone across filesystems. Symlinks already in the
stores (HF's Xet layout) are never replaced, and a copy that is a link leading out of the
stores and app folders is never the one kept. Apply re-stats and hashes both files first.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlxstate.facts import DuplicateGroup, Observed
from mlxstate.mlxyaml.models import Spec
from mlxstate.plan.actions import Action
from mlxstate.plan.params import DedupParams

__all__ = ["plan_dedup"]

_CLONE_NOTE = ", if the filesystem can clone"


def _rank(path: Path, observed: Observed) -> tuple[int, str]:
    if path.is_relative_to(observed.ollama.root):
        return 0, str(path)
    if path.is_relative_to(observed.hf.root):
        return 1, str(path)
    return 2, str(path)


def _roots(spec: Spec, observed: Observed) -> list[str]:
    """The stores and declared app folders, resolved: where a kept copy may lie."""
    folders = [observed.ollama.root, observed.hf.root, *(a.path for a in spec.apps.values())]
    return [os.path.realpath(f) for f in folders]


def _leads_inside(path: Path, roots: list[str]) -> bool:
    """``path`` (a symlink) resolves into one of ``roots`` (the HF Xet layout does)."""
    real = os.path.realpath(path)
    return any(os.path.commonpath([real, root]) == root for root in roots)


def plan_dedup(
    spec: Spec, observed: Observed, done: frozenset[tuple[str, str]] = frozenset()
) -> tuple[list[Action], list[str]]:
    """``done``: (path, kept copy) pairs the registry says were already handled — a clone
    keeps its own inode, and a copy the filesystem could not clone stays as it is: without
    this, such pairs would be planned again on every run."""
    mode = spec.settings.dedup
    if mode == "off":
        return [], []
    actions: list[Action] = []
    warnings: list[str] = []
    for group in observed.duplicates:
        if len(group.facts) != len(group.paths):
            continue  # observed without stat facts: nothing safe to re-check against
        actions += [
            a
            for a in _group_actions(spec, group, observed, warnings)
            if (a.subject, a.params_as(DedupParams).canonical) not in done
        ]
    return actions, warnings


def _group_actions(
    spec: Spec, group: DuplicateGroup, observed: Observed, warnings: list[str]
) -> list[Action]:
    mode = spec.settings.dedup
    facts = dict(zip(group.paths, group.facts, strict=True))
    roots = _roots(spec, observed)
    # A copy that is a link leading out of the stores and app folders is the user's file
    # elsewhere: keeping it would make the store depend on (or share an inode with) it.
    keepable = [p for p in group.paths if not facts[p][4] or _leads_inside(p, roots)]
    if not keepable:
        return []
    keep = min(keepable, key=lambda p: _rank(p, observed))
    out = []
    for i, path in enumerate(sorted(p for p in group.paths if p != keep)):
        dev, ino, size, mtime_ns, is_link = facts[path]
        if is_link:
            continue  # a link (HF Xet layout, a user's link): never replaced
        same_fs = dev == facts[keep][0]
        how = mode
        if mode == "auto":
            how = "hardlink" if same_fs else "clone"
        if how == "hardlink" and not same_fs:
            warnings.append(
                f"{path}: cannot hardlink across filesystems (dedup: hardlink); left as is"
            )
            continue
        k = facts[keep]
        out.append(
            Action(
                f"dedup/{group.digest[:12]}/{i}",
                "update",
                "dedup.link",
                str(path),
                0,
                size,
                f"same bytes as {keep} ({how}{_CLONE_NOTE if how == 'clone' else ''})",
                None,
                DedupParams(
                    canonical=str(keep),
                    dup=(dev, ino, size, mtime_ns),
                    keep=(k[0], k[1], k[2], k[3]),
                    mechanism=how,
                    sha256=group.digest,
                    verified_by=group.how,
                ),
                "dedup",
            )
        )
    return out
