"""``mlx add`` and ``mlx rm``: edit models in mlx.yaml, keeping everything else as written."""

from __future__ import annotations

import errno
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, Invocation, JsonOpt, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.errors import MlxError, SpecError, SpecNotFound

__all__ = ["add_command", "commit_edit", "load_for_edit", "rm_command"]

NEW_FILE = "# yaml-language-server: $schema={schema}\nversion: 1\n"


def _target(call: Invocation) -> tuple[Path, str, bool]:
    """(path, display, exists) of the file to edit; ``add`` creates a missing one (like
    ``brew bundle add``): the -f file, else $MLX_FILE, else ./mlx.yaml."""
    try:
        path, shown = call.find_spec()
        return path, shown, True
    except SpecNotFound:
        if call.file is not None:
            return call.file, str(call.file), False
        if call.env.MLX_FILE:
            path = call.env.expand(call.env.MLX_FILE)
            return path, str(path), False
        return Path("mlx.yaml"), "mlx.yaml", False


def commit_edit(call: Invocation, path: Path, shown: str, text: str) -> None:
    """Validate the edited text, then write it atomically; a bad edit changes nothing."""
    from mlxstate.fsutil import write_atomic
    from mlxstate.mlxyaml.load import parse_spec

    try:
        parse_spec(text, file=shown, base_dir=path.resolve().parent, env=call.env)
    except SpecError as exc:
        raise MlxError(
            f"the change would make {shown} invalid; nothing was written:\n{exc.message}"
        ) from None
    try:
        write_atomic(path, text.encode())
    except OSError as exc:
        raise MlxError(
            f"cannot write {shown}: {exc.strerror or exc}; the file is unchanged"
        ) from None


@dataclass(frozen=True)
class Editing:
    """An mlx.yaml open for an edit: validated, its text and its round-trip document."""

    call: Invocation
    path: Path
    shown: str
    text: str
    doc: Any

    def commit(self, text: str) -> None:
        """Validate ``text`` and write it atomically in place of the file."""
        commit_edit(self.call, self.path, self.shown, text)


def open_for_edit(file: Path | None, no_color: bool, quiet: bool, verbose: bool) -> Editing:
    """Find mlx.yaml as every command does and load it for an edit (an invalid file is
    refused: an edit never builds on errors)."""
    call = Invocation.make(file, no_color, quiet, verbose)
    path, shown = call.find_spec()
    text, doc = load_for_edit(call, path, shown)
    return Editing(call, path, shown, text, doc)


def load_for_edit(call: Invocation, path: Path, shown: str) -> tuple[str, Any]:
    from mlxstate.mlxyaml.load import load_spec

    loaded = load_spec(path, call.env, display=shown)  # refuse to edit an invalid file
    # The text that was validated (read once, size-capped, CRLF kept), not a second read.
    return loaded.text, loaded.document


def check_target(path: Path, shown: str) -> None:
    """Refuse to write where a symlink loop, a folder or a device is (``os.replace`` onto
    ``/dev/null`` would replace the device itself)."""
    if path.is_symlink() and not path.exists():
        try:
            os.stat(path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise MlxError(f"{shown} is a symlink loop; fix or remove the link") from None
        return  # a dangling link: its target is created (a dotfiles link made first)
    if path.exists() and not path.is_file():
        raise MlxError(f"{shown} is not a regular file; mlx writes mlx.yaml only as a file")


def _parse_new_source(source: str, base_dir: Path) -> Any:
    """The parsed SOURCE of ``mlx add``; a Hub URL or a bare name gets the form to use."""
    from mlxstate.sources import parse_source, suggest_source

    try:
        parsed = parse_source(source, base_dir)
    except ValueError as exc:
        meant = suggest_source(source)
        hint = f"run `mlx add {meant}`" if meant else None
        raise MlxError(f"invalid source {source!r}: {exc}", hint=hint) from None
    return parsed


def _require_file(parsed: Any) -> None:
    from mlxstate.sources import FileSource

    if isinstance(parsed, FileSource) and not parsed.path.exists():
        # Checked now, not at the next plan: nothing is written for a path that is not there.
        raise MlxError(
            f"{parsed.path} does not exist; file:// sources name a file or folder already "
            "on disk (mlx never downloads them)"
        )


def add_command(
    source: Annotated[
        str, typer.Argument(help="hf://ORG/REPO, ollama://MODEL[:TAG] or file://PATH")
    ],
    name: Annotated[
        str | None, typer.Option("--name", help="Name in mlx.yaml (default: derived).")
    ] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="hf: branch, tag or commit.")
    ] = None,
    include: Annotated[
        list[str] | None,
        typer.Option("--include", help="hf: only files matching GLOB (repeatable)."),
    ] = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", help="hf: skip files matching GLOB (repeatable)."),
    ] = None,
    json_out: JsonOpt = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Add a model to mlx.yaml (comments and formatting are kept)."""
    from mlxstate.edit import add_model
    from mlxstate.inventory import SCHEMA_URL
    from mlxstate.mlxyaml.yamlpos import load_yaml
    from mlxstate.naming import derive_name

    call = Invocation.make(file, no_color, quiet, verbose)
    path, shown, exists = _target(call)
    check_target(path, shown)
    parsed = _parse_new_source(source.strip(), path.resolve().parent)
    if exists:
        text, doc = load_for_edit(call, path, shown)
    else:
        text = NEW_FILE.format(schema=SCHEMA_URL)
        doc = load_yaml(text, shown)
    models = (doc.get("models") or {}) if isinstance(doc, dict) else {}
    if name is not None and not name.strip():
        raise MlxError("--name must not be empty")
    _check_new(models, name, parsed, revision, path)
    _require_file(parsed)
    chosen = name or derive_name(parsed, set(models))
    fields: dict[str, Any] = {"source": source.strip()}
    for key, value in (("revision", revision), ("include", include), ("exclude", exclude)):
        if value:
            fields[key] = value
    commit_edit(call, path, shown, add_model(text, doc, chosen, fields))
    if json_out:
        _emit({"file": shown, "name": chosen, "source": source.strip(), "created": not exists})
    elif not quiet:
        sys.stdout.write(
            f"Added models.{chosen} ({source.strip()}) to {shown}. "
            "Run `mlx plan` to see the change.\n"
        )


def _check_new(
    models: Any, name: str | None, parsed: Any, revision: str | None, path: Path
) -> None:
    from mlxstate.sources import HfSource, parse_source

    if name is not None and name in models:
        raise MlxError(
            f"models.{name} already exists", hint="choose another --name, or `mlx rm` it first"
        )
    for existing, entry in models.items():
        raw = entry.get("source") if isinstance(entry, dict) else None
        try:
            other = parse_source(str(raw).strip(), path.resolve().parent)
        except ValueError:
            continue
        same_rev = not isinstance(parsed, HfSource) or (entry.get("revision") or "main") == (
            revision or "main"
        )
        if str(other).lower() == str(parsed).lower() and same_rev:
            raise MlxError(f"{parsed} is already declared as models.{existing}")


def rm_command(
    name: Annotated[str, typer.Argument(help="The model's name in mlx.yaml.")],
    json_out: JsonOpt = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Remove a model from mlx.yaml (the files stay until `mlx apply` prunes them)."""
    from mlxstate.edit import remove_model

    ed = open_for_edit(file, no_color, quiet, verbose)
    text, doc, shown = ed.text, ed.doc, ed.shown
    models = doc.get("models") or {}
    if name not in models:
        import difflib

        close = difflib.get_close_matches(name, [str(m) for m in models], n=1)
        raise MlxError(
            f"no model named {name!r} in {shown}",
            hint=f"did you mean {close[0]!r}?" if close else "`mlx status` lists what is declared",
        )
    users = _users(doc, name)
    if users:
        raise MlxError(
            f"models.{name} is used by {', '.join(users)}",
            hint=f"remove {name!r} from there first, then run `mlx rm {name}` again",
        )
    ed.commit(remove_model(text, doc, name))
    if json_out:
        _emit({"file": shown, "name": name, "source": str(models[name].get("source", ""))})
    elif not quiet:
        sys.stdout.write(
            f"Removed models.{name} from {shown}. `mlx plan` shows what happens to its files: "
            "with `prune: true`, mlx deletes them if it installed them; otherwise they stay.\n"
        )


def _emit(document: dict[str, Any]) -> None:
    from mlxstate.cli._output import emit_json

    emit_json(document)


def _users(doc: Any, name: str) -> list[str]:
    out = []
    for section in ("apps", "benchmarks"):
        for owner, entry in (doc.get(section) or {}).items():
            if isinstance(entry, dict) and name in (entry.get("models") or []):
                out.append(f"{section}.{owner}")
    return out
