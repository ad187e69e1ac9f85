"""``mlx import SOURCE`` and ``mlx forget SOURCE``: change who owns a model, not its files.

``import`` makes a model that is already in its store managed by this mlx.yaml's workspace
(prune may then delete it when the file stops declaring it); ``forget`` drops this
workspace's claim; the files stay, and become the user's when no workspace owns them
(docs/apply.md, "Ownership").
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mlxstate.cli._common import (
    FileOpt,
    Invocation,
    JsonOpt,
    NoColorOpt,
    QuietOpt,
    VerboseOpt,
    lock_seconds,
)

__all__ = ["forget_command", "import_command"]

SourceArg = Annotated[
    str, typer.Argument(help="The model: ollama://NAME[:TAG] or hf://ORG/REPO.", show_default=False)
]
LockTimeoutOpt = Annotated[
    str, typer.Option("--lock-timeout", help="Wait this long for a running apply (e.g. 30s).")
]


def import_command(
    source: SourceArg,
    name: Annotated[
        str | None, typer.Option("--name", help="Name to record when mlx.yaml does not declare it.")
    ] = None,
    lock_timeout: LockTimeoutOpt = "0s",
    json_out: JsonOpt = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Make a model already in its store managed by this mlx.yaml (prune may delete it)."""
    call = Invocation.make(file, no_color, quiet, verbose)
    wait = lock_seconds(lock_timeout)
    done = call.session().import_model(source, name, wait)
    if json_out:
        from mlxstate.cli._output import emit_json

        emit_json(
            {
                "source": done.source,
                "name": done.name,
                "workspace": done.workspace,
                "changed": not done.already,
            }
        )
        return
    if done.already:
        _say(quiet, f"{done.source} is already managed by workspace {done.workspace}")
    else:
        _say(
            quiet,
            f"{done.source} is now managed by workspace {done.workspace} as {done.name!r}: "
            "prune: true deletes it once mlx.yaml no longer declares it",
        )


def forget_command(
    source: SourceArg,
    lock_timeout: LockTimeoutOpt = "0s",
    json_out: JsonOpt = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Drop this mlx.yaml's claim on a model; its files stay where they are."""
    call = Invocation.make(file, no_color, quiet, verbose)
    wait = lock_seconds(lock_timeout)
    done = call.session().forget(source, wait)
    if json_out:
        from mlxstate.cli._output import emit_json

        emit_json(
            {
                "source": done.source,
                "workspace": done.workspace,
                "still_owned_by": list(done.still_owned_by),
                "managed": bool(done.still_owned_by),
            }
        )
        return
    if not done.still_owned_by:
        _say(quiet, f"{done.source} is no longer managed: its files stay, and are yours")
    else:
        owners = ", ".join(done.still_owned_by)
        _say(
            quiet,
            f"workspace {done.workspace} no longer owns {done.source}; still owned by {owners}",
        )


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        sys.stdout.write(text + "\n")
