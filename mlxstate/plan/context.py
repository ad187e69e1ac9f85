"""What every planning step reads (the inputs and their indexes) and what it adds to (the draft).

No I/O: the observers collected every fact before the planner starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mlxstate.facts import HfRepo, Observed, OllamaModel, RemoteRepo
from mlxstate.keys import hf_key, ollama_key
from mlxstate.lock.model import LockEntry
from mlxstate.mlxyaml.models import Spec
from mlxstate.plan.actions import Action, PlanProblem
from mlxstate.registry import ManagedModel, RegistryFacts
from mlxstate.sources import HfSource, OllamaSource, Source, parse_source

__all__ = ["Context", "Draft", "key_of", "managed_key", "parse_or_none"]


@dataclass(frozen=True)
class Context:
    """The planner's inputs, with the stores indexed by match key."""

    spec: Spec
    observed: Observed
    facts: RegistryFacts
    remote: Mapping[tuple[str, str], RemoteRepo]
    targets: tuple[str, ...]
    fold: bool
    ollama: dict[str, OllamaModel]
    hf: dict[str, HfRepo]
    declared: dict[str, str]
    pins: Mapping[str, LockEntry] = field(default_factory=dict)  # mlx.lock, by model name

    @classmethod
    def build(
        cls,
        spec: Spec,
        observed: Observed,
        facts: RegistryFacts,
        remote: Mapping[tuple[str, str], RemoteRepo],
        targets: tuple[str, ...],
        pins: Mapping[str, LockEntry] | None = None,
    ) -> Context:
        fold = observed.hf.case_insensitive
        return cls(
            spec,
            observed,
            facts,
            remote,
            targets,
            fold,
            ollama={ollama_key(m): m for m in observed.ollama.models},
            hf={hf_key(r, fold): r for r in observed.hf.repos if r.repo_type == "model"},
            declared={key_of(m.parsed_source, fold): name for name, m in spec.models.items()},
            pins=pins or {},
        )

    def key(self, src: Source) -> str:
        return key_of(src, self.fold)

    def managed_key(self, managed: ManagedModel) -> str:
        return managed_key(managed, self.fold)

    def present_size(self, src: Source) -> int | None:
        if isinstance(src, OllamaSource) and (model := self.ollama.get(self.key(src))):
            return model.size
        if isinstance(src, HfSource) and (repo := self.hf.get(self.key(src))):
            return repo.size_on_disk
        return None


@dataclass
class Draft:
    """The plan as it grows: each step appends its actions, problems and warnings."""

    actions: list[Action] = field(default_factory=list)
    problems: list[PlanProblem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def managed_key(managed: ManagedModel, fold: bool = False) -> str:
    """A registry row's source in canonical form (``ollama://llama3`` = ``…llama3:latest``)."""
    src = parse_or_none(managed.source)
    return key_of(src, fold) if src is not None else managed.source


def key_of(src: Source, fold: bool = False) -> str:
    if isinstance(src, OllamaSource):
        return ollama_key(src)
    if isinstance(src, HfSource):
        return hf_key(src, fold)
    return str(src)


def parse_or_none(source: str) -> Source | None:
    try:
        return parse_source(source)
    except ValueError:
        return None
