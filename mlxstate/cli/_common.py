"""Options every command takes (SPEC §5) and finding the spec file (SPEC §2)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from mlxstate.errors import SpecNotFound
from mlxstate.settings import Environment, read_environment, spec_candidates

__all__ = ["FileOpt", "NoColorOpt", "QuietOpt", "Run", "VerboseOpt"]

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
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="Print only errors.")]
VerboseOpt = Annotated[
    bool, typer.Option("-v", "--verbose", help="More detail; tracebacks on internal errors.")
]


@dataclass(frozen=True)
class Run:
    """What every command knows about how it was called."""

    file: Path | None
    no_color: bool
    quiet: bool
    verbose: bool
    env: Environment

    @classmethod
    def make(cls, file: Path | None, no_color: bool, quiet: bool, verbose: bool) -> Run:
        return cls(file, no_color, quiet, verbose, read_environment())

    def find_spec(self) -> tuple[Path, str]:
        """(path, how to show it) of the mlx.yaml to use, or :class:`SpecNotFound`."""
        if self.file is not None:
            if self.file.is_file() or (self.file.exists() and not self.file.is_file()):
                return self.file, str(self.file)
            raise SpecNotFound([self.file])
        candidates = spec_candidates(self.env)
        if self.env.MLX_FILE:
            # An explicit $MLX_FILE that names no file is a mistake, not a hint to look
            # elsewhere: silently using another mlx.yaml would act on the wrong machine state.
            chosen = candidates[0]
            if chosen.exists():
                return chosen, str(chosen)
            raise SpecNotFound([f"{chosen} (from $MLX_FILE)"])
        for place in candidates:
            if place.is_file():
                return place, str(place)
        raise SpecNotFound(candidates)
