"""``mlx stats [--json]``: bytes per store, saved, reclaimable, reclaimed (docs/commands.md)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.text import human_bytes

__all__ = ["command"]


def command(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Bytes per store, saved by dedup and links, reclaimable by kind, reclaimed over time."""
    from mlxstate.cli._output import emit_json

    doc = Invocation.make(file, no_color, quiet, verbose).session().stats()
    if json_out:
        emit_json(doc)
    else:
        sys.stdout.write(render(doc))


def render(doc: dict[str, Any]) -> str:
    s, saved, free, back = doc["stores"], doc["saved"], doc["reclaimable"], doc["reclaimed"]
    o, h, a = s["ollama"], s["huggingface"], s["apps"]
    rows = [
        "Stores",
        _row("Ollama", o["bytes"], f"{o['models']} models", o["garbage_bytes"]),
        _row("Hugging Face", h["bytes"], f"{h['repos']} repos", h["garbage_bytes"]),
        _row("App folders", a["bytes"], f"{a['files']} files, {a['links']} links"),
        "Saved",
        _row("by dedup", saved["dedup"]["bytes"], f"{saved['dedup']['files']} files"),
        _row("by links", saved["links"]["bytes"], f"{saved['links']['links']} links"),
        "Reclaimable (mlx clean; dedup: settings.dedup)",
        *(_row(k.replace("_", " "), v) for k, v in free.items()),
        "Reclaimed (from the apply journal)",
        *(_row(m["month"], m["bytes"], f"{m['actions']} actions") for m in back["by_month"]),
        _row("total", back["bytes"]),
    ]
    return "\n".join(rows) + "\n"


def _row(label: str, size: int, what: str = "", garbage: int = 0) -> str:
    extra = f" (incl. {human_bytes(garbage)} partials/orphans)" if garbage else ""
    return f"  {label:<20} {human_bytes(size):>10}  {what}{extra}".rstrip()
