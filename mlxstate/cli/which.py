"""``mlx which NAME``: what a declared model resolves to on this machine (docs/commands.md).

Offline and quick enough for scripts (``llama-server -m "$(mlx which NAME --json | jq
-r .gguf)"``): it reads only that model's manifest or repo folder.
"""

from __future__ import annotations

from typing import Annotated

import typer

from mlxstate.cli._common import FileOpt, NoColorOpt, QuietOpt, VerboseOpt

__all__ = ["command"]


def command(
    name: Annotated[
        str,
        typer.Argument(
            help="A model name from mlx.yaml (or its declared source).", show_default=False
        ),
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show what a declared model is on disk: Ollama name, GGUF and mmproj blobs, or the HF
    snapshot and files. Exit 1 when it is not declared or not present."""
    from mlxstate.cli.which_run import run

    code = run(name, json_out=json_out, file=file, no_color=no_color, quiet=quiet)
    if code:
        raise typer.Exit(code)
