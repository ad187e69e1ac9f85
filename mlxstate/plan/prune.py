"""Managed models no longer declared: ``prune: true`` deletes MANAGED undeclared models only
(or drops this file's claim when another workspace owns them too); without it, a warning.
A managed model gone from its store is forgotten either way."""

from __future__ import annotations

from mlxstate.plan.context import Context, Draft, parse_or_none
from mlxstate.plan.ownership import delete, forget, release, replaced_by
from mlxstate.registry import ManagedModel
from mlxstate.workspace import LEGACY

__all__ = ["prune"]


def prune(cx: Context, out: Draft) -> None:
    _legacy_warning(cx, out)
    present = _undeclared_present(cx, out)
    if not cx.spec.settings.prune:
        if present:
            names = ", ".join(m.source for m in present)
            out.warnings.append(
                f"installed by mlx but no longer declared: {names} (prune: true would delete them)"
            )
        return
    for managed in present:
        src = parse_or_none(managed.source)
        assert src is not None
        if release(cx, out, managed, "no longer in mlx.yaml (prune: true)"):
            continue
        delete(
            cx,
            out,
            None,
            src,
            "installed by mlx, no longer in mlx.yaml (prune: true)",
            "prune",
            f"prune/{managed.source}",
            # The name this file gave it, not whichever file recorded the row last.
            was=managed.name_in(cx.facts.workspace or "") or managed.name,
        )


def _undeclared_present(cx: Context, out: Draft) -> list[ManagedModel]:
    """This workspace's undeclared models still in their store; those gone are forgotten."""
    undeclared = [m for m in cx.facts.owned() if cx.managed_key(m) not in cx.declared]
    replaced = {
        m.source
        for name, spec_m in cx.spec.models.items()
        if (m := replaced_by(cx, name, spec_m.parsed_source))
    }
    pending = [
        m for m in undeclared if m.source not in replaced and parse_or_none(m.source) is not None
    ]
    present = [m for m in pending if cx.present_size(parse_or_none(m.source)) is not None]  # type: ignore[arg-type]
    for managed in pending:
        if managed not in present:
            forget(cx, out, managed, "no longer in mlx.yaml and gone from its store")
    return present


def _legacy_warning(cx: Context, out: Draft) -> None:
    legacy = [
        m.source
        for m in cx.facts.models
        if m.owner_names == (LEGACY,)
        and cx.managed_key(m) not in cx.declared
        and (src := parse_or_none(m.source)) is not None
        and cx.present_size(src) is not None
    ]
    if legacy and cx.facts.workspace is not None:
        out.warnings.append(
            f"installed by mlx before workspaces existed, not declared here: "
            f"{', '.join(legacy)}; no file prunes them until one claims them "
            "(`mlx import SOURCE` to own one here, `mlx forget SOURCE` to leave it to you)"
        )
