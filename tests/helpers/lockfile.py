"""mlx.lock documents written offline, for tests of what reads a lock (`mlx lock --check`,
the hooks, the action)."""

from __future__ import annotations

from pathlib import Path

from mlxstate.lock.model import (
    LockEntry,
    Lockfile,
    OllamaLayer,
    OllamaLock,
    dump_lock,
    input_hash,
)
from mlxstate.mlxyaml.load import parse_spec
from mlxstate.settings import read_environment

__all__ = ["ollama_lock_for"]


def ollama_lock_for(text: str) -> bytes:
    """The mlx.lock of a spec whose models are all ``ollama://``: what `mlx lock` would write
    for a registry serving a one-layer manifest for each (the digests are made up)."""
    loaded = parse_spec(text, file="mlx.yaml", base_dir=Path("/tmp"), env=read_environment())
    entries = {}
    for name, spec in loaded.spec.models.items():
        layer = OllamaLayer("sha256:" + "1" * 64, 4, "application/vnd.ollama.image.model")
        ollama = OllamaLock(str(spec.parsed_source), "sha256:" + "2" * 64, (layer,))
        entries[name] = LockEntry(str(spec.parsed_source), input_hash(spec), ollama=ollama)
    return dump_lock(Lockfile(entries))
