"""Deduplication (``settings.dedup``), planned as a pure function.

For each group of identical files (found by sha256 name, or by hash for plain app files),
one copy is kept — an Ollama blob first, then an HF blob, then the first app file — and
every other copy becomes a ``dedup.link`` action: ``hardlink`` (same filesystem),
``clone`` (copy-on-write: APFS ``clonefile``, Linux ``FICLONE``), or ``symlink``. ``auto``
picks a hardlink on one filesystem and a clone across filesystems. Symlinks already in the
stores (HF's Xet layout) are never replaced. Apply re-stats and hashes both files first.
"""

from __future__ import annotations

from pathlib import Path

from mlxstate.plan.actions import Action, params
from mlxstate.spec.models import Spec
from mlxstate.state import DuplicateGroup, Observed

__all__ = ["plan_dedup"]

_CLONE_NOTE = ", if the filesystem can clone"


def _rank(path: Path, observed: Observed) -> tuple[int, str]:
    if path.is_relative_to(observed.ollama.root):
        return 0, str(path)
    if path.is_relative_to(observed.hf.root):
        return 1, str(path)
    return 2, str(path)


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
            for a in _group_actions(group, mode, observed, warnings)
            if (a.subject, str(a.param("canonical"))) not in done
        ]
    return actions, warnings


def _group_actions(
    group: DuplicateGroup, mode: str, observed: Observed, warnings: list[str]
) -> list[Action]:
    facts = dict(zip(group.paths, group.facts, strict=True))
    keep = min(group.paths, key=lambda p: _rank(p, observed))
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
                params(
                    canonical=str(keep),
                    sha256=group.digest,
                    mechanism=how,
                    verified_by=group.how,
                    dup=[dev, ino, size, mtime_ns],
                    keep=[k[0], k[1], k[2], k[3]],
                ),
            )
        )
    return out
