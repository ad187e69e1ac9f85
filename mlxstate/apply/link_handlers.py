"""Handlers of the ``link.*`` kinds: links into app folders (see link_effects for how each
change re-checks what is on disk)."""

from __future__ import annotations

import os
from pathlib import Path

from mlxstate.apply.context import ApplyContext, Handler
from mlxstate.apply.link_effects import create_link, remove_link, retarget_link
from mlxstate.apply.result import Result
from mlxstate.errors import ActionError
from mlxstate.lock.use import locked_commits
from mlxstate.observe.scan import observe
from mlxstate.plan.actions import Action, Kind
from mlxstate.plan.link_targets import wanted_links
from mlxstate.plan.links import owns_link
from mlxstate.plan.params import LinkParams
from mlxstate.registry import LinkRecord, Registry

__all__ = ["LINK_HANDLERS"]


def _create(action: Action, ctx: ApplyContext) -> Result:
    target = action.params_as(LinkParams).target
    if not target:
        return _sync(action, ctx)
    path, made = Path(action.subject), list[Path]()
    linked = create_link(path, Path(target), ctx.app_root(action), made)
    return Result(
        "done" if linked else "noop",
        "linked" if linked else "already linked",
        links_made=((path, Path(target)),),
        dirs_made=tuple(made),
    )


def _sync(action: Action, ctx: ApplyContext) -> Result:
    """The links of a model installed or updated earlier in this apply, now that its
    files are known: create the missing ones, retarget mlx's own that point at the old
    files, remove mlx's own the model no longer needs. Never touches anything else."""
    ours = _ours(action, ctx)
    wanted = _resolve(action, ctx)
    root, made, removed = ctx.app_root(action), list[Path](), list[Path]()
    changed = 0
    for path, target in wanted:
        mine = ours.get(path)
        if mine is not None and os.path.islink(path) and mine.target != target:
            retarget_link(path, mine.target, target, root)
            changed += 1
        elif create_link(path, target, root, made):
            changed += 1
    gone = [p for p in ours if p not in {w for w, _ in wanted}]
    owned = ctx.registry.owned_dirs() | set(made)
    changed += sum(remove_link(p, ours[p].target, root, owned, removed) for p in gone)
    return Result(
        "done" if changed else "noop",
        f"{changed} link(s) changed" if changed else "already linked",
        links_made=tuple(wanted),
        links_removed=tuple(gone),
        dirs_made=tuple(made),
        dirs_removed=tuple(removed),
    )


def _ours(action: Action, ctx: ApplyContext) -> dict[Path, LinkRecord]:
    """This workspace's links of the action's model in its app."""
    app, facts = action.params_as(LinkParams).app, ctx.facts()
    return {
        x.path: x
        for x in facts.links_of_mine()
        if x.app == app
        and x.model == action.model
        and (ctx.spec is None or owns_link(x, ctx.spec, facts))
    }


def _resolve(action: Action, ctx: ApplyContext) -> list[tuple[Path, Path]]:
    """The links of a model installed earlier in this apply: observe it now."""
    if ctx.spec is None:
        raise ActionError(f"{action.id}: cannot resolve the links without mlx.yaml")
    observed = observe(ctx.settings, ctx.spec, probe=False, duplicates=False, seams=ctx.seams)
    locked = locked_commits(ctx.lock.pins if ctx.lock is not None else None)
    wanted, _ = wanted_links(ctx.spec, observed, set(), ctx.facts(), locked=locked)
    app = action.params_as(LinkParams).app
    mine = [w for w in wanted if w.app == app and w.model == action.model]
    pairs = [(w.path, w.target) for w in mine if w.covered_by is None]
    return [(p, t) for p, t in pairs if t is not None]


def _update(action: Action, ctx: ApplyContext) -> Result:
    path, target = Path(action.subject), str(action.params_as(LinkParams).target)
    old = next((x.target for x in ctx.facts().links if x.path == path), None)
    retarget_link(path, old or Path(), Path(target), ctx.app_root(action))
    return Result("done", f"now → {target}")


def _delete(action: Action, ctx: ApplyContext) -> Result:
    target, removed = str(action.params_as(LinkParams).target), list[Path]()
    owned = ctx.registry.owned_dirs()
    gone = remove_link(Path(action.subject), Path(target), ctx.app_root(action), owned, removed)
    return Result(
        "done" if gone else "noop",
        "removed" if gone else "already gone",
        dirs_removed=tuple(removed),
    )


def _record_made(action: Action, result: Result, registry: Registry, ws: str) -> None:
    app = action.params_as(LinkParams).app
    for path, target in result.links_made:
        registry.add_link(path, target, app, action.model or "", ws)
    for path in result.links_removed:
        registry.remove_link(path)


def _record_update(action: Action, result: Result, registry: Registry, ws: str) -> None:
    p = action.params_as(LinkParams)
    registry.add_link(Path(action.subject), Path(str(p.target)), p.app, action.model or "", ws)


def _record_delete(action: Action, result: Result, registry: Registry, ws: str) -> None:
    registry.remove_link(Path(action.subject))


LINK_HANDLERS: dict[Kind, Handler] = {
    "link.create": Handler(_create, _record_made),
    "link.update": Handler(_update, _record_update),
    "link.delete": Handler(_delete, _record_delete),
}
