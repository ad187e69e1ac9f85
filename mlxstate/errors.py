"""One error hierarchy for mlxstate.

Every error a user can cause or fix is an :class:`MlxError`; its ``exit_code`` and message
are turned into output in exactly one place (``mlxstate.cli._errors``). Anything that is not
an ``MlxError`` is a bug and exits 3 with a log file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ActionError",
    "Diagnostic",
    "EnsureFailed",
    "LockHeld",
    "MlxError",
    "NotDeclared",
    "NotPresent",
    "ObserveError",
    "PlanError",
    "SpecError",
    "SpecNotFound",
    "StalePlan",
]


class MlxError(Exception):
    """A user-facing error: a clear message, exit code 1, never a traceback."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One problem in an ``mlx.yaml``: where it is and what is wrong.

    ``line`` and ``col`` are 1-based. ``path`` is the dotted key path
    (``models.llama.source``), empty for problems with the whole document.
    """

    file: str
    line: int
    col: int
    path: str
    message: str

    def render(self) -> str:
        from mlxstate.text import printable

        where = f"{printable(self.path)}: " if self.path else ""
        head = f"{printable(self.file)}:{self.line}:{self.col}"
        return f"{head}: error: {where}{printable(self.message)}"


class SpecError(MlxError):
    """An ``mlx.yaml`` that cannot be loaded: one :class:`Diagnostic` per problem."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        count = len(self.diagnostics)
        noun = "error" if count == 1 else "errors"
        super().__init__(
            "\n".join(d.render() for d in self.diagnostics) or "invalid mlx.yaml",
            hint=f"{count} {noun}; fix the file and run `mlx validate` again",
        )


class SpecNotFound(MlxError):
    """No ``mlx.yaml`` in any of the places docs/commands.md ("Finding the file") lists."""

    def __init__(self, looked_at: Sequence[Path | str]) -> None:
        self.looked_at = tuple(str(p) for p in looked_at)
        super().__init__(
            "no mlx.yaml found; looked at: " + ", ".join(self.looked_at),
            hint="create one with `mlx init`, or pass -f FILE",
        )


class ObserveError(MlxError):
    """A store could not be read at all (one bad item is a warning, not this)."""


class PlanError(MlxError):
    """The plan cannot be made: protected model, missing file source, not enough disk."""


class ActionError(MlxError):
    """An action of ``apply`` failed."""


class LockHeld(MlxError):
    """Another ``mlx apply`` holds the state lock."""


class StalePlan(MlxError):
    """A saved plan no longer matches the spec file or the observed state."""


class NotDeclared(MlxError):
    """``mlx which`` / the Python API: no model of that name in ``mlx.yaml``."""


class NotPresent(MlxError):
    """A declared model that is not (completely) on this machine."""


class EnsureFailed(MlxError):
    """Installing one model (``mlxstate.api.ensure``) failed; what failed is in the message."""
