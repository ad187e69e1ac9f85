"""``mlx status``: what is in every store, declared or not, managed or not."""

from __future__ import annotations

import sys
from io import StringIO
from typing import Annotated, Any, TextIO

import typer

from mlxstate.cli._common import FileOpt, NoColorOpt, QuietOpt, Run, VerboseOpt
from mlxstate.cli._output import color_enabled, emit_json, human_age, human_bytes, warn
from mlxstate.text import short_path

__all__ = ["command", "render_status"]

# Piped output is never wrapped: lines as long as their content, as `ls -l | cat` prints.
_PIPE_WIDTH = 100_000


def command(
    file: FileOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Show every model in every store, links, duplicates and reclaimable space."""
    run = Run.make(file, no_color, quiet, verbose)
    doc = run.status_document()
    if json_out:
        emit_json(doc)  # warnings are in the document
        return
    if not quiet:
        render_status(doc, color=color_enabled(sys.stdout, no_color), verbose=verbose)
        sys.stdout.flush()  # the tables, then the warnings: one order on a terminal
    for warning in doc["warnings"]:  # logs, not results: stderr, also with -q
        warn(warning)


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


def render_status(
    doc: dict[str, Any],
    *,
    color: bool,
    verbose: bool = False,
    out: TextIO | None = None,
    tty: bool | None = None,
    width: int | None = None,
) -> None:
    """The status tables on ``out`` (stdout). On a terminal they fit its width; piped,
    nothing is wrapped, cut or padded, and no line ends in spaces."""
    from rich.console import Console

    out = out or sys.stdout
    tty = out.isatty() if tty is None else tty
    target = out if tty else StringIO()
    console = Console(
        file=target,
        no_color=not color,
        highlight=False,
        emoji=False,
        width=width if tty else _PIPE_WIDTH,
        color_system="auto" if color else None,
        force_terminal=color or None,
    )
    _render_ollama(console, doc["stores"]["ollama"], tty)
    _render_hf(console, doc["stores"]["huggingface"], tty)
    _render_missing(console, doc.get("missing", []), tty)
    _render_apps(console, doc["apps"], verbose, tty)
    _render_duplicates(console, doc["duplicates"], tty)
    _render_reclaimable(console, doc)
    if not tty:
        assert isinstance(target, StringIO)
        out.write("".join(line.rstrip() + "\n" for line in target.getvalue().splitlines()))


def _table(tty: bool, *columns: str) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in columns:
        if column in ("SIZE", "BYTES", "RECLAIMABLE", "COPIES"):
            table.add_column(column, justify="right", no_wrap=True)
        elif column in ("MODEL", "REPO", "APP", "NAME", "SOURCE"):
            # A name is never broken inside: cut with an ellipsis when the terminal is narrow.
            table.add_column(column, no_wrap=True, overflow="ellipsis", min_width=8)
        elif column in ("PATH", "REVISION"):
            table.add_column(column, overflow="fold")  # only a terminal is narrow enough
        else:
            table.add_column(column, no_wrap=True)
    return table


def _title(console: Any, text: str) -> None:
    console.print(text, markup=False, overflow="fold")


_STATUS_COLORS = {"ok": "green", "broken": "red", "partial": "yellow"}


def _status(value: str) -> str:
    return f"[{_STATUS_COLORS.get(value, 'white')}]{value}[/]"


def _total(console: Any, store: dict[str, Any], noun: str) -> None:
    count = store.get("count", 0)
    plural = noun if count == 1 else noun + "s"
    console.print(f"  total: {count} {plural}, {human_bytes(store.get('total_bytes'))}")


def _render_ollama(console: Any, store: dict[str, Any], tty: bool) -> None:
    daemon = store["daemon"]
    if daemon is None:
        state = "daemon not checked"
    elif daemon["reachable"]:
        state = f"daemon {daemon['version']} at {daemon['host']}"
    else:
        state = f"daemon not reachable at {daemon['host']}: {daemon['error']}"
    _title(console, f"Ollama  {short_path(store['path'])}  ({state})")
    if not store["exists"]:
        console.print("  no store here\n")
        return
    table = _table(tty, "MODEL", "SIZE", "DECLARED AS", "MANAGED", "STATUS", "LAST USED")
    for m in store["models"]:
        table.add_row(
            m["name"],
            human_bytes(m["size"]),
            m["declared_as"] or "-",
            _yes(m["managed"]),
            _status(m["status"]),
            human_age(m["last_used"]),
        )
    console.print(table)
    for m in store["models"]:
        for problem in m["problems"]:
            console.print(f"  [red]{m['name']}[/]: {problem}")
    if daemon and daemon["running"]:
        console.print("  running: " + ", ".join(r["name"] for r in daemon["running"]))
    _total(console, store, "model")
    console.print()


def _render_hf(console: Any, cache: dict[str, Any], tty: bool) -> None:
    _title(console, f"Hugging Face cache  {short_path(cache['path'])}")
    if not cache["exists"]:
        console.print("  no cache here\n")
        return
    table = _table(tty, "REPO", "REVISION", "SIZE", "DECLARED AS", "MANAGED", "STATUS", "LAST USED")
    for r in cache["repos"]:
        repo = r["id"] if r["type"] == "model" else f"{r['type']}/{r['id']}"
        revisions = ", ".join(
            f"{rev['commit'][:8]}"
            + (f" ({', '.join(rev['refs'])})" if rev["refs"] else " (detached)")
            for rev in r["revisions"]
        )
        table.add_row(
            repo,
            revisions or "-",
            human_bytes(r["size"]),
            r["declared_as"] or "-",
            _yes(r["managed"]),
            _status(r["status"]),
            human_age(r["last_used"]),
        )
    console.print(table)
    _total(console, cache, "repo")
    console.print()


def _render_missing(console: Any, missing: list[dict[str, Any]], tty: bool) -> None:
    if not missing:
        return
    _title(console, "Declared in mlx.yaml, not present")
    table = _table(tty, "NAME", "SOURCE", "REVISION")
    for m in missing:
        source = m["source"]
        if m["store"] == "file":
            source = "file://" + short_path(source.removeprefix("file://"))
        table.add_row(m["name"], source, m["revision"] or "-")
    console.print(table)
    console.print("  `mlx plan` shows what `mlx apply` would do about them\n")


def _render_apps(console: Any, apps: list[dict[str, Any]], verbose: bool, tty: bool) -> None:
    if not apps:
        return
    _title(console, "Apps")
    table = _table(tty, "APP", "PATH", "LINKS", "MANAGED", "DANGLING", "FOREIGN")
    for app in apps:
        entries = app["entries"]
        name = app["name"] if app["declared"] else f"{app['name']} (found, not in mlx.yaml)"
        table.add_row(
            name,
            short_path(app["path"]) + ("" if app["exists"] else " (missing)"),
            str(sum(e["kind"] == "link" for e in entries)),
            str(sum(e["managed"] for e in entries)),
            str(sum(e["kind"] == "dangling" for e in entries)),
            str(sum(not e["managed"] for e in entries)),  # anything mlx did not make
        )
    console.print(table)
    console.print()


def _render_duplicates(console: Any, groups: list[dict[str, Any]], tty: bool) -> None:
    if not groups:
        return
    _title(console, "Duplicates (same bytes stored more than once)")
    table = _table(tty, "SHA256", "SIZE", "COPIES", "RECLAIMABLE", "PATH")
    for g in groups:
        table.add_row(
            g["sha256"][:12],
            human_bytes(g["size"]),
            str(len(g["paths"])),
            human_bytes(g["reclaimable"]),
            "\n".join(short_path(p) for p in g["paths"]),
        )
    console.print(table)
    console.print()


def _render_reclaimable(console: Any, doc: dict[str, Any]) -> None:
    r = doc["reclaimable"]
    parts = [
        f"duplicates {human_bytes(r['duplicates'])}",
        f"partial downloads {human_bytes(r['partials'])}",
        f"orphan blobs {human_bytes(r['orphans'])}",
        f"detached revisions {human_bytes(r['detached_revisions'])}",
    ]
    console.print(f"Reclaimable: {human_bytes(r['total'])} ({', '.join(parts)})")
