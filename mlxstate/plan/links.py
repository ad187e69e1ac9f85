"""Links into app folders (``apps:``): what to create, retarget, remove, or leave as a conflict.

Where each wanted link goes is decided in ``link_targets.py``. A link mlx made earlier for a
model the app folder already holds elsewhere is removed (one entry per model). A link mlx
made where an older mlx put it is moved to where it goes now.

Links are absolute symlinks to the real file. A link mlx made (registry) that points
elsewhere is retargeted; one no longer wanted is removed; anything else already at a link's
path is a CONFLICT, shown and never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlxstate.facts import AppLink, Observed
from mlxstate.mlxyaml.models import Spec
from mlxstate.plan.actions import Action, Kind, Op, ReasonCode
from mlxstate.plan.link_targets import WantedLink, wanted_links
from mlxstate.plan.params import LinkParams
from mlxstate.registry import LinkRecord, RegistryFacts

__all__ = ["LinkPlan", "owns_link", "plan_links"]


@dataclass(frozen=True)
class LinkPlan:
    actions: tuple[Action, ...]
    conflicts: tuple[str, ...]
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class _Scene:
    """What the wanted links are compared against."""

    spec: Spec
    entries: dict[Path, AppLink]  # every entry observed in the app folders
    ours: dict[Path, LinkRecord]  # the links this file may retarget or remove
    pending: set[str]  # models whose install is planned
    moved: dict[tuple[str, str, Path], Path]  # (app, model, target) → the link's new path
    covered: dict[tuple[str, str], Path]  # (app, model) → the entry that already holds it


def plan_links(
    spec: Spec,
    observed: Observed,
    facts: RegistryFacts,
    model_actions: list[Action],
    off_host: frozenset[str] = frozenset(),
    locked: Mapping[str, str] | None = None,
) -> LinkPlan:
    """``off_host``: ids (``model/NAME``, ``app/NAME``) not for this host: no link of theirs
    is made, retargeted or removed here."""
    pending = {
        a.model for a in model_actions if a.model and a.op in ("create", "replace", "update")
    }
    found, warnings = wanted_links(spec, observed, pending, facts, off_host, locked)
    wanted = [w for w in found if w.covered_by is None]
    # What could not be read in a declared app folder (a symlink loop, no permission): shown
    # with the plan, since the links planned there may fail.
    warnings = [
        w
        for app in observed.apps
        if app.name in spec.apps and f"app/{app.name}" not in off_host
        for w in app.warnings
    ] + warnings
    scene = _scene(spec, observed, facts, pending, found, off_host)
    actions: list[Action] = []
    conflicts: list[str] = []
    for w in wanted:
        step = _wanted(w, scene)
        if isinstance(step, Action):
            actions.append(step)
        elif step is not None:
            conflicts.append(step)
    actions += _removals(wanted, scene, warnings)
    return LinkPlan(tuple(actions), tuple(conflicts), tuple(warnings))


def _scene(
    spec: Spec,
    observed: Observed,
    facts: RegistryFacts,
    pending: set[str],
    found: list[WantedLink],
    off_host: frozenset[str],
) -> _Scene:
    covered = {(w.app, w.model): w.covered_by for w in found if w.covered_by is not None}
    moved = {
        (w.app, w.model, w.target): w.path
        for w in found
        if w.covered_by is None and w.target is not None
    }
    entries: dict[Path, AppLink] = {e.path: e for app in observed.apps for e in app.entries}
    # Only this workspace's links (and those from before workspaces): another file's links
    # are never retargeted or removed by this one.
    # A skipped model's or app's links stay as they are: never pruned on this host.
    ours = {
        link.path: link
        for link in facts.links_of_mine()
        if owns_link(link, spec, facts)
        and f"app/{link.app}" not in off_host
        and f"model/{link.model}" not in off_host
    }
    return _Scene(spec, entries, ours, pending, moved, covered)


def _wanted(w: WantedLink, scene: _Scene) -> Action | str | None:
    """The action a wanted link needs, the conflict (a line) when something else is in its
    way, or None when it is already right."""
    root = scene.spec.apps[w.app].path
    relative = w.path.relative_to(root)
    ident = f"link/{w.app}/{relative}" if w.target is not None else f"link/{w.app}/{w.model}"
    depends = [f"model/{w.model}"] if w.model in scene.pending else None
    here = scene.entries.get(w.path)
    blocker = _blocking_parent(w.path, root, scene.entries)
    if blocker is not None:
        return (
            f"{blocker}: a {_what(scene.entries[blocker])} is where mlx needs a folder for {w.path}"
        )
    if w.target is None:
        reason = f"links to {w.model} once it is installed"
        return _link(ident, "create", w, reason, "link-after-install", depends)
    if here is None:
        return _link(ident, "create", w, f"→ {w.target}", "link-missing", depends)
    if here.kind in ("link", "dangling") and here.target == w.target:
        return None  # already right
    if (
        w.path in scene.ours
        and here.kind in ("link", "dangling")
        and here.target == scene.ours[w.path].target
    ):
        why = f"{here.target} → {w.target}"
        return _link(ident, "update", w, why, "link-retarget", depends, "link.update")
    return f"{w.path}: a {_what(here)} mlx did not make is in the way of the link to {w.target}"


def _removals(wanted: list[WantedLink], scene: _Scene, warnings: list[str]) -> list[Action]:
    """This file's links no longer wanted where they are."""
    wanted_paths = {w.path for w in wanted}
    syncing = {(w.app, w.model) for w in wanted if w.target is None}
    out: list[Action] = []
    for path, link in sorted(scene.ours.items()):
        here = scene.entries.get(path)
        if path in wanted_paths or here is None or here.target != link.target:
            continue  # still wanted, already gone, or no longer ours (then it is never touched)
        if (link.app, link.model) in syncing:
            continue  # its model is being installed or updated: the link sync after it decides
        if here.kind == "dangling" and not scene.spec.settings.cleanup.dangling_links:
            warnings.append(f"{path}: mlx's link is dangling (cleanup.dangling_links is off)")
            continue
        out.append(_removal(path, link, here.kind == "dangling", scene))
    return out


def _removal(path: Path, link: LinkRecord, dangling: bool, scene: _Scene) -> Action:
    why = "its target is gone" if dangling else "no longer in mlx.yaml"
    code: ReasonCode = "link-dangling" if dangling else "link-unwanted"
    if (new := scene.moved.get((link.app, link.model, link.target))) is not None:
        why, code = f"moved to {new}", "link-moved"
    elif (same := scene.covered.get((link.app, link.model))) is not None:
        why, code = f"{same} is the same model: one entry per model", "link-covered"
    root = scene.spec.apps[link.app].path if link.app in scene.spec.apps else None
    # Below the app folder when it is still declared; its name when the app left mlx.yaml.
    rel = path.relative_to(root) if root is not None and path.is_relative_to(root) else path.name
    ident = f"link/{link.app}/{rel}"
    extra = LinkParams(target=str(link.target), app=link.app)
    return Action(ident, "delete", "link.delete", str(path), 0, 0, why, None, extra, code)


def owns_link(link: LinkRecord, spec: Spec, facts: RegistryFacts) -> bool:
    """A link recorded before workspaces existed is this file's only when this file declares
    its app at a folder that holds it; otherwise another mlx.yaml may have made it."""
    if link.workspace == facts.workspace:
        return True
    app = spec.apps.get(link.app)
    return app is not None and link.path.is_relative_to(app.path)


def _blocking_parent(path: Path, root: Path, entries: dict[Path, AppLink]) -> Path | None:
    """A file (or link) observed where one of the folders above ``path`` must be."""
    for parent in path.parents:
        if parent == root or not parent.is_relative_to(root):
            return None
        entry = entries.get(parent)
        if entry is not None and entry.kind != "dir":
            return parent
    return None


def _what(entry: AppLink) -> str:
    return {"file": "file", "dir": "folder", "link": "link", "dangling": "dangling link"}[
        entry.kind
    ]


def _link(
    ident: str,
    op: Op,
    w: WantedLink,
    reason: str,
    code: ReasonCode,
    depends: list[str] | None,
    kind: Kind = "link.create",
) -> Action:
    target = str(w.target) if w.target is not None else None
    extra = LinkParams(app=w.app, depends_on=tuple(depends) if depends else None, target=target)
    return Action(ident, op, kind, str(w.path), 0, 0, reason, w.model, extra, code)
