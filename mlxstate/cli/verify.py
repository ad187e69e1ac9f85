"""``mlx verify [NAME…]``: re-hash stored files against their names (docs/commands.md)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.text import human_bytes, short_path

if TYPE_CHECKING:
    from mlxstate.verify import Problem, VerifyReport

__all__ = ["command"]


def command(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="mlx.yaml names or sources (default: every installed model)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    rehash: Annotated[
        bool, typer.Option("--rehash", help="Read every file again; ignore the hash cache.")
    ] = False,
    jobs: Annotated[
        int | None,
        typer.Option("-j", "--jobs", min=1, help="Files hashed at once (default: one a core)."),
    ] = None,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Re-hash stored files against their sha256/git names; exit 1 naming each bad one."""
    from mlxstate.cli._output import HashingNotice, emit_json

    call = Invocation.make(file, no_color, quiet, verbose)
    notice = None if quiet else HashingNotice(purpose="to verify")
    report = call.session().verify(names or (), notice, use_cache=not rehash, jobs=jobs)
    if json_out:
        emit_json(report.to_json())
    else:
        _text(report, quiet)
    if not report.ok:
        raise typer.Exit(1)


def _text(report: VerifyReport, quiet: bool) -> None:
    for p in report.problems:
        sys.stdout.write(_line(p) + "\n")
    if not report.ok:
        sys.stdout.write(
            f"{len(report.problems)} of {report.files} files do not match their names; "
            "pull or download the models named above again (mlx apply repairs them)\n"
        )
    elif not quiet:
        cached = f", {report.cached} from the hash cache" if report.cached else ""
        sys.stdout.write(
            f"Verified {report.files} files ({human_bytes(report.bytes)}{cached}): "
            "all match their names.\n"
        )


def _line(p: Problem) -> str:
    c = p.check
    what = {
        "mismatch": f"corrupt: {short_path(str(c.path))} hashes to {c.algo} "
        f"{(p.actual or '')[:12]}…, its name says {c.expected[:12]}…",
        "missing": f"missing: {short_path(str(c.path))}",
        "unreadable": f"unreadable: {short_path(str(c.path))}: {p.detail}",
    }[p.problem]
    return f"{what}; breaks {', '.join(sorted(c.models))}"
