"""The order actions run in, what an Ollama delete really frees, and unknown-size warnings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from mlxstate.facts import Observed
from mlxstate.keys import ollama_key
from mlxstate.plan.actions import OP_ORDER, Action
from mlxstate.plan.context import key_of, parse_or_none
from mlxstate.sources import Source

__all__ = ["exclusive_ollama_frees", "order_key", "unknown_size_warnings"]


def order_key(action: Action) -> tuple[int, int, str]:
    """Links to remove first (before their model goes), then models (deletes first: they
    free space), then the links that point at the models just installed."""
    phase = 1
    if action.family in ("cleanup", "dedup"):
        phase = -1  # garbage and duplicates go first: they free space for the downloads
    elif action.family == "link":
        phase = 0 if action.op == "delete" else 2
    return phase, OP_ORDER[action.op], action.id


def exclusive_ollama_frees(actions: list[Action], observed: Observed) -> list[Action]:
    """An Ollama delete (or the old side of a replace) frees only blobs no remaining model
    uses (models share layers: `ollama cp` aliases share all of them), counted once."""
    by_key = {ollama_key(m): m for m in observed.ollama.models}
    gone = {key_of(s) for a in actions if (s := _removed(a)) is not None}
    kept = {d.digest for k, m in by_key.items() if k not in gone for d in m.all_layers}
    counted: set[str] = set()
    out = []
    for action in actions:
        src = _removed(action)
        model = by_key.get(key_of(src)) if src is not None else None
        if model is not None:
            sizes = {x.digest: x.on_disk or 0 for x in model.all_layers}
            freed = sum(n for d, n in sizes.items() if d not in kept and d not in counted)
            counted |= set(sizes)
            action = replace(action, free_bytes=freed)
        out.append(action)
    return out


def _removed(action: Action) -> Source | None:
    """The model an action takes out of the Ollama store, if any."""
    if action.kind == "ollama.delete":
        return parse_or_none(action.subject)
    old = action.replaces or ""
    return parse_or_none(old) if action.op == "replace" and old.startswith("ollama://") else None


def unknown_size_warnings(actions: Sequence[Action]) -> list[str]:
    ollama = sum(a.download_bytes is None and a.kind == "ollama.pull" for a in actions)
    hf = sum(a.download_bytes is None and a.kind == "hf.download" for a in actions)
    out = []
    if ollama:
        out.append(
            f"download size unknown for {ollama} Ollama pull{'s' if ollama != 1 else ''} "
            "(the registry is only asked during the pull)"
        )
    if hf:
        out.append(
            f"download size unknown for {hf} Hugging Face repo{'s' if hf != 1 else ''} "
            "not listed locally; `mlx plan --refresh` asks the hub"
        )
    return out
