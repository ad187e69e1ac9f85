"""Options every command takes and finding the spec file (docs/commands.md, "Common to
every command")."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from mlxstate.engine import Session
    from mlxstate.mlxyaml.load import LoadedSpec
    from mlxstate.settings import Environment, Settings

__all__ = [
    "FileOpt",
    "FrozenOpt",
    "Invocation",
    "JsonOpt",
    "LockedOpt",
    "NoColorOpt",
    "QuietOpt",
    "VerboseOpt",
    "lock_seconds",
]

FileOpt = Annotated[
    Path | None,
    typer.Option(
        "-f",
        "--file",
        help="Path of mlx.yaml (default: $MLX_FILE, ./mlx.yaml, ~/.config/mlx/mlx.yaml).",
        show_default=False,
        dir_okay=True,
    ),
]
NoColorOpt = Annotated[bool, typer.Option("--no-color", help="Plain output, no colours.")]
LockedOpt = Annotated[
    bool,
    typer.Option("--locked", help="Follow mlx.lock; exit 1 if it is missing or stale."),
]
FrozenOpt = Annotated[
    bool, typer.Option("--frozen", help="Follow mlx.lock as it is, without the staleness check.")
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print the result as one JSON document on stdout.")
]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Print only errors.")]
VerboseOpt = Annotated[
    bool, typer.Option("-v", "--verbose", help="More detail; tracebacks on internal errors.")
]


@dataclass(frozen=True)
class Invocation:
    """What every command knows about how it was called."""

    file: Path | None
    no_color: bool
    quiet: bool
    verbose: bool
    env: Environment

    @classmethod
    def make(cls, file: Path | None, no_color: bool, quiet: bool, verbose: bool) -> Invocation:
        from mlxstate.settings import read_environment  # pydantic: not for --version

        return cls(file, no_color, quiet, verbose, read_environment())

    def session(self) -> Session:
        """The engine for this mlx.yaml: every command plans, applies and observes through it."""
        from mlxstate.engine import Session

        return Session(self.env, self.file)

    def find_spec(self) -> tuple[Path, str]:
        """(path, how to show it) of the mlx.yaml to use, or :class:`SpecNotFound`."""
        return self.session().find_spec()

    def settings(self, loaded: LoadedSpec | None) -> Settings:
        return self.session().settings(loaded)


def lock_seconds(text: str) -> float:
    """``--lock-timeout``: ``0``/``0s`` or a duration (``30s``, ``10m``)."""
    from mlxstate.errors import MlxError
    from mlxstate.mlxyaml.types import parse_duration

    if text.strip() in ("0", "0s"):
        return 0.0
    try:
        return parse_duration(text).total_seconds()
    except ValueError as exc:
        raise MlxError(f"--lock-timeout: {exc}") from None
