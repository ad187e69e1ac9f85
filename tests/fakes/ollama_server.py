"""A fake Ollama server on 127.0.0.1 backed by a real models folder on disk.

Endpoints (Ollama's docs/api.md)::

    GET    /                         "Ollama is running"
    GET    /api/version              {"version"}
    GET    /api/tags                 re-reads manifests/ each call; digest = sha256(manifest file)
    GET    /api/ps                   the models set with set_running()
    POST   /api/pull                 NDJSON progress, writes blobs (via -partial files) and manifest
    DELETE /api/delete               manifest, then the blobs no other manifest references; 404
    POST   /api/show                 modelfile (FROM <blob path>), details, capabilities; 404
    POST   /api/generate             deterministic fake text, NDJSON or one object; timings; 404
    POST   /api/chat                 the same text as a chat message (``message.content``); 404
    POST   /api/embed                deterministic unit vectors, one per input; timings; 404
    HEAD   /api/blobs/sha256:<hex>   200 / 404
    POST   /api/blobs/sha256:<hex>   201 written; 200 already present; 400 digest mismatch

Pullable models live in an in-memory registry filled with :meth:`FakeOllama.publish`.
A pull streams ``pulling manifest``, then per blob (layers, then config) ``pulling <12hex>``
lines with ``digest``/``total``/``completed`` (zeros omitted, as Ollama's ``omitempty``),
``verifying sha256 digest``, ``writing manifest``, ``success``. While a blob downloads, its
``<blob>-partial`` (pre-sized) and ``<blob>-partial-0`` sidecar exist; on success the
sidecar goes and the partial is renamed to the blob. A name not in the registry gets an
``{"error": "pull model manifest: file does not exist"}`` line after HTTP 200.

Pull fault knobs (counted in NDJSON lines sent, 0-based): ``pull_error_after`` sends an
``{"error"}`` line instead of line N and ends the stream cleanly; ``pull_drop_after`` cuts
the connection before line N (the partial files stay, as after a crash); ``pull_pause_after``
blocks before line N until ``pull_resume`` is set (``pull_paused`` is set while it waits, lines
0..N-1 sent); ``pull_line_delay`` sleeps between lines;
``corrupt`` (digests) serves wrong bytes so verification fails. ``fail()``, ``drop()`` and
``throttle()`` from the base class work on any path.

Lying-daemon knobs (the client must check the store, not believe the stream):
``pull_success_only`` answers a pull with one ``{"status":"success"}`` line and installs
nothing (a daemon serving another models folder looks like that); ``pull_garbage_after``
sends the raw bytes ``pull_garbage`` (no newline added: a truncated or 100k-deep line) in
place of line N and ends the stream; ``delete_drop`` cuts the connection of a delete
without an answer, ``"before"`` deleting anything or ``"after"`` deleting the model.

``/api/generate`` answers for installed models only (else 404 ``model 'x' not found``). The
text is deterministic: ``options.num_predict`` tokens (``done_reason: "length"``), else
``generate_tokens`` (``"stop"``), each a word chosen by hashing model, prompt and position.
Streaming sends one ``{"response": token, "done": false}`` line per token, then the final
``done: true`` object; ``stream: false`` sends only that object, with the whole text. The
final object carries Ollama's timings in NANOSECONDS, each omitted when zero: a cold model
(not in ``/api/ps``) costs ``generate_load_ns`` and becomes running; prompt and output
tokens cost ``generate_prompt_ns`` and ``generate_eval_ns`` each, so decode speed is
``1e9 / generate_eval_ns`` tok/s. An empty prompt only loads (``done_reason: "load"``), or
with ``keep_alive: 0`` unloads (``"unload"``).

Benchmark knobs: ``generate_first_delay`` / ``generate_token_delay`` really sleep (seconds)
before the first token and before each later one (0: off, tests stay fast; the counters
stay as configured). With ``prompt_cache`` on, the same prompt again on a running model is
served from the cache, as Ollama does: ``prompt_eval_count`` and ``prompt_eval_duration``
are left out. ``generate_error_after`` sends ``{"error": generate_error_message}`` in place
of token N after HTTP 200 (a runner that crashed mid-stream). ``generate_seconds`` adds up
the wall time spent answering ``/api/generate`` (the fake's own share of a benchmark).
``/api/show`` reports ``details`` (``parameter_size``, ``quantization_level``) and
``model_info`` with ``general.architecture``, ``general.parameter_count`` and
``<arch>.context_length`` (``context_length``), and ``capabilities``: ``completion``, plus
``vision`` for a model with a projector layer.

``/api/chat`` answers like ``/api/generate`` (same knobs, counters and words, the prompt
being the messages' contents joined by spaces), each streamed token as
``{"message": {"role": "assistant", "content": token}, "done": false}``; no messages only
loads the model. Images (``images`` of a generate request or of a chat message) must be
base64 (else 400 ``illegal base64 data``, as Go's JSON decoder says) and are refused with
400 ``"<model>" does not support vision`` unless the model has a projector, as Ollama
checks capabilities; the decoded bytes accepted are kept in ``images_seen``.
``/api/embed`` takes ``input`` (a string or a list of strings) and answers ``embeddings``:
one unit vector of ``embed_dimensions`` floats per input (``dimensions`` shortens them), a
pure function of model and text, with ``load_duration`` (cold), ``prompt_eval_count`` (the
inputs' words) and ``total_duration``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import math
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

from tests.builders.common import sha256_hex
from tests.builders.ollama_store import (
    MANIFEST_MEDIA_TYPE,
    Blob,
    Layers,
    ManifestInfo,
    ModelName,
    blob_path,
    build_manifest,
    compact_json,
    default_config,
    default_layers,
    manifest_path,
    parse_manifest,
    read_manifests,
    referenced_digests,
)
from tests.fakes._server import Exchange, LoopbackServer

DEFAULT_VERSION = "0.33.0"
_WORDS = (
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "models",
    "load",
    "and",
    "tokens",
    "flow",
    "through",
    "caches",
    "of",
    "local",
    "weights",
    "on",
    "quiet",
    "disks",
)


@dataclass(frozen=True)
class RegistryModel:
    """A model the fake registry can serve: manifest bytes and the blobs they name."""

    name: ModelName
    manifest: bytes
    blobs: Mapping[str, bytes]  # "sha256:<hex>" -> bytes

    @property
    def digest(self) -> str:
        """sha256 of the manifest bytes: what Ollama lists and what a lock pins."""
        return "sha256:" + sha256_hex(self.manifest)


def registry_model(
    name: str, layers: Layers | None = None, config: Mapping[str, object] | None = None
) -> RegistryModel:
    """A pullable model (same defaults as ``ollama_store.add_model``)."""
    parsed = ModelName.parse(name)
    layers = default_layers(parsed.full) if layers is None else layers
    config_blob = compact_json(dict(config) if config is not None else default_config(layers))
    blobs = {"sha256:" + sha256_hex(d): d for d in (*(d for _, d in layers), config_blob)}
    return RegistryModel(parsed, build_manifest(config_blob, layers), blobs)


class PullFailed(Exception):
    pass


def _iso(mtime: float) -> str:
    return datetime.fromtimestamp(mtime, UTC).astimezone().isoformat()


class FakeOllama(LoopbackServer):
    """Fake Ollama daemon serving ``models_dir``."""

    def __init__(self, models_dir: Path, *, version: str = DEFAULT_VERSION, port: int = 0) -> None:
        super().__init__(port)
        self.models_dir = Path(models_dir)
        self.version = version
        self.registry: dict[str, RegistryModel] = {}
        # A FakeOllamaRegistry's url: pulls then fetch manifests and blobs from it over HTTP
        # (instead of ``registry``), so a tag moved there is what the next pull gets.
        self.upstream: str | None = None
        self.running: dict[str, dict[str, object]] = {}
        self.pull_chunk_size = 256 * 1024
        self.pull_line_delay = 0.0
        self.pull_error_after: int | None = None
        self.pull_error_message = "max retries exceeded: unexpected EOF"
        self.pull_drop_after: int | None = None
        self.pull_pause_after: int | None = None
        self.pull_resume = threading.Event()
        self.pull_paused = threading.Event()
        self.corrupt: set[str] = set()
        self.pull_success_only = False
        self.pull_garbage_after: int | None = None
        self.pull_garbage = b"[" * 100_000
        self.delete_drop: Literal["before", "after"] | None = None
        self.generate_tokens = 8
        self.generate_load_ns = 250_000_000
        self.generate_prompt_ns = 2_000_000  # per prompt token
        self.generate_eval_ns = 20_000_000  # per output token: 50 tok/s
        self.generate_first_delay = 0.0  # seconds slept before the first token
        self.generate_token_delay = 0.0  # seconds slept before each later token
        self.prompt_cache = False
        self.generate_error_after: int | None = None
        self.generate_error_message = "llama runner process has terminated: exit status 2"
        self.generate_seconds = 0.0
        self.images_seen: list[bytes] = []  # decoded images of accepted requests, in order
        self.embed_dimensions = 8
        self.context_length = 8192
        self.parameter_count = 7_615_616_512
        self._cached_prompt: dict[str, str] = {}  # model -> the prompt its cache holds
        self._disk = threading.Lock()  # one pull/delete touches the store at a time

    # --- registry and state -------------------------------------------------------------------

    def publish(
        self,
        name: str,
        layers: Layers | None = None,
        config: Mapping[str, object] | None = None,
    ) -> RegistryModel:
        """Make ``name`` pullable (same defaults as ``ollama_store.add_model``)."""
        model = registry_model(name, layers, config)
        self.registry[model.name.full] = model
        return model

    def set_running(
        self, name: str, *, size_vram: int | None = None, context_length: int = 4096
    ) -> None:
        """Report an installed model as loaded in ``/api/ps``."""
        info = parse_manifest(self.models_dir, manifest_path(self.models_dir, name))
        self.running[info.name.full] = {
            "name": info.name.display,
            "model": info.name.display,
            "size": info.size,
            "digest": info.digest,
            "details": self._details(info),
            "expires_at": _iso(time.time() + 300),
            "size_vram": info.size if size_vram is None else size_vram,
            "context_length": context_length,
        }

    # --- HTTP ---------------------------------------------------------------------------------

    def handle(self, ex: Exchange) -> None:
        path, method = ex.request.path, ex.method
        if path == "/" and method in ("GET", "HEAD"):
            ex.send(200, b"Ollama is running", {"Content-Type": "text/plain; charset=utf-8"})
        elif path == "/api/version" and method == "GET":
            ex.send_json(200, {"version": self.version})
        elif path == "/api/tags" and method in ("GET", "HEAD"):
            ex.send_json(200, {"models": self._tags()})
        elif path == "/api/ps" and method == "GET":
            ex.send_json(200, {"models": list(self.running.values())})
        elif path == "/api/pull" and method == "POST":
            self._pull(ex)
        elif path == "/api/delete" and method == "DELETE":
            self._delete(ex)
        elif path == "/api/show" and method == "POST":
            self._show(ex)
        elif path == "/api/generate" and method == "POST":
            self._timed(ex, self._generate_answer)
        elif path == "/api/chat" and method == "POST":
            self._timed(ex, self._chat_answer)
        elif path == "/api/embed" and method == "POST":
            self._embed(ex)
        elif path.startswith("/api/blobs/") and method in ("HEAD", "POST"):
            self._blob(ex, unquote(path.removeprefix("/api/blobs/")))
        else:
            ex.send(404, b"404 page not found", {"Content-Type": "text/plain"})

    def _body(self, ex: Exchange) -> dict[str, object]:
        try:
            value = json.loads(ex.request.body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def _model_arg(self, ex: Exchange) -> str:
        body = self._body(ex)
        return str(body.get("model") or body.get("name") or "")

    def _installed(self, name: str) -> ManifestInfo | None:
        try:
            return parse_manifest(self.models_dir, manifest_path(self.models_dir, name))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _not_found(self, ex: Exchange, name: str) -> None:
        ex.send_json(404, {"error": f"model '{name}' not found"})

    @staticmethod
    def _details(info: ManifestInfo) -> dict[str, object]:
        try:
            config = json.loads(info.blob_path(info.config).read_bytes())
        except (OSError, ValueError):
            config = {}
        return {
            "parent_model": "",
            "format": config.get("model_format", ""),
            "family": config.get("model_family", ""),
            "families": config.get("model_families"),
            "parameter_size": config.get("model_type", ""),
            "quantization_level": config.get("file_type", ""),
        }

    def _tags(self) -> list[dict[str, object]]:
        manifests, _broken = read_manifests(self.models_dir)  # Ollama skips what fails to parse
        models: list[dict[str, object]] = []
        for info in manifests:
            if not info.blob_path(info.config).is_file():
                continue  # Ollama logs "bad manifest filepath" and skips the model
            models.append(
                {
                    "name": info.name.display,
                    "model": info.name.display,
                    "modified_at": _iso(info.path.stat().st_mtime),
                    "size": info.size,
                    "digest": info.digest,
                    "details": self._details(info),
                }
            )
        return models

    # --- delete, show, blobs ------------------------------------------------------------------

    def _delete(self, ex: Exchange) -> None:
        name = self._model_arg(ex)
        if self.delete_drop == "before":
            ex.drop()
        with self._disk:
            info = self._installed(name) if name else None
            if info is None:
                self._not_found(ex, name)
                return
            self._remove_manifest(info)
            self.running.pop(info.name.full, None)
        if self.delete_drop == "after":
            ex.drop()
        ex.send(200)

    def _remove_manifest(self, info: ManifestInfo) -> None:
        """Delete a manifest, then its blobs that no remaining manifest references."""
        info.path.unlink()
        self._prune_empty_dirs(info.path.parent)
        remaining, _broken = read_manifests(self.models_dir)
        self._remove_unused(info.blobs, referenced_digests(remaining))

    def _remove_unused(self, blobs: tuple[Blob, ...], keep: set[str]) -> list[str]:
        removed: list[str] = []
        for blob in blobs:
            path = blob_path(self.models_dir, blob.digest)
            if blob.digest not in keep and (path.is_file() or path.is_symlink()):
                path.unlink()
                removed.append(blob.digest)
        return removed

    def _prune_empty_dirs(self, folder: Path) -> None:
        root = self.models_dir / "manifests"
        while folder != root and folder.is_relative_to(root):
            try:
                folder.rmdir()
            except OSError:
                return
            folder = folder.parent

    def _show(self, ex: Exchange) -> None:
        name = self._model_arg(ex)
        info = self._installed(name) if name else None
        if info is None:
            self._not_found(ex, name)
            return
        details = self._details(info)
        lines = [
            '# Modelfile generated by "ollama show"',
            "# To build a new Modelfile based on this, replace FROM with:",
            f"# FROM {info.name.display}",
            "",
        ]
        texts: dict[str, str] = {}
        for layer in info.layers:
            kind = layer.media_type.rsplit(".", 1)[-1]
            if kind in ("model", "projector", "adapter"):
                prefix = "FROM" if kind != "adapter" else "ADAPTER"
                lines.append(f"{prefix} {info.blob_path(layer)}")
            elif kind in ("template", "system", "license", "params"):
                texts[kind] = info.blob_path(layer).read_text(errors="replace")
        for kind in ("template", "system", "license"):
            if kind in texts:
                lines.append(f'{kind.upper()} """{texts[kind]}"""')
        capabilities = ["completion"]
        if info.layer("projector") is not None:
            capabilities.append("vision")
        ex.send_json(
            200,
            {
                "modelfile": "\n".join(lines) + "\n",
                "parameters": texts.get("params", ""),
                "template": texts.get("template", ""),
                "license": texts.get("license", ""),
                "details": details,
                "model_info": {
                    "general.architecture": details["family"],
                    "general.parameter_count": self.parameter_count,
                    f"{details['family']}.context_length": self.context_length,
                },
                "capabilities": capabilities,
                "modified_at": _iso(info.path.stat().st_mtime),
            },
        )

    def _blob(self, ex: Exchange, digest: str) -> None:
        hex_digest = digest.removeprefix("sha256:")
        if not digest.startswith("sha256:") or len(hex_digest) != 64:
            ex.send_json(400, {"error": f"invalid digest {digest!r}"})
            return
        path = blob_path(self.models_dir, hex_digest)
        if ex.method == "HEAD":
            ex.send(200 if path.is_file() else 404)
        elif path.is_file():
            ex.send(200)
        elif sha256_hex(ex.request.body) != hex_digest:
            ex.send_json(400, {"error": "digest mismatch"})
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}-upload")
            tmp.write_bytes(ex.request.body)
            os.replace(tmp, path)
            ex.send(201)

    # --- generate -----------------------------------------------------------------------------

    def _timed(self, ex: Exchange, answer: Callable[[Exchange], None]) -> None:
        start = time.perf_counter()
        try:
            answer(ex)
        finally:
            with self._lock:
                self.generate_seconds += time.perf_counter() - start

    def _model_for(self, ex: Exchange, body: Mapping[str, object]) -> ManifestInfo | None:
        """The installed model a generation names, else None with the error sent."""
        name = str(body.get("model") or "")
        if not name:
            ex.send_json(400, {"error": "model is required"})
            return None
        info = self._installed(name)
        if info is None:
            self._not_found(ex, name)
        return info

    def _accept_images(self, ex: Exchange, info: ManifestInfo, images: list[object]) -> bool:
        """Ollama's checks on images: base64 (JSON ``[]byte``), and a model that has vision."""
        decoded: list[bytes] = []
        for image in images:
            try:
                decoded.append(base64.b64decode(str(image), validate=True))
            except (binascii.Error, ValueError):
                ex.send_json(400, {"error": "illegal base64 data at input byte 0"})
                return False
        if decoded and info.layer("projector") is None:
            ex.send_json(400, {"error": f'"{info.name.display}" does not support vision'})
            return False
        self.images_seen.extend(decoded)
        return True

    def _generate_answer(self, ex: Exchange) -> None:
        body = self._body(ex)
        info = self._model_for(ex, body)
        images = body.get("images")
        if info is None or not self._accept_images(ex, info, _list(images)):
            return
        self._answer(ex, body, info, str(body.get("prompt") or ""), _as_generate)

    def _chat_answer(self, ex: Exchange) -> None:
        body = self._body(ex)
        info = self._model_for(ex, body)
        if info is None:
            return
        messages = [m for m in _list(body.get("messages")) if isinstance(m, dict)]
        images = [image for m in messages for image in _list(m.get("images"))]
        if not self._accept_images(ex, info, images):
            return
        prompt = " ".join(str(m.get("content") or "") for m in messages).strip()
        self._answer(ex, body, info, prompt, _as_chat)

    def _answer(
        self,
        ex: Exchange,
        body: Mapping[str, object],
        info: ManifestInfo,
        prompt: str,
        shape: Callable[[str], dict[str, object]],
    ) -> None:
        """Generate for ``prompt``; ``shape`` puts a piece of text in the endpoint's field."""
        name = str(body.get("model"))
        options = body.get("options")
        limit = options.get("num_predict") if isinstance(options, dict) else None
        cold = info.name.full not in self.running
        head: dict[str, object] = {"model": name, "created_at": _iso(time.time())}
        if not prompt:
            if body.get("keep_alive") in (0, "0", "0s"):
                self.running.pop(info.name.full, None)
                self._cached_prompt.pop(info.name.full, None)
                final = {**head, **shape(""), "done": True, "done_reason": "unload"}
            else:
                self.set_running(info.name.full)
                final = {**head, **shape(""), "done": True, "done_reason": "load"}
                final.update(_durations(load_duration=self.generate_load_ns if cold else 0))
            ex.send_json(200, final)
            return
        count = limit if isinstance(limit, int) and limit >= 0 else self.generate_tokens
        tokens = fake_tokens(name, prompt, count)
        cached = self.prompt_cache and self._cached_prompt.get(info.name.full) == prompt
        prompt_count = 0 if cached else len(prompt.split())
        self.set_running(info.name.full)
        self._cached_prompt[info.name.full] = prompt
        load = self.generate_load_ns if cold else 0
        prompt_ns = prompt_count * self.generate_prompt_ns
        eval_ns = count * self.generate_eval_ns
        final = {
            **head,
            **shape(""),
            "done": True,
            "done_reason": "length" if limit is not None else "stop",
            **_durations(
                total_duration=load + prompt_ns + eval_ns,
                load_duration=load,
                prompt_eval_count=prompt_count,
                prompt_eval_duration=prompt_ns,
                eval_count=count,
                eval_duration=eval_ns,
            ),
        }
        if body.get("stream", True) is False:
            ex.send_json(200, {**final, **shape("".join(tokens))})
            return
        ex.start(200, {"Content-Type": "application/x-ndjson"}, chunked=True)
        for index, token in enumerate(tokens):
            delay = self.generate_first_delay if index == 0 else self.generate_token_delay
            if delay:
                time.sleep(delay)
            if self.generate_error_after == index:
                ex.write_chunk(_line({"error": self.generate_error_message}))
                ex.end_chunks()
                return
            ex.write_chunk(_line({**head, **shape(token), "done": False}))
        ex.write_chunk(_line(final))
        ex.end_chunks()

    # --- embed --------------------------------------------------------------------------------

    def _embed(self, ex: Exchange) -> None:
        body = self._body(ex)
        info = self._model_for(ex, body)
        if info is None:
            return
        given = body.get("input")
        texts = [given] if isinstance(given, str) else _list(given)
        if not all(isinstance(text, str) for text in texts):
            ex.send_json(400, {"error": "invalid input type"})
            return
        dims = body.get("dimensions")
        size = dims if isinstance(dims, int) and 0 < dims < self.embed_dimensions else None
        load = self.generate_load_ns if info.name.full not in self.running else 0
        self.set_running(info.name.full)
        words = sum(len(str(text).split()) for text in texts)
        vectors = [fake_embedding(info.name.display, str(t), self.embed_dimensions) for t in texts]
        ex.send_json(
            200,
            {
                "model": str(body.get("model")),
                "embeddings": [v[:size] if size else v for v in vectors],
                **_durations(
                    total_duration=load + words * self.generate_prompt_ns,
                    load_duration=load,
                    prompt_eval_count=words,
                ),
            },
        )

    # --- pull ---------------------------------------------------------------------------------

    def _pull(self, ex: Exchange) -> None:
        body = self._body(ex)
        name = self._model_arg(ex)
        if not name:
            ex.send_json(400, {"error": "model is required"})
            return
        events = self._pull_events(name)
        if body.get("stream", True) is False:
            self._pull_unstreamed(ex, events)
            return
        ex.start(200, {"Content-Type": "application/x-ndjson"}, chunked=True)
        if self.pull_success_only:
            events.close()
            ex.write_chunk(b'{"status":"success"}\n')
            ex.end_chunks()
            return
        try:
            self._stream(ex, events)
        finally:
            events.close()  # releases the store lock and closes the partial file

    def _stream(self, ex: Exchange, events: Iterator[dict[str, object]]) -> None:
        # Knobs are checked before the next step runs, so the disk shows lines 0..N-1 done.
        for index in itertools.count():
            if self.pull_pause_after == index:
                self.pull_paused.set()
                while not self.pull_resume.wait(0.05):
                    if self.stopping.is_set():
                        ex.drop()
            if self.pull_drop_after == index:
                ex.drop()
            if self.pull_garbage_after == index:
                ex.write_chunk(self.pull_garbage)
                break
            if self.pull_error_after == index:
                event: dict[str, object] | None = {"error": self.pull_error_message}
            else:
                event = next(events, None)
            if event is None:
                break
            ex.write_chunk(json.dumps(event, separators=(",", ":")).encode() + b"\n")
            if "error" in event:
                break
            if self.pull_line_delay:
                time.sleep(self.pull_line_delay)
        ex.end_chunks()

    def _pull_unstreamed(self, ex: Exchange, events: Iterator[dict[str, object]]) -> None:
        last: dict[str, object] = {}
        for last in events:
            if "error" in last:
                ex.send_json(500, {"error": last["error"]})
                return
        ex.send_json(200, last)

    def _pull_events(self, name: str) -> Generator[dict[str, object], None, None]:
        """Do the pull step by step, yielding each progress line as it becomes true."""
        yield {"status": "pulling manifest"}
        try:
            parsed = ModelName.parse(name)
        except ValueError:
            yield {"error": f"invalid model name: {name}"}
            return
        model = self._pullable(parsed)
        if model is None:
            yield {"error": "pull model manifest: file does not exist"}
            return
        with self._disk:
            manifest = json.loads(model.manifest)
            blobs = [*manifest["layers"], manifest["config"]]
            fetched: list[str] = []
            for entry in blobs:
                digest = str(entry["digest"])
                if not blob_path(self.models_dir, digest).is_file():
                    fetched.append(digest)
                yield from self._download(digest, model.blobs.get(digest, b""))
            yield {"status": "verifying sha256 digest"}
            for digest in fetched:
                error = self._verify(digest)
                if error:
                    yield {"error": error}
                    return
            yield {"status": "writing manifest"}
            yield from self._write_manifest(model)
        yield {"status": "success"}

    def _pullable(self, name: ModelName) -> RegistryModel | None:
        if self.upstream is None:
            return self.registry.get(name.full)
        base = f"{self.upstream}/v2/{name.namespace}/{name.model}"
        manifest = _fetch(f"{base}/manifests/{name.tag}", MANIFEST_MEDIA_TYPE)
        if manifest is None:
            return None
        doc = json.loads(manifest)
        blobs: dict[str, bytes] = {}
        for entry in [*doc["layers"], doc["config"]]:
            digest = str(entry["digest"])
            if not blob_path(self.models_dir, digest).is_file():
                blobs[digest] = _fetch(f"{base}/blobs/{digest}", "*/*") or b""
        return RegistryModel(name, manifest, blobs)

    def _download(self, digest: str, data: bytes) -> Iterator[dict[str, object]]:
        status = f"pulling {digest.removeprefix('sha256:')[:12]}"
        target = blob_path(self.models_dir, digest)
        if target.is_file():  # cache hit: one line, complete
            size = target.stat().st_size
            yield _progress(status, digest, size, size)
            return
        if digest in self.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:] if data else b"\0"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = Path(f"{target}-partial")
        sidecar = Path(f"{partial}-0")
        total, done = len(data), 0
        with partial.open("wb") as f:
            f.truncate(total)  # Ollama pre-sizes the partial file
            _write_sidecar(sidecar, total, done)
            yield _progress(status, digest, total, done)
            while done < total:
                chunk = data[done : done + self.pull_chunk_size]
                f.write(chunk)
                f.flush()
                done += len(chunk)
                _write_sidecar(sidecar, total, done)
                yield _progress(status, digest, total, done)
        sidecar.unlink()
        os.replace(partial, target)

    def _verify(self, digest: str) -> str | None:
        path = blob_path(self.models_dir, digest)
        actual = "sha256:" + sha256_hex(path.read_bytes())
        if actual == digest:
            return None
        path.unlink()
        return f"digest mismatch, file must be downloaded again: want {digest}, got {actual}"

    def _write_manifest(self, model: RegistryModel) -> Iterator[dict[str, object]]:
        path = manifest_path(self.models_dir, model.name)
        old = self._installed(model.name.full)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(model.manifest)  # stored byte-for-byte as the registry sent it
        if old is not None:
            remaining, _broken = read_manifests(self.models_dir)
            if self._remove_unused(old.blobs, referenced_digests(remaining)):
                yield {"status": "removing unused layers"}


def _fetch(url: str, accept: str) -> bytes | None:
    """GET from the upstream fake registry; None on a 404."""
    request = urllib.request.Request(url, headers={"Accept": accept})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


def fake_tokens(model: str, prompt: str, count: int) -> list[str]:
    """The text ``/api/generate`` answers: ``count`` words, a pure function of the inputs."""
    seed = hashlib.sha256(f"{model}\0{prompt}".encode()).digest()
    return [
        ("" if i == 0 else " ") + _WORDS[(seed[i % len(seed)] + i) % len(_WORDS)]
        for i in range(count)
    ]


def fake_embedding(model: str, text: str, dimensions: int) -> list[float]:
    """The vector ``/api/embed`` answers for ``text``: unit length, a pure function."""
    seed = hashlib.sha256(f"{model}\0{text}".encode()).digest()
    raw = [seed[i % len(seed)] - 127.5 for i in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def _as_generate(text: str) -> dict[str, object]:
    return {"response": text}


def _as_chat(text: str) -> dict[str, object]:
    return {"message": {"role": "assistant", "content": text}}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _line(value: Mapping[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode() + b"\n"


def _durations(**values: int) -> dict[str, int]:
    """Ollama's ``omitempty`` timing fields: zeros are left out."""
    return {key: value for key, value in values.items() if value}


def _progress(status: str, digest: str, total: int, completed: int) -> dict[str, object]:
    event: dict[str, object] = {"status": status, "digest": digest}
    if total:
        event["total"] = total
    if completed:
        event["completed"] = completed
    return event


def _write_sidecar(path: Path, size: int, completed: int) -> None:
    record = {"N": 0, "Offset": 0, "Size": size, "Completed": completed}
    path.write_bytes(compact_json(record) + b"\n")
