"""``mlx which NAME`` itself, with no option parser: scripts call it in loops
(``llama-server -m "$(mlx which NAME --json | jq -r .gguf)"``), so cli/main.py runs
:func:`plain_run` before importing the parser at all when the arguments are the plain
ones (a name, ``--json``, ``-f FILE``, ``--no-color``, ``-q``). Anything else (help, a
typo) goes through the parser, which calls :func:`run` the same way."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mlxstate.cli._output import color_enabled, emit_json, paint
from mlxstate.errors import MlxError
from mlxstate.text import human_bytes, printable

if TYPE_CHECKING:
    from mlxstate.one_model import ResolvedModel

__all__ = ["plain_args", "plain_run", "run"]


def run(name: str, *, json_out: bool, file: Path | None, no_color: bool, quiet: bool) -> int:
    """Print what ``name`` resolves to; the exit code (1: not declared or not present)."""
    from mlxstate.engine import Session
    from mlxstate.seams import CURRENT
    from mlxstate.settings import read_environment

    session = Session(read_environment(), file, CURRENT.get())
    try:
        found = session.resolve(name)
    except MlxError as exc:
        if not json_out:
            raise
        emit_json({"name": name, "present": False, "error": exc.message})
        return 1
    if json_out:
        emit_json(found.document())
    elif not quiet:
        _print(found, color_enabled(sys.stdout, no_color))
    if found.present:
        return 0
    if not json_out:
        sys.stderr.write(
            f"{printable(found.name)} is not present: install it with "
            f"`mlx apply --target {printable(found.name)}`\n"
        )
    return 1


def plain_args(args: list[str]) -> dict[str, object] | None:
    """The options of a plain call, or None when the parser must look at them."""
    name: str | None = None
    opts: dict[str, object] = {"json_out": False, "file": None, "no_color": False, "quiet": False}
    flags = {"--json": "json_out", "--no-color": "no_color", "-q": "quiet", "--quiet": "quiet"}
    rest = iter(args)
    for arg in rest:
        if arg in flags:
            opts[flags[arg]] = True
        elif arg in ("-f", "--file"):
            value = next(rest, None)
            if not value:
                return None
            opts["file"] = Path(value)
        elif arg.startswith("--file="):
            opts["file"] = Path(arg.removeprefix("--file="))
        elif arg.startswith("-") or name is not None:
            return None  # help, -v, an unknown option, a second name: the parser says
        else:
            name = arg
    if name is None:
        return None
    opts["name"] = name
    return opts


def plain_run(args: list[str]) -> int | None:
    """The exit code of a plain ``mlx which``; None when the parser must handle it."""
    opts = plain_args(args)
    if opts is None:
        return None
    name = str(opts.pop("name"))
    file = opts["file"]
    return run(
        name,
        json_out=bool(opts["json_out"]),
        file=file if isinstance(file, Path) else None,
        no_color=bool(opts["no_color"]),
        quiet=bool(opts["quiet"]),
    )


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
