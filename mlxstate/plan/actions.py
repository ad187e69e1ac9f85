"""Typed, frozen plan actions and the plan itself (docs/plan-json.md).

An action says what ``apply`` would do to one subject and why. ``params`` carries what the
executor needs (revision, include/exclude, the source being replaced) as a sorted tuple of
pairs so actions stay hashable and compare by value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Action", "Op", "Plan", "PlanProblem", "params"]

Op = Literal["create", "update", "delete", "replace"]
SYMBOL: dict[str, str] = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
# Deletes first: they free the space the downloads after them need. Then repairs/updates.
OP_ORDER: dict[str, int] = {"delete": 0, "replace": 1, "update": 2, "create": 3}


def params(**values: Any) -> tuple[tuple[str, Any], ...]:
    """Keyword arguments as a hashable, order-independent value (lists become tuples)."""
    return tuple(
        sorted(
            (k, tuple(v) if isinstance(v, list) else v) for k, v in values.items() if v is not None
        )
    )


@dataclass(frozen=True)
class Action:
    id: str  # "model/<name>"; later kinds use "link/…", "dedup/…", "cleanup/…"
    op: Op
    kind: str  # ollama.pull, ollama.delete, hf.download, hf.delete, …
    subject: str  # the source or path it touches
    download_bytes: int | None
    free_bytes: int | None
    reason: str
    model: str | None = None  # the mlx.yaml name, when the action is about a model
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def symbol(self) -> str:
        return SYMBOL[self.op]

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

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
            # this action from a saved plan.
            "model": self.model,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params},
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Action:
        """An action of a saved plan (``mlx plan --out``)."""
        op = doc["op"]
        if op not in SYMBOL:
            raise ValueError(f"unknown op {op!r}")
        return cls(
            id=str(doc["id"]),
            op=op,
            kind=str(doc["kind"]),
            subject=str(doc["subject"]),
            download_bytes=doc.get("download_bytes"),
            free_bytes=doc.get("free_bytes"),
            reason=str(doc.get("reason", "")),
            model=doc.get("model"),
            params=params(**dict(doc.get("params") or {})),
        )


@dataclass(frozen=True)
class PlanProblem:
    """Why a plan cannot be made (protected model, missing file source, not enough disk)."""

    message: str
    model: str | None = None  # the mlx.yaml name it is about, for pointing at its line
    key: str | None = None  # the key under models.<name> to point at (e.g. "protect")
    where: tuple[str, ...] = ()  # or any other key path in mlx.yaml to point at


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    warnings: tuple[str, ...] = ()
    problems: tuple[PlanProblem, ...] = ()
    partial: bool = False  # --target limited it
    meta: Mapping[str, Any] = field(default_factory=dict)
    # Things in the way of a link that mlx will not touch: apply reports them and exits 1.
    conflicts: tuple[str, ...] = ()

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
