"""Who owns a model, and what that allows: claims, releases, forgets, deletes, source changes.

``ensure: absent`` → delete, managed or not; a managed name now declared with another source →
replace (with prune); ``protect: true`` on anything the plan would delete or replace →
problem. Prune of undeclared models is in ``prune.py``.
"""

from __future__ import annotations

from dataclasses import replace

from mlxstate.mlxyaml.models import ModelSpec
from mlxstate.plan.actions import Action, Kind, PlanProblem, ReasonCode
from mlxstate.plan.context import Context, Draft, parse_or_none
from mlxstate.plan.params import DeleteParams, DownloadParams, PullParams
from mlxstate.registry import ManagedModel
from mlxstate.sources import HfSource, OllamaSource, Source
from mlxstate.workspace import LEGACY

__all__ = ["claim", "delete", "forget", "release", "replaced_by", "source_change"]


def claim(cx: Context, out: Draft, name: str, src: Source) -> None:
    """A declared model that is present and managed, but not by this workspace: this
    file claims it too, so another file's prune can no longer delete it from under us.
    A model mlx does not manage stays the user's (``mlx import`` makes it managed)."""
    managed = cx.facts.find(str(src), cx.fold)
    ws = cx.facts.workspace
    if managed is None or ws is None or ws in managed.owner_names:
        return
    if cx.present_size(src) is None:
        return
    others = [w for w in managed.owner_names if w != LEGACY]
    why = (
        f"managed by {', '.join(others)}; declared here too: shared from now on"
        if others
        else "installed by mlx before workspaces existed; this file declares it: now its own"
    )
    out.actions.append(
        Action(
            f"claim/{name}",
            "update",
            "registry.claim",
            str(src),
            0,
            0,
            why,
            name,
            reason_code="claim",
        )
    )


def source_change(
    cx: Context, out: Draft, name: str, m: ModelSpec, src: Source, action: Action | None
) -> Action | None:
    """With prune, a name mlx installed from another source: the old model is released,
    forgotten, replaced by ``action`` or deleted. Returns the model's action (maybe a replace)."""
    replaced = replaced_by(cx, name, src)
    if replaced is None:
        return action
    why = f"source changed: {replaced.source} → {src}"
    if release(cx, out, replaced, why):
        return action  # another workspace still owns the old source: it stays
    if not _old_present(cx, replaced):
        forget(cx, out, replaced, f"{why}; the old one")
        return action
    if action is not None and action.op == "create":
        return _as_replace(cx, out, name, m, action, replaced)
    if (old := parse_or_none(replaced.source)) is not None:
        # The new source is already there (or only needs a repair): the old one, which
        # mlx installed under this name, just goes.
        reason = f"{why} (prune: true)"
        _protect_problem(cx, out, name, m, reason, "delete")
        delete(cx, out, None, old, reason, "source-changed", f"prune/{replaced.source}", was=name)
    return action


def release(cx: Context, out: Draft, managed: ManagedModel, why: str) -> bool:
    """Prune of a model other workspaces own too: only this workspace's claim goes."""
    others = [w for w in managed.owner_names if w not in (cx.facts.workspace, LEGACY)]
    if not others:
        return False
    reason = f"{why}; also owned by {', '.join(others)}: only this file's claim is dropped"
    out.actions.append(
        Action(
            f"release/{managed.source}",
            "update",
            "registry.release",
            managed.source,
            0,
            0,
            reason,
            None,
            DeleteParams(was=managed.name_in(cx.facts.workspace or "") or managed.name),
            "release",
        )
    )
    return True


def _old_present(cx: Context, managed: ManagedModel) -> bool:
    src = parse_or_none(managed.source)
    return src is None or cx.present_size(src) is not None


def forget(cx: Context, out: Draft, managed: ManagedModel, why: str) -> None:
    """A model this workspace owns is gone from its store (removed by hand): its claim
    goes too. Kept, it would make a copy the user later pulls by hand look installed by
    mlx, and prune (or a source change) would delete that copy."""
    ws = cx.facts.workspace
    if ws is None:
        return
    out.actions.append(
        Action(
            f"forget/{managed.source}",
            "update",
            "registry.release",
            managed.source,
            0,
            0,
            f"{why}: forgotten (files it finds again later are yours)",
            None,
            DeleteParams(was=managed.name_in(ws) or managed.name),
            "forget",
        )
    )


def delete(
    cx: Context,
    out: Draft,
    name: str | None,
    src: Source,
    why: str,
    code: ReasonCode,
    ident: str | None = None,
    was: str = "",
) -> None:
    key = cx.key(src)
    store: tuple[Kind, int] | None = None
    if isinstance(src, OllamaSource) and (model := cx.ollama.get(key)):
        store = "ollama.delete", model.size
    elif isinstance(src, HfSource) and (repo := cx.hf.get(key)):
        store = "hf.delete", repo.size_on_disk
    if store is None:
        return  # not in its store: nothing to delete
    kind, size = store
    ident = ident or f"model/{name}"
    extra = DeleteParams(was=was or None)
    out.actions.append(Action(ident, "delete", kind, str(src), 0, size, why, name, extra, code))


def replaced_by(cx: Context, name: str, src: Source) -> ManagedModel | None:
    """The managed model this name used to stand for, if its source changed (prune only)."""
    if not cx.spec.settings.prune:
        return None
    ws = cx.facts.workspace or ""
    for managed in cx.facts.owned():
        key = cx.managed_key(managed)
        if managed.name_in(ws) == name and key != cx.key(src) and key not in cx.declared:
            return managed
    return None


def _as_replace(
    cx: Context, out: Draft, name: str, m: ModelSpec, action: Action, old: ManagedModel
) -> Action:
    old_src = parse_or_none(old.source)
    freed = cx.present_size(old_src) if old_src else None
    if not freed:
        return action
    reason = f"source changed: {old.source} → {action.subject}"
    _protect_problem(cx, out, name, m, reason, "replace")
    p = action.params
    assert isinstance(p, PullParams | DownloadParams)  # only model installs are replaced
    return Action(
        action.id,
        "replace",
        action.kind,
        action.subject,
        action.download_bytes,
        freed,
        reason,
        name,
        replace(p, replaces=old.source),
        "source-changed",
    )


def _protect_problem(
    cx: Context, out: Draft, name: str, m: ModelSpec, reason: str, verb: str
) -> None:
    if m.protect and (not cx.targets or name in cx.targets):
        out.problems.append(
            PlanProblem(
                f"models.{name} is protected (protect: true) but the plan would {verb} it "
                f"({reason})",
                name,
                "protect",
            )
        )
