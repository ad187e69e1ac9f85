"""Readable, unique mlx.yaml names for sources (``mlx init`` and ``mlx add``)."""

from __future__ import annotations

import re
from collections.abc import Container

from mlxstate.sources import FileSource, HfSource, OllamaSource, Source

__all__ = ["derive_name"]

_BAD = re.compile(r"[^a-z0-9._-]+")


def _clean(text: str) -> str:
    name = _BAD.sub("-", text.lower()).strip("-._")
    return name[:64].rstrip("-._") or "model"


def _candidates(source: Source) -> list[str]:
    if isinstance(source, OllamaSource):
        base = source.model if source.tag == "latest" else f"{source.model}-{source.tag}"
        prefix = source.namespace if source.namespace != "library" else source.host.split(".")[0]
        return [_clean(base), _clean(f"{prefix}-{base}")]
    if isinstance(source, HfSource):
        org, repo = source.repo_id.split("/", 1)
        return [_clean(repo), _clean(f"{org}-{repo}")]
    assert isinstance(source, FileSource)
    return [_clean(source.path.stem or source.path.name)]


def derive_name(source: Source, taken: Container[str]) -> str:
    """``qwen2.5:7b`` → ``qwen2.5-7b``; ``hf://org/Repo`` → ``repo``; made unique."""
    options = _candidates(source)
    for name in options:
        if name not in taken:
            return name
    n = 2
    while f"{options[0][:60]}-{n}" in taken:
        n += 1
    return f"{options[0][:60]}-{n}"
