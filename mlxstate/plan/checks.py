"""Checks over the whole plan, once every action is known.

- ``protect: true`` on anything the plan would delete → problem;
- ``disk.min_free`` against known download sizes per filesystem → problem with the numbers.
"""

from __future__ import annotations

from pathlib import Path

from mlxstate.plan.actions import Action, PlanProblem
from mlxstate.plan.context import Context, Draft
from mlxstate.text import human_bytes

__all__ = ["check_min_free", "check_protected"]


def check_protected(cx: Context, out: Draft) -> None:
    for action in out.actions:
        if action.op == "delete" and action.model and cx.spec.models[action.model].protect:
            out.problems.append(
                PlanProblem(
                    f"models.{action.model} is protected but the plan would delete it",
                    action.model,
                    "protect",
                )
            )


def check_min_free(cx: Context, out: Draft) -> None:
    minimum = int(cx.spec.settings.disk.min_free)
    for device, (free, download, freed) in _needs(cx, out.actions).items():
        after = free + freed - download
        if download and after < minimum:
            path = next(d.path for d in cx.observed.disk if d.device == device)
            out.problems.append(
                PlanProblem(
                    f"not enough disk space on the filesystem of {path}: downloads need "
                    f"{human_bytes(download)}, {human_bytes(free)} free now, "
                    f"{human_bytes(max(after, 0))} after the plan; "
                    f"settings.disk.min_free is {human_bytes(minimum)}",
                    where=("settings", "disk", "min_free") if _min_free_set(cx) else (),
                )
            )


def _needs(cx: Context, actions: list[Action]) -> dict[int, list[int]]:
    """Per filesystem (device): [free now, bytes downloaded, bytes freed]."""
    need: dict[int, list[int]] = {}
    roots = {"ollama": cx.observed.ollama.root, "hf": cx.observed.hf.root}
    for action in actions:
        if action.family == "link":
            continue
        store = _store_of(cx, action)
        # A replace frees space where the OLD source lives, which may be the other store.
        old = action.replaces or ""
        freed_store = ("ollama" if old.startswith("ollama://") else "hf") if old else store
        for side, root, amount in (
            (1, roots[store], action.download_bytes or 0),
            (2, roots[freed_store], action.free_bytes or 0),
        ):
            disk = cx.observed.disk_for(root)
            if disk is not None:
                need.setdefault(disk.device, [disk.free, 0, 0])[side] += amount
    return need


def _store_of(cx: Context, action: Action) -> str:
    """Which store's filesystem an action downloads to or frees space on."""
    if action.family == "ollama":
        return "ollama"
    if action.family in ("cleanup", "dedup"):
        subject = Path(action.subject)
        return "ollama" if subject.is_relative_to(cx.observed.ollama.root) else "hf"
    return "hf"


def _min_free_set(cx: Context) -> bool:
    return "min_free" in cx.spec.settings.disk.model_fields_set
