"""Ollama effects: pull through the API (streamed NDJSON), delete through the API or, with
the daemon down, on disk by Ollama's own rules.

The daemon's last word is never trusted: after each pull or delete the store on disk is
read again, so a daemon serving another ``OLLAMA_MODELS`` (or a dropped connection) fails
the action instead of passing for done."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlxstate.apply import failpoints
from mlxstate.errors import ActionError
from mlxstate.observe.ollama_store import (
    blob_file,
    manifest_candidates,
    manifest_digests,
    read_one_model,
    referenced_digests,
    valid_name,
)
from mlxstate.sources import OllamaSource
from mlxstate.text import printable

__all__ = ["OllamaEffects", "confine", "unlink_in_store"]

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

    @staticmethod
    def _elsewhere() -> str:
        return "is the daemon using another OLLAMA_MODELS?"

    def pull(self, src: OllamaSource, progress: Callable[[int, int | None], None]) -> None:
        """``POST /api/pull``; every NDJSON line is checked: an ``error`` after HTTP 200 fails.
        Then the model must be in the store, complete: the stream alone proves nothing."""
        self._stream_pull(src, progress)
        model = read_one_model(self.models_dir, _parts(src))
        where = printable(str(self.models_dir))
        if model is None:
            raise ActionError(
                f"ollama said success but {src.name} is not in {where}; {self._elsewhere()}"
            )
        if model.status != "ok":
            raise ActionError(
                f"ollama said success but {src.name} in {where} is broken "
                f"({model.problems[0]}); {self._elsewhere()}"
            )

    def _stream_pull(self, src: OllamaSource, progress: Callable[[int, int | None], None]) -> None:
        from mlxstate._httpx import httpx

        done: dict[str, tuple[int, int]] = {}
        success = False
        try:
            with self.client.stream(
                "POST", f"{self.host}/api/pull", json={"model": src.name, "stream": True}
            ) as r:
                if r.status_code != 200:
                    r.read()
                    why = f"HTTP {r.status_code} {_error_text(r.text)}"
                    raise ActionError(f"Ollama refused to pull {src.name}: {why}")
                for line in r.iter_lines():
                    if not line.strip():
                        continue
                    msg = _parse_line(line, src.name)
                    if "error" in msg:
                        raise ActionError(f"pull of {src.name} failed: {_text(msg['error'])}")
                    if _count(msg.get("total")) and isinstance(msg.get("digest"), str):
                        done[msg["digest"]] = (_count(msg.get("completed")), _count(msg["total"]))
                        progress(sum(c for c, _ in done.values()), sum(t for _, t in done.values()))
                    success = success or msg.get("status") == "success"
        except httpx.ConnectError:
            raise self._not_running() from None
        except httpx.HTTPError as exc:
            raise ActionError(
                f"pull of {src.name} was cut off ({type(exc).__name__}: {_text(exc)})"
            ) from None
        if not success:
            raise ActionError(
                f"pull of {src.name} ended before Ollama reported success (connection dropped?)"
            )

    def delete(self, src: OllamaSource) -> str:
        """``DELETE /api/delete``; with the daemon down, the same on disk. Returns how.
        Either way the manifest must be gone from the store afterwards."""
        from mlxstate._httpx import httpx

        variants = len(manifest_candidates(self.models_dir, _parts(src)))
        try:
            r = self.client.request("DELETE", f"{self.host}/api/delete", json={"model": src.name})
        except httpx.ConnectError:
            how = self.delete_on_disk(src)
            self._check_gone(src, f"the on-disk delete of {src.name} left")
            return how
        except httpx.HTTPError as exc:
            # The daemon may have deleted it before the connection broke: the store decides.
            self._check_gone(src, f"delete of {src.name} failed ({type(exc).__name__}) and left")
            return "deleted through the Ollama API (its answer was cut off)"
        if r.status_code not in (200, 404):
            raise ActionError(
                f"Ollama refused to delete {src.name}: HTTP {r.status_code} {_error_text(r.text)}"
            )
        said = "deleted" if r.status_code == 200 else "has no"
        hint = self._elsewhere()
        if variants > 1:  # Ollama deleted one of them; which one it matched is its choice
            hint = f"{variants} case variants of the name were on disk; remove the rest by hand"
        self._check_gone(src, f"ollama said it {said} {src.name} but left", hint)
        return "deleted through the Ollama API" if r.status_code == 200 else "already gone"

    def _check_gone(self, src: OllamaSource, what: str, hint: str = "") -> None:
        left = manifest_candidates(self.models_dir, _parts(src))
        if left:
            tail = f"; {hint}" if hint else ""
            raise ActionError(f"{what} its manifest {printable(str(left[0]))}{tail}")

    def delete_on_disk(self, src: OllamaSource) -> str:
        """Remove the manifest, then the blobs no remaining manifest references.

        Same rule as Ollama's DELETE and its pruning (server/images.go): a blob goes only
        when no other manifest references it, and none goes when any manifest cannot be
        parsed (its blobs would look unreferenced). The manifest goes FIRST: a crash after it
        leaves orphan blobs (harmless, reclaimable); the other order would leave a manifest
        pointing at missing blobs, a broken model Ollama would still list.
        """
        manifest = self._the_manifest(src)
        if manifest is None:
            return "already gone"
        try:
            layers = manifest_digests(manifest)  # validated: blob paths are built from these
        except FileNotFoundError:
            return "already gone"
        except (OSError, ValueError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise ActionError(
                f"cannot read the manifest {printable(str(manifest))}: {why}; left alone"
            ) from None
        others, unreadable = referenced_digests(self.models_dir, skip=manifest)
        blobs = self.models_dir / "blobs"
        for digest in () if unreadable else sorted(layers - others):
            confine(blob_file(self.models_dir, digest), blobs)  # refused before any change
        unlink_in_store(manifest, self.models_dir / "manifests")
        failpoints.hit("ollama.delete.manifest")
        _remove_empty_parents(manifest.parent, self.models_dir / "manifests")
        if unreadable:
            return "deleted on disk (daemon down); blobs kept: a manifest could not be read"
        problems = []
        for digest in sorted(layers - others):
            try:
                unlink_in_store(blob_file(self.models_dir, digest), blobs)
            except ActionError as exc:
                problems.append(exc.message)  # the other blobs still go
            failpoints.hit("ollama.delete.blob")
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise ActionError(f"{src.name}: manifest deleted, but {problems[0]}{more}")
        return "deleted on disk (Ollama daemon not running)"

    def _the_manifest(self, src: OllamaSource) -> Path | None:
        """The one manifest on disk this name means; refuses to guess between case variants
        (Ollama matches names ignoring case, so it could not tell them apart either)."""
        parts = _parts(src)
        if not valid_name(parts):
            raise ActionError(f"refusing to delete {printable(src.name)}: not a valid Ollama name")
        found = manifest_candidates(self.models_dir, parts)
        if len(found) > 1:
            listed = ", ".join(printable(str(p)) for p in found)
            raise ActionError(
                f"cannot delete {src.name} on disk: {len(found)} manifests match it ignoring "
                f"case ({listed}); remove the one you do not want by hand, then apply again"
            )
        return found[0] if found else None


def confine(path: Path, folder: Path) -> None:
    """Raise unless ``path``'s parent, resolved, lies inside ``folder``. The file itself is
    not resolved: a symlinked blob is deleted as a link, never its target."""
    # ``folder`` (the store's blobs/ or manifests/) is resolved only down to its parent: when
    # it is itself a link to elsewhere, what lies behind it is not the store's to delete.
    top = os.path.join(os.path.realpath(folder.parent), folder.name)
    parent = os.path.realpath(path.parent)
    if os.path.commonpath([parent, top]) != top:
        raise ActionError(
            f"refusing to delete {printable(str(path))}: it resolves outside "
            f"{printable(str(folder))}"
        )


def unlink_in_store(path: Path, folder: Path) -> bool:
    """Unlink a file (or link) confined to ``folder``; False when already gone. Any failure
    is one clear ActionError line."""
    confine(path, folder)
    where = printable(str(path))
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise ActionError(f"cannot delete {where}: it is a folder; left alone")
        os.unlink(path)
    except FileNotFoundError:
        return False
    except PermissionError:
        raise ActionError(f"cannot delete {where}: permission denied") from None
    except OSError as exc:
        raise ActionError(f"cannot delete {where}: {exc.strerror or exc}") from None
    return True


def _parts(src: OllamaSource) -> tuple[str, str, str, str]:
    return (src.host, src.namespace, src.model, src.tag)


def _text(value: object) -> str:
    return printable(str(value))[:300]


def _count(value: object) -> int:
    """A byte count from the stream; anything but a non-negative int counts as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _error_text(body: str) -> str:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return _text(body)
    return _text(doc.get("error", body) if isinstance(doc, dict) else body)


def _parse_line(line: str, name: str) -> dict[str, Any]:
    try:
        msg = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: a line nested 100k deep
        raise ActionError(
            f"pull of {name}: Ollama sent a line that is not JSON: {printable(line[:120])!r}"
        ) from None
    if not isinstance(msg, dict):
        raise ActionError(
            f"pull of {name}: unexpected reply from Ollama: {printable(line[:120])!r}"
        )
    return msg


def _remove_empty_parents(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_relative_to(stop):
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
