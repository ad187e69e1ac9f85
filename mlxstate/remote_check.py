"""``mlx validate --remote``: does every declared source exist upstream? (docs/ci.md)

Each model that would be locked (docs/lock.md) is resolved the way ``mlx lock`` resolves it:
the Hugging Face repo and revision, ``include`` matching at least one file, a gated repo
without a token; the Ollama tag in its registry. A model that cannot be resolved becomes a
:class:`Diagnostic` at the line of its ``source:``, so the problem is reported exactly like
an offline validation error (text, JSON or GitHub annotations).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from mlxstate.errors import Diagnostic, MlxError
from mlxstate.lock.model import lockable
from mlxstate.mlxyaml.load import LoadedSpec
from mlxstate.mlxyaml.models import ModelSpec

__all__ = ["MAX_PARALLEL", "Resolve", "check_remote"]

# Resolve one model (name, its entry); any reason it cannot be resolved is an MlxError with
# a one-line message. The return value (the lock entry) is not needed here.
Resolve = Callable[[str, ModelSpec], object]

# A few requests at a time: a team file with forty models should not take forty round trips
# in a row, nor open forty connections to the hub at once.
MAX_PARALLEL = 4


def check_remote(loaded: LoadedSpec, resolve: Resolve) -> tuple[Diagnostic, ...]:
    """One diagnostic per declared model that cannot be resolved, in file order."""
    names = [name for name, spec in loaded.spec.models.items() if lockable(spec)]
    if not names:
        return ()
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(names))) as pool:
        problems = list(pool.map(lambda n: _problem(n, loaded.spec.models[n], resolve), names))
    found = [
        _at_source(loaded, name, message)
        for name, message in zip(names, problems, strict=True)
        if message is not None
    ]
    return tuple(sorted(found, key=lambda d: (d.line, d.col)))


def _problem(name: str, spec: ModelSpec, resolve: Resolve) -> str | None:
    try:
        resolve(name, spec)
    except MlxError as exc:
        # The reason without a "models.NAME:" prefix when the error has one: the diagnostic
        # names the key already. Only the first line: a diagnostic is one line everywhere.
        text = str(getattr(exc, "reason", "") or exc.message)
        return text.splitlines()[0] if text.strip() else "cannot be resolved upstream"
    return None


def _at_source(loaded: LoadedSpec, name: str, message: str) -> Diagnostic:
    line, col = loaded.position("models", name, "source")
    return Diagnostic(loaded.display, line, col, f"models.{name}.source", message)
