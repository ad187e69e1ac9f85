"""``mlx stats``: where the bytes are, what mlx saved and what it gave back
(docs/commands.md, "mlx stats").

Built from what ``mlx status`` observes, the registry's dedup records, and the apply
journal (``journal.jsonl`` and its rotated ``journal.jsonl.1``), read as untrusted data:
a line that is not one of mlx's events is skipped.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlxstate.facts import Observed
from mlxstate.registry import RegistryFacts

__all__ = ["build_stats", "reclaimed"]

JOURNALS = ("journal.jsonl.1", "journal.jsonl")  # oldest first
MAX_READ = 4 << 20  # the journal rotates at 1 MiB: more than this is not ours


def build_stats(
    observed: Observed, facts: RegistryFacts, reclaimable: dict[str, int], state_dir: Path
) -> dict[str, Any]:
    return {
        "format": 1,
        "stores": _stores(observed),
        "saved": {"dedup": _dedup_saved(facts), "links": _link_saved(observed)},
        "reclaimable": reclaimable,
        "reclaimed": reclaimed(state_dir),
    }


def _stores(observed: Observed) -> dict[str, Any]:
    ollama, hf = observed.ollama, observed.hf
    blobs = {layer.digest: layer.on_disk or 0 for m in ollama.models for layer in m.all_layers}
    o_garbage = sum(f.size for f in (*ollama.partials, *ollama.orphans, *ollama.temps))
    h_garbage = sum(f.size for r in hf.repos for f in (*r.orphans, *r.incomplete))
    h_garbage += sum(f.size for f in hf.incomplete)
    files = [e for a in observed.apps for e in a.entries if e.kind == "file"]
    return {
        "ollama": {
            "bytes": sum(blobs.values()) + o_garbage,
            "models": len(ollama.models),
            "garbage_bytes": o_garbage,
        },
        "huggingface": {
            "bytes": sum(r.size_on_disk for r in hf.repos) + h_garbage,
            "repos": len(hf.repos),
            "garbage_bytes": h_garbage,
        },
        "apps": {
            "bytes": sum(e.size for e in files),
            "files": len(files),
            "links": sum(e.kind == "link" for a in observed.apps for e in a.entries),
        },
    }


def _dedup_saved(facts: RegistryFacts) -> dict[str, int]:
    """A deduplicated copy still linked saves its kept copy's size."""
    saved = count = 0
    for record in facts.dedups:
        try:
            st = os.stat(record.path)  # through the link: the bytes it shares
        except OSError:
            continue  # gone since: saves nothing now
        saved, count = saved + st.st_size, count + 1
    return {"bytes": saved, "files": count}


def _link_saved(observed: Observed) -> dict[str, int]:
    """An app link instead of a copy saves its target's bytes (a snapshot folder: the
    revision's files)."""
    folders = {str(rev.snapshot_path): rev.size for r in observed.hf.repos for rev in r.revisions}
    saved = count = 0
    for app in observed.apps:
        for entry in app.entries:
            if entry.kind != "link" or entry.target is None:
                continue
            size = folders.get(str(entry.target))
            if size is None:
                try:
                    st = os.stat(entry.target)
                except OSError:
                    continue
                size = st.st_size if not os.path.isdir(entry.target) else 0
            saved, count = saved + size, count + 1
    return {"bytes": saved, "links": count}


def reclaimed(state_dir: Path) -> dict[str, Any]:
    """Bytes freed by the deletes, cleanups and dedups applies carried out, by month and
    by action kind, from the journal's ``started`` (the action) and ``done`` events."""
    planned: dict[tuple[str, str], dict[str, Any]] = {}
    by_month: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    by_kind: dict[str, int] = defaultdict(int)
    for event in _events(state_dir):
        key = (str(event.get("run")), str(event.get("action")))
        if event["event"] == "started" and isinstance(event.get("spec"), dict):
            planned[key] = event["spec"]
        elif event["event"] == "done" and key in planned:
            spec = planned.pop(key)
            freed = spec.get("free_bytes")
            if not isinstance(freed, int) or isinstance(freed, bool) or freed <= 0:
                continue
            month = _month(event.get("time"))
            by_month[month][0] += freed
            by_month[month][1] += 1
            by_kind[str(spec.get("kind"))] += freed
    return {
        "bytes": sum(by_kind.values()),
        "by_month": [
            {"month": m, "bytes": b, "actions": n} for m, (b, n) in sorted(by_month.items())
        ],
        "by_kind": dict(sorted(by_kind.items())),
    }


def _month(when: Any) -> str:
    """``YYYY-MM`` of a journal time; a time no clock has (NaN, 1e300: the file is untrusted)
    counts in the month of the epoch rather than stopping the command."""
    try:
        stamp = float(when) if isinstance(when, int | float) else 0.0
        return time.strftime("%Y-%m", time.localtime(stamp))
    except (OverflowError, ValueError, OSError):
        return time.strftime("%Y-%m", time.localtime(0))


def _events(state_dir: Path) -> Iterable[dict[str, Any]]:
    for name in JOURNALS:
        try:
            with (state_dir / name).open("rb") as handle:
                raw = handle.read(MAX_READ)
        except OSError:
            continue  # none yet, or not readable: nothing reclaimed to show from it
        for line in raw.splitlines():
            try:
                event = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):
                continue
            if isinstance(event, dict) and isinstance(event.get("event"), str):
                yield event
