"""The root of the ``mlx`` app: ``--version`` and the text of ``mlx --help`` (kept apart
from cli/main.py so that `mlx menubar`, run every few seconds, never imports the parser)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mlxstate import __version__

__all__ = ["root"]


def _show_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"mlx (mlxstate) {__version__}\n")
        raise typer.Exit(0)


def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Declarative manager for local LLM model stores (Ollama, Hugging Face cache, LM Studio).

    Write the models you want in mlx.yaml, `mlx validate` it, then `mlx plan`.
    """
