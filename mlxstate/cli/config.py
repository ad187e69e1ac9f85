"""``mlx config get|set|unset KEY [VALUE]``: read and edit ``settings.*`` of mlx.yaml, keeping
everything else as written (docs/commands.md, "mlx config")."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, JsonOpt, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.errors import MlxError

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})

KeyArg = Annotated[
    str, typer.Argument(help="A setting: settings.prune, settings.cleanup.orphans, ...")
]


@app.command("get")
def get_command(
    key: KeyArg,
    json_out: JsonOpt = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print a setting: its value in mlx.yaml, else its default."""
    from mlxstate.cli.edit import open_for_edit
    from mlxstate.edit_tree import scalar_text

    path = setting_path(key)
    doc = open_for_edit(file, no_color, quiet, verbose).doc
    found, value = _lookup(doc, path)
    if not found:
        value = _default(path)
    if json_out:
        from mlxstate.cli._output import emit_json

        emit_json({"key": ".".join(path), "value": value, "set": found})
    else:
        sys.stdout.write(scalar_text(value) + "\n")


@app.command("set")
def set_command(
    key: KeyArg,
    value: Annotated[str, typer.Argument(help="A YAML scalar: true, 10GB, auto, ~/models, ...")],
    json_out: JsonOpt = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Set a setting in mlx.yaml (checked like `mlx validate` before writing)."""
    from mlxstate.cli.edit import open_for_edit
    from mlxstate.edit_tree import parse_scalar, scalar_text, set_entry

    path = setting_path(key)
    parsed = parse_scalar(value)
    ed = open_for_edit(file, no_color, quiet, verbose)
    text, doc = ed.text, ed.doc
    found, before = _lookup(doc, path)
    # Typed: `1` is not `true` (Python says True == 1), nor `1.0` the same text as `1`.
    changed = not found or (type(before), before) != (type(parsed), parsed)
    if changed:
        ed.commit(set_entry(text, doc, path, scalar_text(parsed)))
    _done(json_out, quiet, path, parsed, changed, f"Set {'.'.join(path)} = {scalar_text(parsed)}")


@app.command("unset")
def unset_command(
    key: KeyArg,
    json_out: JsonOpt = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Remove a setting from mlx.yaml (its default applies again)."""
    from mlxstate.cli.edit import open_for_edit
    from mlxstate.edit_tree import scalar_text, unset_entry

    path = setting_path(key)
    ed = open_for_edit(file, no_color, quiet, verbose)
    text, doc = ed.text, ed.doc
    found, _ = _lookup(doc, path)
    if found:
        ed.commit(unset_entry(text, doc, path))
    default = _default(path)
    name = ".".join(path)
    _done(
        json_out,
        quiet,
        path,
        default,
        found,
        f"Removed {name}; the default {scalar_text(default)} applies",
    )


def _done(
    json_out: bool, quiet: bool, path: list[str], value: Any, changed: bool, said: str
) -> None:
    name = ".".join(path)
    if json_out:
        from mlxstate.cli._output import emit_json

        emit_json({"key": name, "value": value, "changed": changed})
    elif not quiet:
        sys.stdout.write(
            (said if changed else f"{name} is already so; mlx.yaml is unchanged") + ".\n"
        )


def setting_path(key: str) -> list[str]:
    """``settings.a.b`` (or ``a.b``) as a path, when it names one setting (not a section)."""
    parts = key.strip().split(".")
    if parts[:1] != ["settings"]:
        parts = ["settings", *parts]
    leaves = _leaves()
    if ".".join(parts[1:]) not in leaves:
        import difflib

        close = difflib.get_close_matches(".".join(parts[1:]), leaves, n=1)
        hint = f"did you mean settings.{close[0]}?" if close else "see docs/mlx-yaml.md, settings"
        raise MlxError(f"unknown setting {key!r}", hint=hint)
    return parts


def _leaves(model: Any = None, prefix: str = "") -> list[str]:
    from pydantic import BaseModel

    from mlxstate.mlxyaml.models import SettingsSpec

    out: list[str] = []
    for name, field in (model or SettingsSpec).model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            out += _leaves(kind, f"{prefix}{name}.")
        else:
            out.append(prefix + name)
    return out


def _lookup(doc: Any, path: list[str]) -> tuple[bool, Any]:
    from mlxstate.edit_tree import plain

    node = doc
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, plain(node)


def _default(path: list[str]) -> Any:
    """The default as mlx.yaml would write it (``10m``, not the ``PT10M`` of a dump), so
    that ``config get`` prints a value ``config set`` accepts."""
    from pydantic import BaseModel

    from mlxstate.mlxyaml.models import SettingsSpec

    model: Any = SettingsSpec
    for part in path[1:-1]:
        model = model.model_fields[part].annotation
    default = model.model_fields[path[-1]].get_default(call_default_factory=True)
    if isinstance(default, bool | str | None):
        return default
    if isinstance(default, int | float) and not isinstance(default, BaseModel):
        return int(default) if isinstance(default, int) else float(default)
    node: Any = SettingsSpec().model_dump(mode="json")
    for part in path[1:]:
        node = node[part]
    return node
