"""``mlx menubar [install|uninstall]``: SwiftBar/xbar plugin output, and the plugin file
(docs/dashboard.md, "Menu bar"). Parse → locate the snapshot → render."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlxstate.cli._common import FileOpt, Invocation, QuietOpt

if TYPE_CHECKING:
    from mlxstate.seams import Seams

__all__ = ["app"]

app = typer.Typer(
    help="SwiftBar/xbar plugin output; `install` puts the plugin in SwiftBar's folder.",
)

DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        help="The plugin folder (default: SwiftBar's, from its preferences).",
        show_default=False,
    ),
]


def _seams() -> Seams:
    from mlxstate.seams import CURRENT

    return CURRENT.get()


def _mlx() -> tuple[str, ...]:
    from mlxstate.watch.service import program_argv

    return program_argv()


@app.callback(invoke_without_command=True)
def show(ctx: typer.Context, file: FileOpt = None) -> None:
    """Print the plugin output: what the SwiftBar plugin shows (header, ---, the menu)."""
    if ctx.invoked_subcommand is None:
        from mlxstate.cli.menubar_run import show_menu

        show_menu(file)


def _spec_for_plugin(file: Path | None) -> str | None:
    from mlxstate.errors import SpecNotFound

    if file is not None:
        return os.path.abspath(file)
    try:
        path, _ = Invocation.make(None, False, False, False).find_spec()
    except SpecNotFound:
        return None  # the plugin then looks where `mlx` looks by default
    return os.path.abspath(path)


@app.command("install")
def install_command(
    folder: DirOpt = None,
    file: FileOpt = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the plugin; write nothing.")
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replace a plugin file mlx did not write.")
    ] = False,
    quiet: QuietOpt = False,
) -> None:
    """Write the executable plugin mlx.10s.sh (absolute mlx, absolute -f mlx.yaml)."""
    from mlxstate.dashboard.menubar_install import install_plugin, plugin_folder, plugin_text

    text = plugin_text(_mlx(), _spec_for_plugin(file), os.environ)
    if print_only:
        sys.stdout.write(text)
        return
    seams = _seams()
    path = install_plugin(plugin_folder(folder, seams.platform, seams.run_command), text, force)
    if not quiet:
        sys.stdout.write(f"menu bar plugin installed: {path}\n")


@app.command("uninstall")
def uninstall_command(folder: DirOpt = None, quiet: QuietOpt = False) -> None:
    """Remove the plugin file mlx wrote (nothing else)."""
    from mlxstate.dashboard.menubar_install import plugin_folder, uninstall_plugin

    seams = _seams()
    path = uninstall_plugin(plugin_folder(folder, seams.platform, seams.run_command))
    if not quiet:
        sys.stdout.write(f"menu bar plugin removed: {path}\n")
