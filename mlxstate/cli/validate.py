"""``mlx validate``: check mlx.yaml offline — schema and semantic rules (docs/mlx-yaml.md);
with ``--remote``, also that every source exists upstream (docs/ci.md).

It is what editors and pre-commit hooks run on every save, so it imports only what
loading a spec needs (no rich, httpx or huggingface_hub) unless ``--remote`` asks for more.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.cli._output import color_enabled, emit_json, paint
from mlxstate.errors import Diagnostic, MlxError, SpecError
from mlxstate.text import printable

if TYPE_CHECKING:
    from mlxstate.mlxyaml.load import LoadedSpec
    from mlxstate.remote_check import Resolve

__all__ = ["Validation", "command", "validate_file"]


class OutputFormat(StrEnum):
    text = "text"
    github = "github"


@dataclass(frozen=True)
class Validation:
    """The result of validating one file."""

    file: str
    diagnostics: tuple[Diagnostic, ...]
    summary: str = ""

    @property
    def valid(self) -> bool:
        return not self.diagnostics

    def to_json(self) -> dict[str, Any]:
        return {
            "valid": self.valid,
            "file": self.file,
            "errors": [
                {"path": d.path, "line": d.line, "col": d.col, "message": d.message}
                for d in self.diagnostics
            ],
        }


def validate_file(call: Invocation, *, remote: bool = False) -> Validation:
    """Find and validate the spec; a missing file raises ``SpecNotFound``. With ``remote``,
    a valid spec's sources are also resolved upstream."""
    from mlxstate.mlxyaml.load import load_spec

    path, shown = call.find_spec()
    try:
        loaded = load_spec(path, call.env, display=shown)
    except SpecError as exc:
        return Validation(shown, exc.diagnostics)
    if not remote:
        return _valid(loaded)
    return validate_remote(loaded, remote_resolver(call, loaded))


def validate_remote(loaded: LoadedSpec, resolve: Resolve) -> Validation:
    """A valid spec checked upstream: one diagnostic per source that cannot be resolved."""
    from mlxstate.remote_check import check_remote

    problems = check_remote(loaded, resolve)
    if problems:
        return Validation(loaded.display, problems)
    valid = _valid(loaded)
    return Validation(valid.file, (), valid.summary.removesuffix(".") + "; every source exists.")


def remote_resolver(call: Invocation, loaded: LoadedSpec) -> Resolve:
    """How ``mlx lock`` resolves a model, with this spec's settings (docs/lock.md): the
    hub at ``HF_ENDPOINT`` with the spec's token, Ollama tags at ``settings.ollama.registry``."""
    from mlxstate.lock.resolve import resolve_model

    settings = call.settings(loaded)
    return lambda name, spec: resolve_model(name, spec, settings)


def _valid(loaded: LoadedSpec) -> Validation:
    shown = loaded.display
    spec = loaded.spec
    counts = ", ".join(
        _plural(len(items), noun)
        for items, noun in (
            (spec.models, "model"),
            (spec.apps, "app"),
            (spec.benchmarks, "benchmark"),
        )
    )
    return Validation(shown, (), f"{shown} is valid ({counts}).")


def command(
    files: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Files to check (what pre-commit passes); default: -f or the usual places.",
            metavar="FILE",
            show_default=False,
        ),
    ] = None,
    file: FileOpt = None,
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="Also check upstream that every source exists (needs the network).",
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="text: FILE:LINE:COL lines; github: ::error annotations."),
    ] = OutputFormat.text,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Check mlx.yaml offline: schema and semantic rules; with --remote, also that every
    source exists upstream. Exit 0 valid, 1 invalid."""
    targets: list[Path | None] = [*([file] if file else []), *(files or [])] or [None]
    if json_out and len(targets) > 1:
        raise MlxError("--json checks one file; pass one FILE")
    valid = True
    for target in targets:
        call = Invocation.make(target, no_color, quiet, verbose)
        valid = _check_one(call, remote, json_out, output_format) and valid
    if not valid:
        raise typer.Exit(1)


def _check_one(call: Invocation, remote: bool, json_out: bool, output_format: OutputFormat) -> bool:
    """Validate and print one file; whether it is valid."""
    file = call.file
    try:
        outcome = validate_file(call, remote=remote)
    except MlxError as exc:
        if not json_out:
            raise
        emit_json(
            {"valid": False, "file": str(file) if file else None, "errors": [_plain_error(exc)]}
        )
        raise typer.Exit(1) from None
    quiet, no_color = call.quiet, call.no_color
    if json_out:
        emit_json(outcome.to_json())
    elif output_format is OutputFormat.github:
        _print_github(outcome, quiet)
    else:
        _print_text(outcome, quiet, color_enabled(sys.stdout, no_color))
    return outcome.valid


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _plain_error(exc: MlxError) -> dict[str, Any]:
    return {"path": "", "line": None, "col": None, "message": exc.message}


def _print_text(outcome: Validation, quiet: bool, color: bool) -> None:
    out = sys.stdout
    for d in outcome.diagnostics:
        where = f"{printable(d.file)}:{d.line}:{d.col}:"
        what = printable(f"{d.path}: {d.message}" if d.path else d.message)
        out.write(f"{paint(where, 'bold', color)} {paint('error:', 'red', color)} {what}\n")
    if outcome.diagnostics:
        n = len(outcome.diagnostics)
        if not quiet:
            out.write(f"{n} error{'s' if n != 1 else ''} in {printable(outcome.file)}\n")
    elif not quiet:
        out.write(paint(printable(outcome.summary), "green", color) + "\n")


def _github_escape(text: str, *, prop: bool = False) -> str:
    # GitHub workflow commands: data escapes % CR LF; property values also : and ,
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if prop else text


def _print_github(outcome: Validation, quiet: bool) -> None:
    for d in outcome.diagnostics:
        what = printable(f"{d.path}: {d.message}" if d.path else d.message)
        props = f"file={_github_escape(printable(d.file), prop=True)},line={d.line},col={d.col}"
        sys.stdout.write(f"::error {props}::{_github_escape(what)}\n")
    if outcome.valid and not quiet:
        sys.stdout.write(outcome.summary + "\n")
