"""A fake Ollama registry on 127.0.0.1: the OCI distribution API a pull and `mlx lock` use.

Endpoints (the distribution spec, as registry.ollama.ai serves them)::

    GET  /v2/                                         200 {}
    GET  /v2/<namespace>/<model>/manifests/<tag>      the manifest bytes, as published;
    HEAD same                                         Content-Type + Docker-Content-Digest
    GET  /v2/<namespace>/<model>/blobs/sha256:<hex>   the blob's bytes
    HEAD same

Unknown names answer 404 ``{"errors": [{"code": "MANIFEST_UNKNOWN" | "BLOB_UNKNOWN", ...}]}``.
The manifest digest (``Docker-Content-Digest``) is the sha256 of the bytes served, which is
what Ollama stores and lists.

Publish with :meth:`publish` (same defaults as ``FakeOllama.publish``); publishing the same
name again **moves the tag** to a new manifest, as a model update upstream does. Point a
:class:`~tests.fakes.ollama_server.FakeOllama` at it with ``daemon.upstream = registry.url``
and its pulls fetch manifests and blobs from here, so a test sees the tag move.
``fail()``, ``drop()`` and ``throttle()`` from the base class work on any path.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from tests.builders.ollama_store import MANIFEST_MEDIA_TYPE, Layers, ModelName
from tests.fakes._server import Exchange, LoopbackServer
from tests.fakes.ollama_server import RegistryModel, registry_model


class FakeOllamaRegistry(LoopbackServer):
    """In-memory registry. Names are keyed by namespace/model:tag (the host is the fake's)."""

    def __init__(self, port: int = 0) -> None:
        super().__init__(port)
        self._models: dict[tuple[str, str, str], RegistryModel] = {}
        self._blobs: dict[str, bytes] = {}
        self._state = threading.Lock()

    # --- content ------------------------------------------------------------------------------

    def publish(
        self,
        name: str,
        layers: Layers | None = None,
        config: Mapping[str, object] | None = None,
    ) -> RegistryModel:
        """Serve ``name`` (moving its tag when it was published before); returns the model,
        whose ``digest`` is what a lock of it pins."""
        model = registry_model(name, layers, config)
        with self._state:
            self._models[_key(model.name)] = model
            self._blobs.update(model.blobs)
        return model

    def unpublish(self, name: str) -> None:
        with self._state:
            del self._models[_key(ModelName.parse(name))]

    def model(self, name: str) -> RegistryModel:
        with self._state:
            return self._models[_key(ModelName.parse(name))]

    # --- HTTP ---------------------------------------------------------------------------------

    def handle(self, ex: Exchange) -> None:
        parts = ex.request.parts
        if ex.method not in ("GET", "HEAD") or not parts or parts[0] != "v2":
            _error(ex, 404, "NAME_UNKNOWN", "repository name not known to registry")
        elif len(parts) == 1:
            ex.send_json(200, {})
        elif len(parts) == 5 and parts[3] == "manifests":
            self._manifest(ex, parts[1], parts[2], parts[4])
        elif len(parts) == 5 and parts[3] == "blobs":
            self._blob(ex, parts[4])
        else:
            _error(ex, 404, "NAME_UNKNOWN", "repository name not known to registry")

    def _manifest(self, ex: Exchange, namespace: str, model: str, tag: str) -> None:
        with self._state:
            found = self._models.get((namespace.lower(), model.lower(), tag.lower()))
        if found is None:
            _error(ex, 404, "MANIFEST_UNKNOWN", "manifest unknown")
            return
        headers = {
            "Content-Type": MANIFEST_MEDIA_TYPE,
            "Docker-Content-Digest": found.digest,
        }
        ex.send(200, found.manifest, headers)

    def _blob(self, ex: Exchange, digest: str) -> None:
        with self._state:
            data = self._blobs.get(digest)
        if data is None:
            _error(ex, 404, "BLOB_UNKNOWN", "blob unknown to registry")
            return
        headers = {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest}
        ex.send(200, data, headers)


def _key(name: ModelName) -> tuple[str, str, str]:
    # Ollama names compare case-insensitively.
    return (name.namespace.lower(), name.model.lower(), name.tag.lower())


def _error(ex: Exchange, status: int, code: str, message: str) -> None:
    ex.send_json(status, {"errors": [{"code": code, "message": message, "detail": {}}]})
