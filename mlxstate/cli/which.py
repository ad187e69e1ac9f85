"""``mlx which NAME``: what a declared model resolves to on this machine (docs/commands.md).

Offline and quick enough for scripts (``llama-server -m "$(mlx which NAME --json | jq
-r .gguf)"``): it reads only that model's manifest or repo folder.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.cli._output import color_enabled, emit_json, paint
from mlxstate.errors import MlxError
from mlxstate.text import human_bytes, printable

if TYPE_CHECKING:
    from mlxstate.one_model import ResolvedModel

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
    call = Invocation.make(file, no_color, quiet, verbose)
    try:
        found = call.session().resolve(name)
    except MlxError as exc:
        if not json_out:
            raise
        emit_json({"name": name, "present": False, "error": exc.message})
        raise typer.Exit(1) from None
    if json_out:
        emit_json(found.document())
    elif not quiet:
        _print(found, color_enabled(sys.stdout, no_color))
    if not found.present:
        if not json_out:
            sys.stderr.write(
                f"{printable(found.name)} is not present: install it with "
                f"`mlx apply --target {printable(found.name)}`\n"
            )
        raise typer.Exit(1)


def _print(found: ResolvedModel, color: bool) -> None:
    state = "present" if found.present else "not present"
    state = paint(state, "green" if found.present else "red", color)
    rows = [(printable(found.name), f"{printable(found.source)} ({state})")]
    if found.ollama_name is not None:
        rows.append(("ollama name", found.ollama_name))
    if found.hf_repo is not None:
        rows.append(("revision", f"{found.revision} = {found.commit or '(not cached)'}"))
    elif found.commit is not None:
        rows.append(("digest", found.commit))
    if found.path is not None:
        label = {"ollama": "manifest", "hf": "snapshot", "file": "path"}[found.kind]
        rows.append((label, str(found.path)))
    if found.files:
        size = sum(f.size for f in found.files)
        rows.append(("files", f"{len(found.files)} ({human_bytes(size)})"))
    for label, path in (("gguf", found.gguf), ("mmproj", found.mmproj)):
        if path is not None:
            rows.append((label, str(path)))
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        sys.stdout.write(f"{label:<{width}}  {printable(value)}\n")
