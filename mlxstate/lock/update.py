"""``mlx lock``: which entries to keep, which to resolve again, and writing the result
(docs/lock.md, "Writing and upgrading the lock").

Without ``--upgrade`` an entry that still matches its mlx.yaml entry is kept exactly as it
is, so running ``mlx lock`` twice changes nothing and never moves a pin by itself; only
missing and stale entries are resolved. ``--upgrade`` resolves all of them again, or the
named ones. Every resolution happens before anything is written: one failure leaves the
lock file as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlxstate.errors import MlxError
from mlxstate.lock.model import LockEntry, Lockfile, dump_lock, input_hash, lockable
from mlxstate.lock.resolve import ResolveError, resolve_model

if TYPE_CHECKING:
    from mlxstate.mlxyaml.models import ModelSpec
    from mlxstate.settings import Settings

__all__ = ["LockFailed", "LockUpdate", "update_lock", "write_lock"]

Resolver = Callable[[str, "ModelSpec", "Settings"], LockEntry]


class LockFailed(MlxError):
    """Some models could not be resolved; ``errors`` has one line per model."""

    def __init__(self, errors: Sequence[ResolveError]) -> None:
        self.errors = tuple(errors)
        super().__init__(
            "\n".join(e.message for e in self.errors),
            hint="mlx.lock was not changed; fix these and run `mlx lock` again",
        )


@dataclass(frozen=True)
class LockUpdate:
    lock: Lockfile
    resolved: tuple[str, ...]  # resolved in this run (new, stale or upgraded)
    moved: tuple[str, ...]  # of those, the ones whose resolution differs from before
    kept: tuple[str, ...]
    removed: tuple[str, ...]


def update_lock(
    declared: Mapping[str, ModelSpec],
    current: Lockfile | None,
    settings: Settings,
    *,
    upgrade: Sequence[str] | None = None,
    resolver: Resolver = resolve_model,
) -> LockUpdate:
    """The new lock. ``upgrade``: None (keep fresh entries), empty (all), or names."""
    wanted = {name: spec for name, spec in declared.items() if lockable(spec)}
    _check_names(upgrade, declared, wanted)
    old = dict(current.models) if current is not None else {}
    entries: dict[str, LockEntry] = {}
    resolved: list[str] = []
    errors: list[ResolveError] = []
    for name, spec in sorted(wanted.items()):
        entry = old.get(name)
        fresh = entry is not None and entry.input_hash == input_hash(spec)
        if fresh and entry is not None and _keep(name, upgrade):
            entries[name] = entry
            continue
        try:
            entries[name] = resolver(name, spec, settings)
        except ResolveError as exc:
            errors.append(exc)
        resolved.append(name)
    if errors:
        raise LockFailed(errors)
    moved = [n for n in resolved if n not in old or _pins(old[n]) != _pins(entries[n])]
    return LockUpdate(
        Lockfile(entries),
        tuple(resolved),
        tuple(moved),
        tuple(sorted(entries.keys() - set(resolved))),
        tuple(sorted(old.keys() - entries.keys())),
    )


def _keep(name: str, upgrade: Sequence[str] | None) -> bool:
    """A fresh entry stays unless --upgrade names it (or names nothing: all)."""
    return upgrade is None or (bool(upgrade) and name not in upgrade)


def _check_names(
    upgrade: Sequence[str] | None,
    declared: Mapping[str, ModelSpec],
    wanted: Mapping[str, ModelSpec],
) -> None:
    for name in upgrade or ():
        if name not in declared:
            known = ", ".join(sorted(wanted)) or "none"
            raise MlxError(f"--upgrade {name}: no such model in mlx.yaml (lockable: {known})")
        if name not in wanted:
            raise MlxError(
                f"--upgrade {name}: nothing to lock (file:// sources and ensure: absent "
                "models are not locked)"
            )


def _pins(entry: LockEntry) -> object:
    """What an entry pins, without its input hash (an edited entry may pin the same)."""
    return (entry.hf, entry.ollama)


def write_lock(path: Path, lock: Lockfile) -> bool:
    """Write ``lock`` atomically unless the file already holds these bytes; True if written."""
    from mlxstate.fsutil import write_atomic
    from mlxstate.lock.model import read_lock_bytes

    data = dump_lock(lock)
    try:
        if read_lock_bytes(path) == data:
            return False
    except MlxError:
        if os.path.lexists(path) and not path.is_file():  # a FIFO, a device: not replaced
            raise
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise MlxError(f"cannot write {path}: {exc.strerror or exc}") from None
    return True
