"""An Ollama pull pinned by mlx.lock (docs/lock.md).

Ollama pulls a tag, never a digest, so the lock cannot make it fetch an old manifest. What
it can do: ask the registry what the tag is now before the pull (a moved tag fails the
action and nothing is pulled), and read the installed manifest back after it (the tag could
move during the pull).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from mlxstate.errors import ActionError
from mlxstate.lock.model import OllamaLock
from mlxstate.lock.use import same_manifest
from mlxstate.observe.ollama_store import read_one_model
from mlxstate.sources import OllamaSource
from mlxstate.text import printable

__all__ = ["MANIFEST_TYPE", "check_installed", "check_upstream", "registry_url", "tag_digest"]

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
DEFAULT_REGISTRY = "https://registry.ollama.ai"
_MAX_MANIFEST = 4 << 20  # a manifest is a few KB; a registry must not fill the memory


def registry_url(src: OllamaSource, registry: str) -> str:
    """Where the tag is resolved: ``registry`` (settings.ollama.registry) for Ollama's own
    registry, the name's own host otherwise (``hf.co/...`` resolves at hf.co)."""
    if src.host.lower() == "registry.ollama.ai":
        return registry.rstrip("/")
    return f"https://{src.host}"


def tag_digest(src: OllamaSource, registry: str, client: Any) -> str:
    """``sha256:<hex>`` of the manifest bytes the registry serves for the tag now
    (``GET /v2/<namespace>/<model>/manifests/<tag>``); ActionError when it cannot say."""
    from mlxstate._httpx import httpx

    base = registry_url(src, registry)
    url = f"{base}/v2/{src.namespace}/{src.model}/manifests/{src.tag}"
    try:
        with client.stream("GET", url, headers={"Accept": MANIFEST_TYPE}) as r:
            if r.status_code == 404:
                raise ActionError(f"{src}: the registry at {base} has no such tag")
            if r.status_code != 200:
                raise ActionError(f"{src}: the registry at {base} answered HTTP {r.status_code}")
            body = b""
            for chunk in r.iter_bytes():
                body += chunk
                if len(body) > _MAX_MANIFEST:
                    raise ActionError(f"{src}: the registry at {base} sent no manifest")
    except httpx.HTTPError as exc:
        raise ActionError(
            f"cannot ask the registry at {base} about {src} ({type(exc).__name__}); "
            "a pull pinned by mlx.lock needs it"
        ) from None
    return "sha256:" + hashlib.sha256(body).hexdigest()


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
