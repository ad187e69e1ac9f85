"""An Ollama pull pinned by mlx.lock (docs/lock.md).

Ollama pulls a tag, never a digest, so the lock cannot make it fetch an old manifest. What
it can do: ask the registry what the tag is now before the pull (a moved tag fails the
action and nothing is pulled), and read the installed manifest back after it (the tag could
move during the pull).
"""

from __future__ import annotations

from pathlib import Path

from mlxstate.errors import ActionError
from mlxstate.lock.model import OllamaLock
from mlxstate.lock.use import same_manifest
from mlxstate.observe.ollama_store import read_one_model
from mlxstate.sources import OllamaSource
from mlxstate.text import printable

__all__ = ["check_installed", "check_upstream"]


def check_upstream(name: str, src: OllamaSource, lock: OllamaLock, now: str) -> None:
    if now != lock.digest:
        raise ActionError(
            f"upstream tag moved for {name} (locked {lock.digest[:19]}, now {now[:19]}); "
            f"run `mlx lock --upgrade {name}`"
        )


def check_installed(name: str, src: OllamaSource, lock: OllamaLock, models_dir: Path) -> None:
    """After the pull: the store holds the locked manifest."""
    parts = (src.host, src.namespace, src.model, src.tag)
    model = read_one_model(models_dir, parts)
    if model is None or not same_manifest(model, lock):
        got = f"sha256:{model.manifest_digest[:12]}" if model is not None else "nothing"
        raise ActionError(
            f"{name}: the pull installed {got}, not the locked {lock.digest[:19]} (the tag "
            f"moved during the pull?) in {printable(str(models_dir))}; "
            f"run `mlx lock --upgrade {name}` if the new one is wanted"
        )
