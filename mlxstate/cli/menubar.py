"""``mlx menubar [install|uninstall]``: SwiftBar/xbar plugin output, and the plugin file
(docs/dashboard.md, "Menu bar"). Parse → locate the snapshot → render."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, Invocation, QuietOpt

if TYPE_CHECKING:
    from mlxstate.dashboard.menubar_source import Sampler
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


def _locate(file: Path | None) -> tuple[str | None, Path]:
    """(absolute mlx.yaml or None, state folder). With ``-f`` and a file that does not set
    ``state_dir``, nothing is parsed: the plugin runs every few seconds."""
    from mlxstate.dashboard.menubar_source import state_dir_if_default

    if file is not None:
        spec = os.path.abspath(file)  # absolute, links kept (a dotfiles mlx.yaml)
        quick = state_dir_if_default(Path(spec), os.environ)
        if quick is not None:
            return spec, quick
    from mlxstate.errors import SpecError, SpecNotFound

    session = Invocation.make(file, False, False, False).session()
    try:
        path, _ = session.find_spec()
        spec_path: str | None = os.path.abspath(path)
    except SpecNotFound:
        if file is not None:
            raise
        spec_path = None
    try:
        loaded = session.load_optional()
    except SpecError:
        loaded = None  # an invalid file still has the agent's snapshot to show
    return spec_path, session.settings(loaded).state_dir


def _sampler(spec_path: str | None) -> Sampler | None:
    """A live sample when the agent's snapshot is missing or stale (None: no sampler)."""
    import importlib

    try:  # the sampler may be absent from a build of mlx: the agent's snapshot still works
        sampler = importlib.import_module("mlxstate.dashboard.sampler")
    except ImportError:
        return None
    sample: Any = getattr(sampler, "sample", None)
    return sample if callable(sample) else None


@app.callback(invoke_without_command=True)
def show(ctx: typer.Context, file: FileOpt = None) -> None:
    """Print the plugin output: what the SwiftBar plugin shows (header, ---, the menu)."""
    if ctx.invoked_subcommand is not None:
        return
    from mlxstate.dashboard.menubar import render_error
    from mlxstate.dashboard.menubar_source import produce
    from mlxstate.errors import MlxError

    mlx = _mlx()
    try:
        spec_path, state_dir = _locate(file)
    except MlxError as exc:
        # The menu bar shows the problem; a failing plugin would only show SwiftBar's ⚠.
        sys.stdout.write(render_error(exc.message, mlx, None))
        return
    now = _seams().clock()
    sys.stdout.write(produce(state_dir, now, mlx, spec_path, _sampler(spec_path)))


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
