"""Ollama effects: pull through the API (streamed NDJSON), delete through the API or, with
the daemon down, on disk by Ollama's own rules."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlxstate.apply import failpoints
from mlxstate.errors import ActionError
from mlxstate.sources import OllamaSource

__all__ = ["OllamaEffects"]

PULL_TIMEOUT = 600.0  # seconds without a byte before a stalled pull fails


class OllamaEffects:
    def __init__(self, host: str, models_dir: Path, client: Any = None) -> None:
        self.host, self.models_dir = host, models_dir
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlxstate._httpx import httpx

            self._client = httpx.Client(
                timeout=httpx.Timeout(10.0, read=PULL_TIMEOUT), trust_env=False
            )
        return self._client

    def _not_running(self) -> ActionError:
        return ActionError(
            f"Ollama is not running at {self.host}; start it (`ollama serve`, or open the "
            "Ollama app) and run `mlx apply` again"
        )

    def pull(self, src: OllamaSource, progress: Callable[[int, int | None], None]) -> None:
        """``POST /api/pull``; every NDJSON line is checked: an ``error`` after HTTP 200 fails."""
        from mlxstate._httpx import httpx

        done: dict[str, tuple[int, int]] = {}
        try:
            with self.client.stream(
                "POST", f"{self.host}/api/pull", json={"model": src.name, "stream": True}
            ) as r:
                if r.status_code != 200:
                    r.read()
                    why = f"HTTP {r.status_code} {_error_text(r.text)}"
                    raise ActionError(f"Ollama refused to pull {src.name}: {why}")
                success = False
                for line in r.iter_lines():
                    if not line.strip():
                        continue
                    msg = _parse_line(line, src.name)
                    if "error" in msg:
                        raise ActionError(f"pull of {src.name} failed: {msg['error']}")
                    if msg.get("digest") and msg.get("total"):
                        done[msg["digest"]] = (int(msg.get("completed") or 0), int(msg["total"]))
                        progress(sum(c for c, _ in done.values()), sum(t for _, t in done.values()))
                    success = success or msg.get("status") == "success"
        except httpx.ConnectError:
            raise self._not_running() from None
        except httpx.HTTPError as exc:
            raise ActionError(
                f"pull of {src.name} was cut off ({type(exc).__name__}: {exc})"
            ) from None
        if not success:
            raise ActionError(
                f"pull of {src.name} ended before Ollama reported success (connection dropped?)"
            )

    def delete(self, src: OllamaSource) -> str:
        """``DELETE /api/delete``; with the daemon down, the same on disk. Returns how."""
        from mlxstate._httpx import httpx

        try:
            r = self.client.request("DELETE", f"{self.host}/api/delete", json={"model": src.name})
        except httpx.ConnectError:
            return self.delete_on_disk(src)
        except httpx.HTTPError as exc:
            raise ActionError(f"delete of {src.name} failed: {exc}") from None
        if r.status_code == 404:
            return "already gone"
        if r.status_code != 200:
            raise ActionError(
                f"Ollama refused to delete {src.name}: HTTP {r.status_code} {_error_text(r.text)}"
            )
        return "deleted through the Ollama API"

    def delete_on_disk(self, src: OllamaSource) -> str:
        """Remove the manifest, then the blobs no remaining manifest references.

        Same rule as Ollama's DELETE and its pruning (server/images.go): a blob goes only
        when no other manifest references it, and none goes when any manifest cannot be
        parsed (its blobs would look unreferenced). The manifest goes FIRST: a crash after it
        leaves orphan blobs (harmless, reclaimable); the other order would leave a manifest
        pointing at missing blobs, a broken model Ollama would still list.
        """
        from mlxstate.observe.ollama_store import manifest_path

        manifest = manifest_path(self.models_dir, (src.host, src.namespace, src.model, src.tag))
        try:
            layers = _layer_digests(json.loads(manifest.read_bytes()))
        except FileNotFoundError:
            return "already gone"
        except (OSError, ValueError) as exc:
            raise ActionError(f"cannot read the manifest {manifest}: {exc}") from None
        others, unreadable = _referenced_by_others(self.models_dir / "manifests", manifest)
        manifest.unlink()
        failpoints.hit("ollama.delete.manifest")
        _remove_empty_parents(manifest.parent, self.models_dir / "manifests")
        if unreadable:
            return "deleted on disk (daemon down); blobs kept: a manifest could not be read"
        for digest in sorted(layers - others):
            blob = self.models_dir / "blobs" / f"sha256-{digest}"
            with contextlib.suppress(FileNotFoundError):
                blob.unlink()
            failpoints.hit("ollama.delete.blob")
        return "deleted on disk (Ollama daemon not running)"


def _error_text(body: str) -> str:
    try:
        return str(json.loads(body).get("error", body))[:300]
    except (ValueError, AttributeError):
        return body[:300]


def _parse_line(line: str, name: str) -> dict[str, Any]:
    try:
        msg = json.loads(line)
    except ValueError:
        raise ActionError(
            f"pull of {name}: Ollama sent a line that is not JSON: {line[:120]!r}"
        ) from None
    if not isinstance(msg, dict):
        raise ActionError(f"pull of {name}: unexpected reply from Ollama: {line[:120]!r}")
    return msg


def _layer_digests(doc: Any) -> set[str]:
    items = [doc.get("config"), *doc.get("layers", [])]
    return {
        str(x["digest"]).removeprefix("sha256:")
        for x in items
        if isinstance(x, dict) and "digest" in x
    }


def _referenced_by_others(folder: Path, skip: Path) -> tuple[set[str], bool]:
    used: set[str] = set()
    unreadable = False
    for dirpath, _dirs, files in os.walk(folder):
        for fname in files:
            path = Path(dirpath, fname)
            if path == skip:
                continue
            try:
                used |= _layer_digests(json.loads(path.read_bytes()))
            except (OSError, ValueError, AttributeError, TypeError):
                unreadable = True
    return used, unreadable


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
