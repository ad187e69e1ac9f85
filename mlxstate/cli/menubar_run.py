"""`mlx menubar [-f FILE]` itself, without the option parser: SwiftBar runs it every few
seconds, so cli/main.py calls :func:`plain_run` before importing the parser at all
(docs/dashboard.md, "Menu bar"). Nothing here imports typer or pydantic on that path."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlxstate.cli._common import Invocation
    from mlxstate.dashboard.menubar_source import Sampler
    from mlxstate.seams import Seams

__all__ = ["plain_run", "show_menu"]


def _seams() -> Seams:
    from mlxstate.seams import CURRENT

    return CURRENT.get()


def _invocation(file: Path | None) -> Invocation:
    from mlxstate.cli._common import Invocation

    return Invocation.make(file, False, False, False)


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

    session = _invocation(file).session()
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
        module = importlib.import_module("mlxstate.dashboard.sampler")
    except ImportError:
        return None
    sample: Any = getattr(module, "sample", None)
    if not callable(sample):
        return None
    return lambda: sample(Path(spec_path) if spec_path else None)


def plain_run(args: Sequence[str]) -> bool:
    """`mlx menubar [-f FILE]`, the plugin's own call, without building the option parser
    (it builds a validator per option: half the run time of a command SwiftBar starts every
    10 s). False for any other arguments: the parser handles them, help and errors too."""
    if not args:
        show_menu(None)
    elif len(args) == 2 and args[0] in ("-f", "--file") and not args[1].startswith("-"):
        show_menu(Path(args[1]))
    else:
        return False
    return True


def show_menu(file: Path | None) -> None:
    """Print the plugin output for the mlx.yaml `file` (None: found as `mlx` finds it)."""
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
