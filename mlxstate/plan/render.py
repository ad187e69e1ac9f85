"""Plans as text (Terraform style) and as the JSON document of docs/plan-json.md."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxstate import __version__
from mlxstate.plan.actions import Action, Plan
from mlxstate.plan.params import (
    DedupParams,
    DeleteParams,
    FileCleanupParams,
    LinkParams,
    RevisionCleanupParams,
)
from mlxstate.text import human_bytes, printable, short_path, short_paths_in

if TYPE_CHECKING:
    from mlxstate.hosts import Host

__all__ = ["FORMAT_VERSION", "host_line", "plan_json", "render_text"]

FORMAT_VERSION = "1"
NO_CHANGES = "No changes. Your models match mlx.yaml."
_COLORS = {"+": "32", "~": "33", "-": "31", "-/+": "35"}
_GROUPS = {
    "model": "Models",
    "prune": "Models",
    "link": "Links",
    "cleanup": "Cleanups",
    "dedup": "Deduplication",
    "claim": "Ownership",  # registry only: which mlx.yaml owns a model (docs/apply.md)
    "release": "Ownership",
}


def plan_json(plan: Plan, *, spec_path: str, spec_sha256: str, fingerprint: str) -> dict[str, Any]:
    """The plan document: ``mlx plan --json``, and the file ``--out`` writes."""
    return {
        "format_version": FORMAT_VERSION,
        "mlxstate_version": __version__,
        "spec": {"path": spec_path, "sha256": spec_sha256},
        "observed": {"fingerprint": fingerprint},
        "actions": [a.to_json() for a in plan.actions],
        "summary": plan.summary(),
        "warnings": list(plan.warnings),
        "conflicts": list(plan.conflicts),
        "skipped": [s.to_json() for s in plan.skipped],
    }


_CLEANUP_NAMES = {
    "cleanup.partial": "partial",
    "cleanup.orphan": "orphan",
    "cleanup.revision": "revision",
}


def _name(action: Action) -> str:
    if action.model:
        return action.model
    match action.params:
        case LinkParams(app=app):
            return f"{app}:{Path(action.subject).name}"
        case DedupParams(mechanism=mechanism):
            return mechanism
        case FileCleanupParams() | RevisionCleanupParams():
            return _CLEANUP_NAMES[action.kind]
        case DeleteParams(was=was) if was:
            # A pruned model is no longer in mlx.yaml: show the name it was installed under.
            return was
    return action.subject


def _size(action: Action) -> str:
    if action.family == "link":
        return ""
    if action.op == "delete" or action.family == "dedup":
        return f"free {human_bytes(action.free_bytes)}" if action.free_bytes else ""
    if action.download_bytes is None:
        size = "download size unknown"
    else:
        size = f"download {human_bytes(action.download_bytes)}"
    if action.op == "replace" and action.free_bytes:
        size += f", free {human_bytes(action.free_bytes)}"
    return size


def render_text(plan: Plan, *, color: bool = False) -> str:
    """Terraform-style text: a header per resource group, one line per action, a summary."""

    def paint(text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if color else text

    # plan.warnings are not part of the text: they are logs, for stderr (cli._output.warn).
    lines: list[str] = []
    for conflict in plan.conflicts:
        text = printable(short_paths_in(conflict))
        lines.append(f"{paint('Conflict:', '31')} {text} (left alone)")
    if plan.conflicts:
        lines.append("")
    lines += _skipped_lines(plan)
    if not plan.actions:
        lines.append(paint(NO_CHANGES, "32") if not plan.conflicts else "No actions to take.")
        return "\n".join(lines) + "\n"
    lines.append("mlx will perform the following actions:")
    groups: dict[str, list[Action]] = {}
    for action in plan.actions:
        groups.setdefault(_GROUPS.get(action.id.split("/", 1)[0], "Other"), []).append(action)
    for title, actions in groups.items():
        lines += ["", f"{title}:"]
        names = [_name(a) for a in actions]
        subjects = [short_path(a.subject) for a in actions]  # paths as status shows them
        name_w = max(len(n) for n in names)
        subj_w = max(len(x) for x in subjects)
        size_w = max(len(_size(a)) for a in actions)
        for action, name, subject in zip(actions, names, subjects, strict=True):
            symbol = paint(f"{action.symbol:>3}", _COLORS[action.symbol])
            cells = f"{name:<{name_w}}  {subject:<{subj_w}}  {_size(action):<{size_w}}"
            row = f"{symbol} {cells}  {short_paths_in(action.reason)}"
            lines.append(printable(row.rstrip()) if not color else row.rstrip())
    s = plan.summary()
    lines += ["", _summary_line(s, plan.unknown_sizes)]
    return "\n".join(lines) + "\n"


def _summary_line(s: dict[str, int], unknown: int) -> str:
    if not unknown:
        download = f"Download {human_bytes(s['download_bytes'])}"
    elif s["download_bytes"]:
        download = f"Download {human_bytes(s['download_bytes'])} + {unknown} of unknown size"
    else:
        download = f"Download size unknown ({unknown} model{'s' if unknown != 1 else ''})"
    free = f", free {human_bytes(s['free_bytes'])}" if s["free_bytes"] else ""
    return (
        f"Plan: {s['add']} to add, {s['change']} to change, {s['destroy']} to destroy. "
        f"{download}{free}."
    )


def _skipped_lines(plan: Plan) -> list[str]:
    """One line per model or app that ``when:`` keeps off this host, and why."""
    if not plan.skipped:
        return []
    names = [s.name for s in plan.skipped]
    subjects = [short_path(s.subject) for s in plan.skipped]
    name_w, subj_w = max(map(len, names)), max(map(len, subjects))
    lines = ["Skipped on this host (when:):"]
    for skip, name, subject in zip(plan.skipped, names, subjects, strict=True):
        lines.append(printable(f"  {name:<{name_w}}  {subject:<{subj_w}}  {skip.reason}"))
    return [*lines, ""]


def host_line(host: Host) -> str:
    """Which machine the plan was made for, and what of it is unknown."""
    memory = human_bytes(host.memory) if host.memory is not None else "unknown"
    how = " (--host)" if host.given else ""
    return f"Host: {host.name}{how}, memory {memory}, os {host.os or 'unknown'}"
