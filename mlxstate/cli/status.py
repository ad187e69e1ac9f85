"""``mlx status``: what is in every store, declared or not, managed or not."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from io import StringIO
from typing import Annotated, Any, TextIO

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
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
    call = Invocation.make(file, no_color, quiet, verbose)
    doc = call.session().status().document
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


def _owned(item: dict[str, Any], workspace: str | None) -> str:
    """MANAGED: ``yes`` when this mlx.yaml's workspace is the only owner, else who owns it
    (``legacy``: recorded before workspaces existed)."""
    if not item["managed"]:
        return "-"
    owners = ["legacy" if o.startswith("(") else o for o in item.get("owners", [])]
    if owners == [workspace]:
        return "yes"
    return ", ".join("yes" if o == workspace else o for o in owners) or "yes"


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
    out = out or sys.stdout
    tty = out.isatty() if tty is None else tty
    if not tty and not color:
        # Piped and plain (what scripts and `| grep` see): laid out here, as rich would,
        # without rich's import and per-cell rendering (a third of the command's time).
        plain = _PlainConsole()
        try:
            _render_all(plain, doc, verbose, tty)
        except _NeedsRich:
            pass  # text whose layout rich decides differently: let rich do it all
        else:
            out.write("".join(line.rstrip() + "\n" for line in plain.lines))
            return
    _render_rich(doc, color=color, verbose=verbose, out=out, tty=tty, width=width)


def _render_rich(
    doc: dict[str, Any], *, color: bool, verbose: bool, out: TextIO, tty: bool, width: int | None
) -> None:
    from rich.console import Console

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
    _render_all(console, doc, verbose, tty)
    if not tty:
        assert isinstance(target, StringIO)
        out.write("".join(line.rstrip() + "\n" for line in target.getvalue().splitlines()))


def _render_all(console: Any, doc: dict[str, Any], verbose: bool, tty: bool) -> None:
    workspace = doc.get("workspace")
    _render_ollama(console, doc["stores"]["ollama"], tty, workspace)
    _render_hf(console, doc["stores"]["huggingface"], tty, workspace)
    _render_missing(console, doc.get("missing", []), tty)
    _render_apps(console, doc["apps"], verbose, tty)
    _render_duplicates(console, doc["duplicates"], tty)
    _render_reclaimable(console, doc)


class _NeedsRich(Exception):
    """Text the plain layout does not reproduce byte for byte (markup, wide or control
    characters, lines near the pipe width)."""


# The only markup the renderers write: a colour around a status or a model name.
_OWN_TAG = re.compile(r"\[(?:red|green|yellow|white)\]|\[/\]")
_PRINTABLE = re.compile(r"[ -~\n]*")  # ASCII: one character, one column


def _literal(text: str) -> str:
    if "\t" in text or not _PRINTABLE.fullmatch(text) or len(text) > _PIPE_WIDTH // 2:
        raise _NeedsRich
    return text


def _plain_text(text: str) -> str:
    """``text`` as rich prints it without colour, when that is just the text minus our own
    tags; _NeedsRich otherwise."""
    tags = _OWN_TAG.findall(text)
    if tags:
        # Our tags come in pairs, opened then closed; anything else is markup from data.
        pairs = tags[0::2], tags[1::2]
        if len(pairs[0]) != len(pairs[1]) or "[/]" in pairs[0] or set(pairs[1]) != {"[/]"}:
            raise _NeedsRich
        text = _OWN_TAG.sub("", text)
    if "[" in text:
        raise _NeedsRich
    return _literal(text)


class _PlainConsole:
    """The part of rich's Console the renderers use, printing what rich prints to a pipe
    with no colour (every line is right-stripped afterwards, as for rich)."""

    width = _PIPE_WIDTH

    def __init__(self) -> None:
        self.lines: list[str] = []

    def print(self, text: str = "", *, markup: bool = True, overflow: str = "") -> None:
        self.lines.extend((_plain_text(text) if markup else _literal(text)).split("\n"))

    def table(self, columns: Sequence[str], rows: list[tuple[str, ...]]) -> None:
        """rich's SIMPLE_HEAD table, no edges: columns 3 apart, numbers right-aligned,
        a rule under the header, a cell's lines below each other."""
        cells = [[_plain_text(cell).split("\n") for cell in row] for row in rows]
        widths = [
            max([len(column), *(len(line) for row in cells for line in row[i])])
            for i, column in enumerate(columns)
        ]
        if sum(widths) + _GAP * len(widths) > _PIPE_WIDTH // 2:
            raise _NeedsRich
        right = [column in _NUMBERS for column in columns]
        gap = " " * _GAP

        def line(texts: Sequence[str]) -> str:
            return gap.join(
                t.rjust(w) if r else t.ljust(w)
                for t, w, r in zip(texts, widths, right, strict=True)
            )

        self.lines.append(line(columns))
        self.lines.append("\u2500" * (sum(widths) + _GAP * (len(widths) - 1)))
        for row in cells:
            for k in range(max(len(cell) for cell in row)):
                self.lines.append(line([cell[k] if k < len(cell) else "" for cell in row]))


_NUMBERS = ("SIZE", "BYTES", "RECLAIMABLE", "COPIES")
_NAMES = ("MODEL", "REPO", "APP", "NAME", "SOURCE")
_FOLDED = ("PATH", "REVISION")
_GAP = 3  # between columns: padding (0, 1) on both sides of a blank separator


class _Table:
    """Rows first, then a rich table sized to them: on a narrow terminal only names (cut
    with an ellipsis, never broken inside) and paths (folded) give up width; sizes, flags
    and ages always stay whole."""

    def __init__(self, tty: bool, *columns: str) -> None:
        self.tty, self.columns = tty, columns
        self.rows: list[tuple[str, ...]] = []

    def add_row(self, *cells: str) -> None:
        self.rows.append(cells)

    def print(self, console: Any) -> None:
        if isinstance(console, _PlainConsole):
            console.table(self.columns, self.rows)
            return
        from rich import box
        from rich.table import Table

        limits = self._limits(console.width) if self.tty else {}
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
        for i, column in enumerate(self.columns):
            if column in _NAMES:
                table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=limits.get(i))
            elif column in _FOLDED:
                table.add_column(column, overflow="fold", max_width=limits.get(i))
            else:
                table.add_column(
                    column,
                    justify="right" if column in _NUMBERS else "left",
                    no_wrap=True,
                    min_width=self._width(i),
                )
        for row in self.rows:
            table.add_row(*row)
        console.print(table)

    def _width(self, i: int) -> int:
        from rich.text import Text

        cells = [Text.from_markup(row[i]) for row in self.rows]
        lines = [len(line) for cell in cells for line in cell.plain.splitlines()]
        return max([len(self.columns[i]), *lines])

    def _limits(self, width: int) -> dict[int, int]:
        """Widest each name/path column may be so that the table fits ``width``."""
        flexible = [i for i, c in enumerate(self.columns) if c in _NAMES + _FOLDED]
        natural = {i: self._width(i) for i in range(len(self.columns))}
        fixed = sum(w for i, w in natural.items() if i not in flexible)
        room = width - fixed - _GAP * (len(self.columns) - 1)
        if not flexible or sum(natural[i] for i in flexible) <= room:
            return {}
        names = [i for i in flexible if self.columns[i] in _NAMES]
        folded = [i for i in flexible if i not in names]
        # Names first (they are what one looks for); a folded column keeps at least the 8
        # characters of a short commit.
        name_room = min(sum(natural[i] for i in names), room - 8 * len(folded))
        limits = _share(name_room, {i: natural[i] for i in names})
        return limits | _share(room - sum(limits.values()), {i: natural[i] for i in folded})


def _share(room: int, natural: dict[int, int]) -> dict[int, int]:
    """``room`` split in proportion to ``natural`` widths, at least 8 each."""
    wanted = sum(natural.values())
    return {i: max(8, min(w, room * w // wanted)) for i, w in natural.items()} if wanted else {}


def _table(tty: bool, *columns: str) -> _Table:
    return _Table(tty, *columns)


def _title(console: Any, text: str) -> None:
    console.print(text, markup=False, overflow="fold")


_STATUS_COLORS = {"ok": "green", "broken": "red", "partial": "yellow"}


def _status(value: str) -> str:
    return f"[{_STATUS_COLORS.get(value, 'white')}]{value}[/]"


def _total(console: Any, store: dict[str, Any], noun: str) -> None:
    count = store.get("count", 0)
    plural = noun if count == 1 else noun + "s"
    console.print(f"  total: {count} {plural}, {human_bytes(store.get('total_bytes'))}")


def _render_ollama(console: Any, store: dict[str, Any], tty: bool, workspace: str | None) -> None:
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
            _owned(m, workspace),
            _status(m["status"]),
            human_age(m["last_used"]),
        )
    table.print(console)
    for m in store["models"]:
        for problem in m["problems"]:
            console.print(f"  [red]{m['name']}[/]: {problem}")
    if daemon and daemon["running"]:
        console.print("  running: " + ", ".join(r["name"] for r in daemon["running"]))
    _total(console, store, "model")
    console.print()


def _render_hf(console: Any, cache: dict[str, Any], tty: bool, workspace: str | None) -> None:
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
            _owned(r, workspace),
            _status(r["status"]),
            human_age(r["last_used"]),
        )
    table.print(console)
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
    table.print(console)
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
    table.print(console)
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
    table.print(console)
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
    if doc.get("workspace"):
        console.print(f"Workspace: {doc['workspace']} (MANAGED yes: installed by this mlx.yaml)")
    if isinstance(doc.get("host"), dict):
        console.print(f"Host: {doc['host']['name']} (what `when: hosts` in mlx.yaml matches)")
    if "agent" in doc:
        console.print(agent_line(doc["agent"]), markup=False)


def agent_line(agent: dict[str, Any]) -> str:
    """The one "Agent" line: running or not, its Ready condition, the last apply."""
    if not agent["running"]:
        return "Agent: not running (`mlx watch` starts it)"
    conds = {c["type"]: c for c in agent["conditions"]}
    ready = conds.get("Ready", {})
    state = (
        "suspended"
        if agent["suspended"]
        else (
            "ready" if ready.get("status") == "True" else f"not ready ({ready.get('reason', '?')})"
        )
    )
    last = agent.get("last_applied") or {}
    applied = f", last applied {last['time']}" if last.get("time") else ""
    nxt = f", next run {agent['next_run']}" if agent.get("next_run") else ""
    bench = agent.get("next_benchmark") or {}
    if bench.get("time"):
        nxt += f", next benchmark {bench.get('benchmark')} {bench['time']}"
    return f"Agent: pid {agent['pid']}, {state}{applied}{nxt}"
