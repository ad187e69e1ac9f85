"""The parameters of each action kind: frozen dataclasses, hashable, compared by value.

In plan JSON (``params``) a field that is None is left out, tuples are lists, and the keys
come in field order — the order the fields are declared in here is the order plans have
always been written in (docs/plan-json.md). A saved plan is untrusted: ``params_from_json``
checks every key and type.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "ClaimParams",
    "DedupParams",
    "DeleteParams",
    "DownloadParams",
    "FileCleanupParams",
    "LinkParams",
    "Params",
    "PullParams",
    "RevisionCleanupParams",
    "params_from_json",
]

Facts = tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns


@dataclass(frozen=True)
class Params:
    """Base of every kind's parameters."""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True)
class ClaimParams(Params):
    """``registry.claim``: nothing beyond the subject and the model name."""


@dataclass(frozen=True)
class PullParams(Params):
    """``ollama.pull``: the HF cache's GGUF to plant as the weights blob first (zero-copy),
    and the source a replace deletes once the new one is in."""

    seed_blob: str | None = None
    seed_sha256: str | None = None
    seed_size: int | None = None
    replaces: str | None = None
    locked_digest: str | None = None  # mlx.lock's manifest digest: the pull must get it


@dataclass(frozen=True)
class DownloadParams(Params):
    """``hf.download``: what ``snapshot_download`` is asked for."""

    exclude: tuple[str, ...] | None = None
    include: tuple[str, ...] | None = None
    revision: str | None = None
    commit: str | None = None  # the exact commit to fetch (a repair, a moved branch, mlx.lock)
    replaces: str | None = None


@dataclass(frozen=True)
class DeleteParams(Params):
    """``ollama.delete``, ``hf.delete``, ``registry.release``: the name the model had."""

    was: str | None = None


@dataclass(frozen=True)
class LinkParams(Params):
    """``link.*``: the app, the target (None: resolved once the model is installed) and the
    actions it waits for."""

    app: str = ""
    depends_on: tuple[str, ...] | None = None
    target: str | None = None


@dataclass(frozen=True)
class DedupParams(Params):
    """``dedup.link``: the kept copy, how to link, and both files' facts as planned."""

    canonical: str
    dup: Facts
    keep: Facts
    mechanism: str
    sha256: str
    verified_by: str


@dataclass(frozen=True)
class FileCleanupParams(Params):
    """``cleanup.partial`` / ``cleanup.orphan``: the file's size and mtime as planned."""

    mtime: float
    size: int


@dataclass(frozen=True)
class RevisionCleanupParams(Params):
    """``cleanup.revision``: the detached snapshot."""

    commit: str
    repo: str
    repo_type: str


P = TypeVar("P", bound=Params)


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check_str(v: object) -> object:
    if not isinstance(v, str):
        raise TypeError("a string")
    return v


def _check_int(v: object) -> object:
    if not _is_int(v):
        raise TypeError("an integer")
    return v


def _check_number(v: object) -> object:
    if not (_is_int(v) or isinstance(v, float)):
        raise TypeError("a number")
    return v


def _check_strings(v: object) -> object:
    if not isinstance(v, list | tuple) or not all(isinstance(x, str) for x in v):
        raise TypeError("a list of strings")
    return tuple(v)


def _check_facts(v: object) -> object:
    if not isinstance(v, list | tuple) or len(v) != 4 or not all(_is_int(x) for x in v):
        raise TypeError("a list of 4 integers")
    return tuple(v)


_CHECKS: dict[str, Callable[[object], object]] = {
    "str": _check_str,
    "int": _check_int,
    "float": _check_number,
    "tuple[str, ...]": _check_strings,
    "Facts": _check_facts,
}


def params_from_json(cls: type[P], raw: Mapping[str, Any], kind: str) -> P:
    """``cls`` from a plan's ``params`` object; ValueError on an unknown key, a missing
    required one, or a value of the wrong type."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ValueError(f"{kind}: unknown params {', '.join(map(repr, unknown))}")
    values: dict[str, Any] = {}
    for name, f in fields.items():
        hint = str(f.type)
        optional = hint.endswith(" | None")
        value = raw.get(name)
        if value is None:
            if not optional:
                raise ValueError(f"{kind}: params.{name} is missing")
            continue
        try:
            values[name] = _CHECKS[hint.removesuffix(" | None")](value)
        except TypeError as exc:
            raise ValueError(f"{kind}: params.{name} must be {exc}") from None
    return cls(**values)
