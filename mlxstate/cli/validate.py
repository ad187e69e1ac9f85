"""``mlx validate``: check mlx.yaml offline — schema and semantic rules (docs/mlx-yaml.md).

It is what editors and pre-commit hooks run on every save, so it imports only what
loading a spec needs (no rich, httpx or huggingface_hub).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.cli._output import color_enabled, emit_json, paint
from mlxstate.errors import Diagnostic, MlxError, SpecError
from mlxstate.text import printable

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


def validate_file(call: Invocation) -> Validation:
    """Find and validate the spec; a missing file raises ``SpecNotFound``."""
    from mlxstate.mlxyaml.load import load_spec

    path, shown = call.find_spec()
    try:
        loaded = load_spec(path, call.env, display=shown)
    except SpecError as exc:
        return Validation(shown, exc.diagnostics)
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
    file: FileOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="text: FILE:LINE:COL lines; github: ::error annotations."),
    ] = OutputFormat.text,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Check mlx.yaml offline: schema and semantic rules. Exit 0 valid, 1 invalid."""
    call = Invocation.make(file, no_color, quiet, verbose)
    try:
        outcome = validate_file(call)
    except MlxError as exc:
        if not json_out:
            raise
        emit_json(
            {"valid": False, "file": str(file) if file else None, "errors": [_plain_error(exc)]}
        )
        raise typer.Exit(1) from None
    if json_out:
        emit_json(outcome.to_json())
    elif output_format is OutputFormat.github:
        _print_github(outcome, quiet)
    else:
        _print_text(outcome, quiet, color_enabled(sys.stdout, no_color))
    if not outcome.valid:
        raise typer.Exit(1)


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
