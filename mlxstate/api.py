"""The Python API for apps: find a model declared in mlx.yaml on disk, install it if needed.

``resolve`` is offline and reads only the one model asked for (its Ollama manifest, or its
Hugging Face repo folder); ``ensure`` installs that one model exactly as
``mlx apply --target NAME`` would (same lock, journal and executor). docs/api.md has
examples; ``mlxstate.client`` talks to the Ollama daemon.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from mlxstate.errors import EnsureFailed, MlxError, NotDeclared, NotPresent
from mlxstate.one_model import ModelFile, ResolvedModel

if TYPE_CHECKING:
    from mlxstate.apply.progress import Display
    from mlxstate.engine import Session
    from mlxstate.mlxyaml.load import LoadedSpec

__all__ = [
    "EnsureFailed",
    "MlxError",
    "ModelFile",
    "NotDeclared",
    "NotPresent",
    "ProgressEvent",
    "ResolvedModel",
    "ensure",
    "resolve",
]

_log = logging.getLogger("mlxstate")


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """What ``ensure`` reports while it works: a ``log`` line (``text``), or ``bytes`` of a
    transfer (``text`` names it, e.g. ``pull qwen2.5:7b``; ``total`` None while unknown)."""

    kind: Literal["log", "bytes"]
    text: str
    completed: int = 0
    total: int | None = None


ProgressCallback = Callable[[ProgressEvent], None]


def resolve(name: str, file: str | Path | None = None) -> ResolvedModel:
    """What the model ``name`` declared in mlx.yaml (or a declared source such as
    ``ollama://qwen2.5:7b``) is on this machine. Offline; ``present`` says whether every file
    it needs is there. ``file``: the mlx.yaml (default: found as ``mlx`` finds it).
    Raises :class:`NotDeclared`, or another :class:`MlxError` for a missing or invalid file."""
    session = _session(file)
    return session.resolve(name, _loaded(session))


def ensure(
    name: str,
    progress: ProgressCallback | None = None,
    *,
    file: str | Path | None = None,
    lock_timeout: float = 0.0,
) -> ResolvedModel:
    """Install the declared model ``name`` if it is not complete on disk, like
    ``mlx apply --target NAME -y``, and return it resolved. ``progress`` receives
    :class:`ProgressEvent` values (default: log lines go to the ``mlxstate`` logger).
    ``lock_timeout``: seconds to wait for another apply. Raises :class:`NotDeclared`,
    :class:`NotPresent` (declared absent, or left off this host by ``when:``),
    :class:`EnsureFailed`, or another :class:`MlxError` (``LockHeld``…)."""
    session = _session(file)
    report = progress or _to_logger

    def log(text: str) -> None:
        report(ProgressEvent("log", text))

    return session.ensure(name, lambda: _display(report), lock_timeout=lock_timeout, log=log)


# Parsed mlx.yaml files by (path, sha256 of the bytes, environment): parsing keeps positions
# for error messages and dominates a resolve, so an app that resolves on every request
# parses a file again only when its content changes. A few entries: one app, few files.
_PARSED: dict[tuple[str, str, str], LoadedSpec] = {}
_PARSED_MAX = 8


def _loaded(session: Session) -> LoadedSpec:
    import hashlib

    from mlxstate.mlxyaml.load import load_spec
    from mlxstate.mlxyaml.read import read_spec_bytes

    path, shown = session.find_spec()
    raw = read_spec_bytes(path, shown)
    # The real path too: relative file:// sources are read from where a symlink points.
    where = f"{path.absolute()}\0{path.resolve()}"
    key = (where, hashlib.sha256(raw).hexdigest(), session.env.model_dump_json())
    loaded = _PARSED.get(key)
    if loaded is None:
        loaded = load_spec(path, session.env, display=shown)
        if loaded.sha256 != key[1]:  # changed between the two reads: do not keep it
            return loaded
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.pop(next(iter(_PARSED)))
        _PARSED[key] = loaded
    return loaded


def _session(file: str | Path | None) -> Session:
    from mlxstate.engine import Session

    return Session.from_environment(Path(file) if file is not None else None)


def _to_logger(event: ProgressEvent) -> None:
    if event.kind == "log":
        _log.info("%s", event.text)


def _display(report: ProgressCallback) -> Display:
    """The executor's display, turned into events: no terminal output from a library."""
    from mlxstate.apply.progress import Display

    class _Events(Display):
        def log(self, text: str) -> None:
            report(ProgressEvent("log", text))

        def task(self, description: str) -> Callable[[int, int | None], None]:
            def update(completed: int, total: int | None) -> None:
                report(ProgressEvent("bytes", description, completed, total))

            return update

    return _Events(enabled=False)
