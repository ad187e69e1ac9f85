"""``mlx status``: what is in every store, declared or not, managed or not."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, NoColorOpt, QuietOpt, Run, VerboseOpt
from mlxstate.cli._output import color_enabled, emit_json, human_age, human_bytes

__all__ = ["command", "render_status"]


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
        emit_json(doc)
        return
    if quiet:  # -q: only problems
        for warning in doc["warnings"]:
            sys.stderr.write(f"warning: {warning}\n")
        return
    render_status(doc, color=color_enabled(sys.stdout, no_color), verbose=verbose)


def _yes(flag: bool) -> str:
    return "yes" if flag else "-"


def render_status(doc: dict[str, Any], *, color: bool, verbose: bool = False) -> None:
    from rich.console import Console

    console = Console(
        no_color=not color,
        highlight=False,
        emoji=False,
        width=_width(),
        color_system="auto" if color else None,
    )
    _render_ollama(console, doc["stores"]["ollama"])
    _render_hf(console, doc["stores"]["huggingface"])
    _render_apps(console, doc["apps"], verbose)
    _render_duplicates(console, doc["duplicates"])
    _render_reclaimable(console, doc)
    for warning in doc["warnings"]:
        console.print(f"[yellow]warning:[/] {warning}", markup=True)


def _width() -> int | None:
    """The terminal's width on a TTY; 120 (or $COLUMNS) when piped, instead of rich's 80."""
    if sys.stdout.isatty():
        return None
    try:
        return max(60, int(os.environ.get("COLUMNS", "120")))
    except ValueError:
        return 120


def tilde(path: str) -> str:
    home = os.path.expanduser("~")
    return (
        "~" + path[len(home) :] if home not in ("", "/") and path.startswith(home + "/") else path
    )


def _table(title: str, *columns: str) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in columns:
        if column in ("SIZE", "BYTES", "RECLAIMABLE", "COPIES"):
            table.add_column(column, justify="right", no_wrap=True)
        elif column in ("PATH", "REVISION", "REPO", "MODEL"):
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, no_wrap=True)
    return table


_STATUS_STYLE = {"ok": "green", "broken": "red", "partial": "yellow"}


def _status(value: str) -> str:
    return f"[{_STATUS_STYLE.get(value, 'white')}]{value}[/]"


def _render_ollama(console: Any, store: dict[str, Any]) -> None:
    daemon = store["daemon"]
    if daemon is None:
        state = "daemon not checked"
    elif daemon["reachable"]:
        state = f"daemon {daemon['version']} at {daemon['host']}"
    else:
        state = f"daemon not reachable at {daemon['host']}: {daemon['error']}"
    title = f"Ollama  {tilde(store['path'])}  ({state})"
    if not store["exists"]:
        console.print(f"{title}\n  no store here\n")
        return
    table = _table(title, "MODEL", "SIZE", "DECLARED AS", "MANAGED", "STATUS", "LAST USED")
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
    console.print()


def _render_hf(console: Any, cache: dict[str, Any]) -> None:
    title = f"Hugging Face cache  {tilde(cache['path'])}"
    if not cache["exists"]:
        console.print(f"{title}\n  no cache here\n")
        return
    table = _table(
        title, "REPO", "REVISION", "SIZE", "DECLARED AS", "MANAGED", "STATUS", "LAST USED"
    )
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
    console.print()


def _render_apps(console: Any, apps: list[dict[str, Any]], verbose: bool) -> None:
    if not apps:
        return
    table = _table("Apps", "APP", "PATH", "LINKS", "MANAGED", "DANGLING", "FOREIGN")
    for app in apps:
        entries = app["entries"]
        name = app["name"] if app["declared"] else f"{app['name']} (found, not in mlx.yaml)"
        table.add_row(
            name,
            tilde(app["path"]) + ("" if app["exists"] else " (missing)"),
            str(sum(e["kind"] == "link" for e in entries)),
            str(sum(e["managed"] for e in entries)),
            str(sum(e["kind"] == "dangling" for e in entries)),
            str(sum(not e["managed"] for e in entries)),  # anything mlx did not make
        )
    console.print(table)
    console.print()


def _render_duplicates(console: Any, groups: list[dict[str, Any]]) -> None:
    if not groups:
        return
    table = _table(
        "Duplicates (same bytes stored more than once)",
        "SHA256",
        "SIZE",
        "COPIES",
        "RECLAIMABLE",
        "PATH",
    )
    for g in groups:
        table.add_row(
            g["sha256"][:12],
            human_bytes(g["size"]),
            str(len(g["paths"])),
            human_bytes(g["reclaimable"]),
            "\n".join(tilde(p) for p in g["paths"]),
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
