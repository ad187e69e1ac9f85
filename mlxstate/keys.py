"""How declared models (mlx.yaml) and observed ones (stores) are matched.

One canonical key per model, shared by the registry, status and the planner:
``ollama://<name>`` with Ollama's short name (``qwen2.5:7b``) and ``hf://<org>/<repo>``.
Ollama matches model names case-insensitively, so its keys are lowercased. Hugging Face
repos are matched exactly as spelled on disk: on a case-sensitive filesystem
``models--org--model`` and ``models--Org--Model`` are two repos, and treating them as one
would let a delete of one reach the other (docs/apply.md, "Confinement").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlxstate.sources import HfSource, OllamaSource

if TYPE_CHECKING:
    from mlxstate.facts import HfRepo, OllamaModel
    from mlxstate.mlxyaml.models import Spec

__all__ = ["declared_by_key", "hf_key", "ollama_key", "source_key"]


def ollama_key(model: OllamaModel | OllamaSource) -> str:
    return f"ollama://{model.name}".lower()


def hf_key(repo: HfRepo | HfSource, fold: bool = False) -> str:
    """``fold``: the cache is on a case-insensitive filesystem (macOS by default), where the
    two spellings are one folder, so they are one repo."""
    key = f"hf://{repo.repo_id}"
    return key.lower() if fold else key


def source_key(text: str, fold_hf: bool = False) -> str:
    """The match key of a source written as text (a registry row, a plan subject)."""
    from mlxstate.sources import parse_source

    try:
        src = parse_source(text)
    except ValueError:
        return text
    if isinstance(src, OllamaSource):
        return ollama_key(src)
    if isinstance(src, HfSource):
        return hf_key(src, fold_hf)
    return str(src)


def declared_by_key(spec: Spec | None, fold_hf: bool = False) -> dict[str, str]:
    """Canonical key → the mlx.yaml name that declares it (``ensure: present`` or not)."""
    out: dict[str, str] = {}
    for name, model in spec.models.items() if spec else ():
        source = model.parsed_source
        if isinstance(source, OllamaSource):
            out[ollama_key(source)] = name
        elif isinstance(source, HfSource):
            out[hf_key(source, fold_hf)] = name
    return out
