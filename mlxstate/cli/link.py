"""``mlx link APP MODEL...`` and ``mlx unlink APP MODEL...``: edit ``apps.APP.models`` in
mlx.yaml, keeping everything else as written (docs/commands.md, "mlx link")."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from mlxstate.cli._common import FileOpt, JsonOpt, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.errors import MlxError

__all__ = ["link_command", "unlink_command"]

AppArg = Annotated[str, typer.Argument(help="The app's name in mlx.yaml (apps.APP).")]
ModelsArg = Annotated[list[str], typer.Argument(help="Model names declared in mlx.yaml.")]


def link_command(
    app: AppArg,
    models: ModelsArg,
    path: Annotated[
        str | None, typer.Option("--path", help="The app's folder, for a new app.")
    ] = None,
    layout: Annotated[
        Literal["dir", "lmstudio"] | None,
        typer.Option("--layout", help="dir (default) or lmstudio, for a new app."),
    ] = None,
    json_out: JsonOpt = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Link models into an app's folder (creates apps.APP with --path when missing)."""
    from mlxstate.cli.edit import open_for_edit
    from mlxstate.edit_tree import list_add, scalar_text, set_entry

    ed = open_for_edit(file, no_color, quiet, verbose)
    text, doc, shown, spec_path = ed.text, ed.doc, ed.shown, ed.path
    declared = doc.get("models") or {}
    for model in models:
        _check_declared(model, declared, shown)
    entry = (doc.get("apps") or {}).get(app)
    created = entry is None
    if created:
        if path is None:
            raise MlxError(
                f"no app named {app!r} in {shown}",
                hint=f"create it: `mlx link {app} {' '.join(models)} --path FOLDER`",
            )
        _check_name(app)
        text = set_entry(text, doc, ["apps", app, "path"], scalar_text(path))
        if layout is not None:
            text = _reload_and(
                text, shown, lambda t, d: set_entry(t, d, ["apps", app, "layout"], layout)
            )
        added = _unique(models)  # `mlx link app a a` lists `a` once, as on an existing app
        text = _reload_and(text, shown, lambda t, d: list_add(t, d, ["apps", app, "models"], added))
    else:
        _check_same(entry, app, path, layout, spec_path)
        linked = list(entry.get("models") or []) if isinstance(entry, dict) else []
        added = [m for m in _unique(models) if m not in linked]
        if added:
            text = list_add(text, doc, ["apps", app, "models"], added)
    if added:
        ed.commit(text)
    _report(json_out, quiet, "link", app, added, created, shown)


def unlink_command(
    app: AppArg,
    models: ModelsArg,
    json_out: JsonOpt = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Stop linking models into an app's folder (apply then removes the links mlx made)."""
    from mlxstate.cli.edit import open_for_edit
    from mlxstate.edit_tree import list_remove

    ed = open_for_edit(file, no_color, quiet, verbose)
    text, doc, shown = ed.text, ed.doc, ed.shown
    apps = doc.get("apps") or {}
    if app not in apps:
        raise MlxError(f"no app named {app!r} in {shown}", hint=_close(app, apps))
    linked = list(apps[app].get("models") or [])
    removed = [m for m in _unique(models) if m in linked]
    if removed:
        ed.commit(list_remove(text, doc, ["apps", app, "models"], removed))
    _report(json_out, quiet, "unlink", app, removed, False, shown)


def _report(
    json_out: bool, quiet: bool, verb: str, app: str, changed: list[str], created: bool, shown: str
) -> None:
    if json_out:
        from mlxstate.cli._output import emit_json

        key = "linked" if verb == "link" else "unlinked"
        emit_json(
            {"file": shown, "app": app, "created": created, key: changed, "changed": bool(changed)}
        )
        return
    if quiet:
        return
    if not changed:
        what = "already links" if verb == "link" else "does not link"
        sys.stdout.write(f"apps.{app} {what} them; {shown} is unchanged.\n")
        return
    names = ", ".join(changed)
    made = f"Created apps.{app}; " if created else ""
    done = f"linked {names} into" if verb == "link" else f"unlinked {names} from"
    sys.stdout.write(f"{made}{done} apps.{app} in {shown}. Run `mlx plan` to see the change.\n")


def _reload_and(text: str, shown: str, edit: Any) -> str:
    """Apply ``edit(text, doc)`` to the text of a previous edit (positions must be fresh)."""
    from mlxstate.mlxyaml.yamlpos import load_yaml

    result: str = edit(text, load_yaml(text, shown))
    return result


def _check_declared(model: str, declared: Any, shown: str) -> None:
    if model not in declared:
        raise MlxError(f"no model named {model!r} in {shown}", hint=_close(model, declared))


def _check_name(app: str) -> None:
    import re

    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", app):  # the name rule of mlx.yaml
        raise MlxError(f"invalid app name {app!r}: use a-z, 0-9, '.', '_' or '-' (64 at most)")


def _check_same(entry: Any, app: str, path: str | None, layout: str | None, spec: Path) -> None:
    """``--path``/``--layout`` create an app; on an existing one they must agree with it."""
    if not isinstance(entry, dict):
        raise MlxError(f"apps.{app} is not a mapping; fix it first (`mlx validate`)")
    base = spec.resolve().parent
    if path is not None and _folder(path, base) != _folder(str(entry.get("path", "")), base):
        raise MlxError(
            f"apps.{app} already has path {entry.get('path')!r}",
            hint="--path is for a new app; edit mlx.yaml to move an app",
        )
    if layout is not None and layout != (entry.get("layout") or "dir"):
        raise MlxError(f"apps.{app} already has layout {entry.get('layout') or 'dir'!r}")


def _folder(text: str, base: Path) -> Path:
    import os

    return base / os.path.expandvars(os.path.expanduser(text))


def _close(name: str, names: Any) -> str:
    import difflib

    close = difflib.get_close_matches(name, [str(n) for n in names], n=1)
    return f"did you mean {close[0]!r}?" if close else "`mlx status` lists what is declared"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
