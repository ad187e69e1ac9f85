"""Declared models → what an engine loads, from one read-only look at the stores.

Nothing is ever downloaded for a benchmark: a model that is not installed, or broken, is
a :class:`Missing` with the reason the run is recorded ``skipped`` for."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mlxstate.bench.engines.base import BenchTarget
from mlxstate.facts import HfCache, HfRepo, Observed
from mlxstate.keys import ollama_key
from mlxstate.mlxyaml.models import ModelSpec
from mlxstate.sources import HfSource, OllamaSource

__all__ = ["Missing", "Resolved", "engine_of", "resolve_target"]

_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True, slots=True)
class Resolved:
    engine: str
    target: BenchTarget


@dataclass(frozen=True, slots=True)
class Missing:
    engine: str
    reason: str


def engine_of(model: ModelSpec) -> str:
    """The engine that runs a source: Ollama's models in Ollama, HF repos with mlx-lm."""
    return "ollama" if isinstance(model.parsed_source, OllamaSource) else "mlx"


def resolve_target(name: str, model: ModelSpec, observed: Observed) -> Resolved | Missing:
    src = model.parsed_source
    if isinstance(src, OllamaSource):
        return _ollama(name, src, observed)
    if isinstance(src, HfSource):
        return _hf(name, model, src, observed.hf)
    # mlx validate rejects these in a benchmark; a spec built in code may still carry one.
    return Missing("none", f"{src} cannot be benchmarked; use an ollama:// or hf:// model")


def _ollama(name: str, src: OllamaSource, observed: Observed) -> Resolved | Missing:
    key = ollama_key(src)
    model = next((m for m in observed.ollama.models if ollama_key(m) == key), None)
    if model is None:
        return Missing("ollama", f"{src.name} is not installed in Ollama (run `mlx apply`)")
    if model.status != "ok":
        return Missing("ollama", f"{src.name} is broken in Ollama: {model.problems[0]}")
    return Resolved("ollama", BenchTarget(name, str(src), src.name))


def _hf(name: str, spec: ModelSpec, src: HfSource, cache: HfCache) -> Resolved | Missing:
    repo = _find(cache, src.repo_id)
    want = spec.revision or "main"
    if repo is None:
        return Missing("mlx", f"{src.repo_id} is not in the Hugging Face cache (run `mlx apply`)")
    commit = want if _COMMIT.fullmatch(want) else repo.ref(want)
    rev = repo.revision(commit) if commit else None
    if rev is None:
        return Missing("mlx", f"revision {want} of {src.repo_id} is not cached (run `mlx apply`)")
    if rev.dangling:
        missing = ", ".join(rev.dangling[:3])
        return Missing("mlx", f"{src.repo_id} is incomplete in the cache (missing {missing})")
    target = BenchTarget(name, str(src), src.repo_id, path=rev.snapshot_path, revision=commit)
    return Resolved("mlx", target)


def _find(cache: HfCache, repo_id: str) -> HfRepo | None:
    if not cache.case_insensitive:
        return cache.find(repo_id)
    folded = repo_id.lower()
    return next(
        (r for r in cache.repos if r.repo_type == "model" and r.repo_id.lower() == folded), None
    )
