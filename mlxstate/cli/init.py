"""``mlx init``: write an mlx.yaml that declares what is installed now."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mlxstate.cli._common import FileOpt, Invocation, JsonOpt, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.errors import MlxError, SpecError

__all__ = ["command"]


def command(
    file: FileOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    json_out: JsonOpt = False,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write mlx.yaml declaring the models installed now (like `brew bundle dump`)."""
    from mlxstate.cli.edit import check_target
    from mlxstate.fsutil import write_atomic
    from mlxstate.inventory import dump_spec
    from mlxstate.mlxyaml.load import parse_spec
    from mlxstate.observe.scan import observe

    call = Invocation.make(file, no_color, quiet, verbose)
    target = call.file or (
        call.env.expand(call.env.MLX_FILE) if call.env.MLX_FILE else Path("mlx.yaml")
    )
    if target.exists() and not force:
        raise MlxError(
            f"{target} already exists; mlx init never overwrites it",
            hint="pass --force to replace it, or add models with `mlx add SOURCE`",
        )
    check_target(target, str(target))
    settings = call.settings(None)
    # The LM Studio folder `mlx status` shows is observed too, so that it becomes an app.
    lmstudio = call.env.lmstudio_home() / "models"
    observed = observe(settings, None, probe=False, lmstudio_models=lmstudio, duplicates=False)
    result = dump_spec(observed)
    try:  # the generated file must be valid before anything is written
        parse_spec(result.text, file=str(target), base_dir=target.resolve().parent, env=call.env)
    except SpecError as exc:
        raise RuntimeError(f"mlx init generated an invalid file:\n{exc.message}") from exc
    try:
        write_atomic(target, result.text.encode())
    except OSError as exc:
        raise MlxError(f"cannot write {target}: {exc.strerror or exc}") from None
    if json_out:
        from mlxstate.cli._output import emit_json

        emit_json(
            {
                "file": str(target.absolute()),
                "ollama": result.ollama,
                "hf": result.hf,
                "apps": list(result.apps),
                "skipped": list(result.skipped),
            }
        )
    elif not quiet:
        skipped = f"; skipped {len(result.skipped)} (datasets, spaces)" if result.skipped else ""
        apps = f", {len(result.apps)} app folder(s)" if result.apps else ""
        sys.stdout.write(
            f"Wrote {target}: {result.ollama} Ollama models, "
            f"{result.hf} Hugging Face repos{apps}{skipped}.\n"
            "Next: `mlx plan` (it should say No changes), then edit the file to taste.\n"
        )
