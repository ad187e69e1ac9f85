"""``mlx lock``: write mlx.lock beside mlx.yaml, upgrade entries, or check it offline
(docs/lock.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.cli._output import color_enabled, paint
from mlxstate.errors import MlxError
from mlxstate.text import printable

if TYPE_CHECKING:
    from mlxstate.lock.model import LockEntry
    from mlxstate.lock.update import LockUpdate

__all__ = ["command"]


def command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="With --upgrade: only these models.", show_default=False),
    ] = None,
    upgrade: Annotated[
        bool,
        typer.Option("--upgrade", help="Resolve again (all models, or the NAMEs given)."),
    ] = False,
    check: Annotated[
        bool,
        typer.Option("--check", help="Offline: exit 1 when mlx.lock is missing or stale."),
    ] = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Pin what every model resolves to upstream in mlx.lock (beside mlx.yaml)."""
    if names and not upgrade:
        raise MlxError(
            f"model names need --upgrade (`mlx lock --upgrade {' '.join(names)}`)",
            hint="`mlx lock` alone resolves only new and changed models",
        )
    if check and upgrade:
        raise MlxError("--check is offline and changes nothing; it cannot --upgrade")
    call = Invocation.make(file, no_color, quiet, verbose)
    if check:
        _check(call)
        return
    _lock(call, tuple(names or ()) if upgrade else None)


def _check(call: Invocation) -> None:
    from mlxstate.lock.model import lock_path, read_lock

    loaded = call.session().load()
    lock = read_lock(lock_path(loaded.path))
    shown = printable(str(lock_path(Path(loaded.display))))
    if lock is None:
        raise MlxError(f"no {shown}: run `mlx lock` and commit it")
    problems = lock.stale(loaded.spec.models)
    if problems:
        for line in problems:
            sys.stderr.write(f"{shown}: stale: {printable(line)}\n")
        raise MlxError(
            f"{shown} is stale for {printable(loaded.display)}",
            hint="run `mlx lock` and commit the result",
        )
    if not call.quiet:
        sys.stdout.write(f"{shown} is up to date ({_models(len(lock.models))}).\n")


def _lock(call: Invocation, upgrade: tuple[str, ...] | None) -> None:
    from mlxstate.lock.model import lock_path, read_lock
    from mlxstate.lock.update import LockFailed, update_lock, write_lock

    session = call.session()
    loaded = session.load()
    path = lock_path(loaded.path)
    shown = printable(str(lock_path(Path(loaded.display))))
    try:
        current = read_lock(path)
    except MlxError as exc:
        # A lock that cannot be read is written again from scratch: that is the fix its own
        # error message gives.
        current = None
        if not call.quiet:
            sys.stderr.write(f"note: {exc.message}; writing it again\n")
    try:
        update = update_lock(loaded.spec.models, current, session.settings(loaded), upgrade=upgrade)
    except LockFailed as exc:
        # One `error:` line per model that failed; the last one carries the hint.
        color = color_enabled(sys.stderr)
        for failed in exc.errors[:-1]:
            sys.stderr.write(f"{paint('error:', 'red', color)} {printable(failed.message)}\n")
        raise MlxError(exc.errors[-1].message, hint=exc.hint) from None
    written = write_lock(path, update.lock)
    if not call.quiet:
        _report(update, shown, written, color_enabled(sys.stdout, call.no_color))


def _report(update: LockUpdate, shown: str, written: bool, color: bool) -> None:
    out = sys.stdout
    for name in update.resolved:
        entry = update.lock.models[name]
        verb = "locked" if name in update.moved else "unchanged"
        mark = paint(verb, "green" if verb == "locked" else "dim", color)
        out.write(f"{mark} {printable(name)}: {printable(_pin(entry))}\n")
    for name in update.removed:
        out.write(f"{paint('removed', 'yellow', color)} {printable(name)}: no longer declared\n")
    kept = f"; {len(update.kept)} kept as locked" if update.kept else ""
    if written:
        out.write(f"Wrote {shown} ({_models(len(update.lock.models))}{kept}).\n")
    else:
        out.write(f"{shown} is up to date ({_models(len(update.lock.models))}{kept}).\n")


def _pin(entry: LockEntry) -> str:
    if entry.hf is not None:
        return f"{entry.source}@{entry.hf.revision} → {entry.hf.commit[:12]}"
    if entry.ollama is not None:
        return f"{entry.source} → {entry.ollama.digest[:19]}"
    return entry.source


def _models(n: int) -> str:
    return f"{n} model{'' if n == 1 else 's'}"
