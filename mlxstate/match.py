"""How declared models (mlx.yaml) and observed ones (stores) are matched.

One canonical key per model, shared by the registry, status and the planner:
``ollama://<name>`` with Ollama's short name (``qwen2.5:7b``) and ``hf://<org>/<repo>``.
Ollama and the Hub treat names case-insensitively, so keys are compared lowercased.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlxstate.sources import HfSource, OllamaSource

if TYPE_CHECKING:
    from mlxstate.spec.models import Spec
    from mlxstate.state import HfRepo, OllamaModel

__all__ = ["declared_by_key", "hf_key", "ollama_key"]


def ollama_key(model: OllamaModel | OllamaSource) -> str:
    return f"ollama://{model.name}".lower()


def hf_key(repo: HfRepo | HfSource) -> str:
    return f"hf://{repo.repo_id}".lower()


def declared_by_key(spec: Spec | None) -> dict[str, str]:
    """Canonical key → the mlx.yaml name that declares it (``ensure: present`` or not)."""
    out: dict[str, str] = {}
    for name, model in spec.models.items() if spec else ():
        source = model.parsed_source
        if isinstance(source, OllamaSource):
            out[ollama_key(source)] = name
        elif isinstance(source, HfSource):
            out[hf_key(source)] = name
    return out
