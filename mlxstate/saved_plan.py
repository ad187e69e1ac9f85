"""Saved plans (``mlx plan --out``, ``mlx apply PLANFILE``) read as untrusted data.

A plan file runs only against the exact spec and state it was made from, and only the
actions a fresh plan of that file and state contains (docs/apply.md, "Saved plans").
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlxstate.errors import MlxError, StalePlan
from mlxstate.plan.actions import Action

if TYPE_CHECKING:
    from mlxstate.lock.use import LockMode

__all__ = [
    "MAX_PLAN_BYTES",
    "SavedPlan",
    "authorized",
    "check_fresh",
    "check_host",
    "check_lock_fresh",
    "load_saved_plan",
]

MAX_PLAN_BYTES = 64 << 20  # far above any real plan; /dev/zero must not fill the memory


@dataclass(frozen=True)
class SavedPlan:
    """A plan file, its shape checked; its actions parsed (each kind's fields validated)."""

    path: Path
    spec_path: Path
    spec_sha256: object
    fingerprint: object
    targets: tuple[str, ...]
    refresh: bool
    actions: tuple[Action, ...]
    lock: LockMode = "off"  # made with --locked / --frozen
    lock_sha256: str | None = None  # the mlx.lock bytes it followed
    host: object = None  # the host name it was planned for (none in older plans)


def load_saved_plan(path: Path) -> SavedPlan:
    doc = _read(path)
    observed = doc.get("observed")
    host = doc.get("host")
    targets, refresh = _options(doc)
    return SavedPlan(
        path=path,
        spec_path=Path(doc["spec"]["path"]),
        spec_sha256=doc["spec"].get("sha256"),
        fingerprint=observed.get("fingerprint") if isinstance(observed, dict) else None,
        targets=targets,
        refresh=refresh,
        actions=_actions(doc),
        lock=_lock_mode(doc),
        lock_sha256=_lock_sha256(doc),
        host=host.get("name") if isinstance(host, dict) else None,
    )


def check_host(saved: SavedPlan, host: str) -> None:
    """A plan made for another machine (``mlx plan --host``) is not carried out here: its
    ``when:`` decisions were that machine's."""
    # Host names have no case (`when:` globs match them without it): Studio is studio.
    if saved.host is not None and str(saved.host).lower() != host.lower():
        raise StalePlan(
            f"saved plan was made for host {saved.host!r}; this machine is {host!r}",
            hint="make a new one here with `mlx plan --out FILE`",
        )


def check_fresh(saved: SavedPlan, spec_path: Path, shown: str, fingerprint: str) -> None:
    """The spec's bytes and the observed state are what the plan was made from."""
    changed = []
    if saved.spec_sha256 != hashlib.sha256(spec_path.read_bytes()).hexdigest():
        changed.append(f"{shown} changed since the plan was made")
    if saved.fingerprint != fingerprint:
        changed.append("the model stores or the registry changed since the plan was made")
    if changed:
        raise StalePlan(
            "saved plan is stale: " + "; ".join(changed),
            hint="make a new one with `mlx plan --out FILE`, or run `mlx apply` without one",
        )


def check_lock_fresh(saved: SavedPlan, sha256: str | None) -> None:
    """The plan followed mlx.lock: the lock must still hold the same bytes (the commits and
    digests apply verifies against come from it)."""
    if saved.lock != "off" and saved.lock_sha256 != sha256:
        raise StalePlan(
            "saved plan is stale: mlx.lock changed since the plan was made",
            hint=f"make a new one with `mlx plan --{saved.lock} --out FILE`",
        )


def authorized(saved: SavedPlan, fresh: Sequence[Action]) -> tuple[Action, ...]:
    """The fresh plan's actions the saved plan names. An action edited or added by hand is
    refused, and nothing runs: a plan file is data, not authority."""
    allowed = {_comparable(a) for a in fresh}
    foreign = [a for a in saved.actions if _comparable(a) not in allowed]
    if foreign:
        shown = ", ".join(f"{a.id} ({a.kind} {a.subject})" for a in foreign[:3])
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise StalePlan(
            f"{saved.path} holds actions a fresh plan does not: {shown}{more}; nothing was changed",
            hint="a saved plan can only carry out what `mlx plan` proposes; make a new one",
        )
    wanted = {_comparable(a) for a in saved.actions}
    return tuple(a for a in fresh if _comparable(a) in wanted)


def _comparable(action: Action) -> str:
    """Every field that says what the action does; ``reason_code``, a label derived from
    the same facts (and absent from plans saved before it existed), is not one of them."""
    doc = action.to_json()
    doc.pop("reason_code", None)
    return json.dumps(doc, sort_keys=True, default=str)


def _read(path: Path) -> dict[str, Any]:
    not_a_plan = f"{path} is not a plan written by `mlx plan --out`"
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
        if len(raw) > MAX_PLAN_BYTES:
            raise MlxError(f"{not_a_plan}: larger than {MAX_PLAN_BYTES >> 20} MiB")
        doc = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise MlxError(f"no plan file {path}", hint="make one with `mlx plan --out FILE`") from None
    except IsADirectoryError:
        raise MlxError(f"{not_a_plan}: it is a folder") from None
    except OSError as exc:
        raise MlxError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError) as exc:
        raise MlxError(f"{not_a_plan}: {str(exc)[:200]}") from None
    spec = doc.get("spec") if isinstance(doc, dict) else None
    if (
        not isinstance(doc, dict)
        or doc.get("format_version") != "1"
        or not isinstance(spec, dict)
        or not isinstance(spec.get("path"), str)
        or not isinstance(doc.get("actions", []), list)
    ):
        raise MlxError(f"{not_a_plan} (format_version 1)")
    return doc


def _options(doc: dict[str, Any]) -> tuple[tuple[str, ...], bool]:
    """The --target and --refresh the plan was made with (none in older plans)."""
    options = doc.get("options")
    if not isinstance(options, dict):
        return (), False
    targets = options.get("targets") or []
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        raise MlxError("the saved plan's options.targets is not a list of model names")
    return tuple(targets), options.get("refresh") is True


def _lock_mode(doc: dict[str, Any]) -> LockMode:
    """--locked / --frozen as the plan recorded them (neither in older plans)."""
    options = doc.get("options")
    if not isinstance(options, dict):
        return "off"
    if options.get("locked") is True:
        return "locked"
    return "frozen" if options.get("frozen") is True else "off"


def _lock_sha256(doc: dict[str, Any]) -> str | None:
    lock = doc.get("lock")
    sha = lock.get("sha256") if isinstance(lock, dict) else None
    return sha if isinstance(sha, str) else None


def _actions(doc: dict[str, Any]) -> tuple[Action, ...]:
    try:
        return tuple(Action.from_json(a) for a in doc.get("actions", []))
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise MlxError(f"the saved plan has a malformed action: {exc}") from None
