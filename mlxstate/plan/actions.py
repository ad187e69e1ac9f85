"""Typed, frozen plan actions and the plan itself (docs/plan-json.md).

An action says what ``apply`` would do to one subject and why. Its kind is one of a closed
set (``Kind``); its ``params`` are the frozen parameter dataclass of that kind (what the
executor needs: revision, include/exclude, the source being replaced, a link's target…),
so actions stay hashable and compare by value. ``reason`` is prose for people,
``reason_code`` the same reason for programs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args

from mlxstate.plan.params import (
    ClaimParams,
    DedupParams,
    DeleteParams,
    DownloadParams,
    FileCleanupParams,
    LinkParams,
    Params,
    PullParams,
    RevisionCleanupParams,
    params_from_json,
)

__all__ = [
    "FAMILY",
    "KIND_PARAMS",
    "REASON_CODES",
    "Action",
    "Family",
    "Kind",
    "Op",
    "Plan",
    "PlanProblem",
    "ReasonCode",
    "Skipped",
]

Op = Literal["create", "update", "delete", "replace"]
Kind = Literal[
    "ollama.pull",
    "ollama.delete",
    "hf.download",
    "hf.delete",
    "link.create",
    "link.update",
    "link.delete",
    "dedup.link",
    "cleanup.partial",
    "cleanup.orphan",
    "cleanup.revision",
    "registry.claim",
    "registry.release",
]
# Machine-readable reasons (docs/plan-json.md, "Reason codes").
ReasonCode = Literal[
    "declared-not-present",
    "repair",
    "revision-not-cached",
    "revision-moved",
    "lock-differs",
    "ensure-absent",
    "prune",
    "source-changed",
    "claim",
    "release",
    "forget",
    "link-missing",
    "link-after-install",
    "link-retarget",
    "link-unwanted",
    "link-dangling",
    "link-moved",
    "link-covered",
    "dedup",
    "cleanup-partial",
    "cleanup-orphan",
    "cleanup-detached",
]
REASON_CODES: frozenset[str] = frozenset(get_args(ReasonCode))
KIND_PARAMS: Mapping[Kind, type[Params]] = {
    "ollama.pull": PullParams,
    "ollama.delete": DeleteParams,
    "hf.download": DownloadParams,
    "hf.delete": DeleteParams,
    "link.create": LinkParams,
    "link.update": LinkParams,
    "link.delete": LinkParams,
    "dedup.link": DedupParams,
    "cleanup.partial": FileCleanupParams,
    "cleanup.orphan": FileCleanupParams,
    "cleanup.revision": RevisionCleanupParams,
    "registry.claim": ClaimParams,
    "registry.release": DeleteParams,
}
# Which part of the plan an action belongs to: the stores' models, app links, dedup,
# cleanups, or mlx's own bookkeeping. Ordering, disk checks and rendering go by it.
Family = Literal["ollama", "hf", "link", "dedup", "cleanup", "registry"]
FAMILY: Mapping[Kind, Family] = {
    "ollama.pull": "ollama",
    "ollama.delete": "ollama",
    "hf.download": "hf",
    "hf.delete": "hf",
    "link.create": "link",
    "link.update": "link",
    "link.delete": "link",
    "dedup.link": "dedup",
    "cleanup.partial": "cleanup",
    "cleanup.orphan": "cleanup",
    "cleanup.revision": "cleanup",
    "registry.claim": "registry",
    "registry.release": "registry",
}
SYMBOL: dict[str, str] = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
# Deletes first: they free the space the downloads after them need. Then repairs/updates.
OP_ORDER: dict[str, int] = {"delete": 0, "replace": 1, "update": 2, "create": 3}
_NO_PARAMS = ClaimParams()
P = TypeVar("P", bound=Params)


@dataclass(frozen=True)
class Action:
    id: str  # "model/<name>", "link/…", "dedup/…", "cleanup/…", "claim/…", "prune/…"
    op: Op
    kind: Kind
    subject: str  # the source or path it touches
    download_bytes: int | None
    free_bytes: int | None
    reason: str
    model: str | None = None  # the mlx.yaml name, when the action is about a model
    params: Params = _NO_PARAMS  # the kind's parameters; left out: the kind's defaults
    reason_code: ReasonCode | None = None  # None only in plans saved by older versions

    def __post_init__(self) -> None:
        if self.op not in SYMBOL:
            raise ValueError(f"unknown op {self.op!r}")
        wanted = KIND_PARAMS.get(self.kind)
        if wanted is None:
            raise ValueError(f"unknown action kind {self.kind!r}")
        if self.params is _NO_PARAMS and wanted is not ClaimParams:
            object.__setattr__(self, "params", wanted())  # frozen: set once, here
        if not isinstance(self.params, wanted):
            raise ValueError(f"{self.kind} takes {wanted.__name__}, not {type(self.params)}")
        if self.reason_code is not None and self.reason_code not in REASON_CODES:
            raise ValueError(f"unknown reason_code {self.reason_code!r}")

    @property
    def symbol(self) -> str:
        return SYMBOL[self.op]

    @property
    def family(self) -> Family:
        return FAMILY[self.kind]

    @property
    def replaces(self) -> str | None:
        """The source a replace deletes once the new one is in place."""
        p = self.params
        return p.replaces if isinstance(p, PullParams | DownloadParams) else None

    def params_as(self, cls: type[P]) -> P:
        """The params, as the type the caller's kind takes (TypeError if not)."""
        if not isinstance(self.params, cls):
            raise TypeError(f"{self.id}: {self.kind} has no {cls.__name__}")
        return self.params

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "op": self.op,
            "kind": self.kind,
            "subject": self.subject,
            "download_bytes": self.download_bytes,
            "free_bytes": self.free_bytes,
            "reason": self.reason,
            # Added fields (format 1 allows additions): what apply needs to carry out exactly
            # this action from a saved plan, and the reason for programs.
            "reason_code": self.reason_code,
            "model": self.model,
            "params": self.params.to_json(),
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Action:
        """An action of a saved plan (``mlx plan --out``): untrusted data, so every field
        is checked (ValueError names the first wrong one)."""
        if not isinstance(doc, Mapping):
            raise ValueError("an action must be an object")
        kind = _text(doc, "kind")
        if kind not in KIND_PARAMS:
            raise ValueError(f"unknown action kind {kind!r}")
        op = _text(doc, "op")
        if op not in SYMBOL:
            raise ValueError(f"unknown op {op!r}")
        code = doc.get("reason_code")
        if code is not None and code not in REASON_CODES:
            raise ValueError(f"unknown reason_code {code!r}")
        model = doc.get("model")
        if model is not None and not isinstance(model, str):
            raise ValueError("model must be a string or null")
        raw = doc.get("params") or {}
        if not isinstance(raw, Mapping):
            raise ValueError(f"{kind}: params must be an object")
        return cls(
            id=_text(doc, "id"),
            op=op,
            kind=kind,
            subject=_text(doc, "subject"),
            download_bytes=_size(doc, "download_bytes"),
            free_bytes=_size(doc, "free_bytes"),
            reason=_text(doc, "reason", ""),
            model=model,
            params=params_from_json(KIND_PARAMS[kind], raw, kind),
            reason_code=code,
        )


def _text(doc: Mapping[str, Any], key: str, default: str | None = None) -> Any:
    value = doc.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _size(doc: Mapping[str, Any], key: str) -> int | None:
    value = doc.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"{key} must be an integer or null")
    return value


@dataclass(frozen=True)
class PlanProblem:
    """Why a plan cannot be made (protected model, missing file source, not enough disk)."""

    message: str
    model: str | None = None  # the mlx.yaml name it is about, for pointing at its line
    key: str | None = None  # the key under models.<name> to point at (e.g. "protect")
    where: tuple[str, ...] = ()  # or any other key path in mlx.yaml to point at


@dataclass(frozen=True)
class Skipped:
    """A model or app whose ``when:`` keeps it off the host planned for: nothing about it
    is installed, updated, linked or pruned there."""

    id: str  # model/NAME or app/NAME
    subject: str  # the model's source, the app's folder
    reason: str

    @property
    def name(self) -> str:
        return self.id.split("/", 1)[1]

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "subject": self.subject, "reason": self.reason}


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    warnings: tuple[str, ...] = ()
    problems: tuple[PlanProblem, ...] = ()
    partial: bool = False  # --target limited it
    meta: Mapping[str, Any] = field(default_factory=dict)
    # Things in the way of a link that mlx will not touch: apply reports them and exits 1.
    conflicts: tuple[str, ...] = ()
    # What `when:` keeps off this host, one entry per model or app (docs/mlx-yaml.md, "Hosts").
    skipped: tuple[Skipped, ...] = ()

    @property
    def has_changes(self) -> bool:
        return bool(self.actions or self.conflicts)

    def summary(self) -> dict[str, int]:
        """Counts and bytes; ``download_unknown`` counts downloads of unknown size."""
        add = sum(a.op in ("create", "replace") for a in self.actions)
        change = sum(a.op == "update" for a in self.actions)
        destroy = sum(a.op in ("delete", "replace") for a in self.actions)
        return {
            "add": add,
            "change": change,
            "destroy": destroy,
            "download_bytes": sum(a.download_bytes or 0 for a in self.actions),
            "free_bytes": sum(a.free_bytes or 0 for a in self.actions),
            "download_unknown": self.unknown_sizes,
        }

    @property
    def unknown_sizes(self) -> int:
        return sum(a.download_bytes is None for a in self.actions if a.op != "delete")
