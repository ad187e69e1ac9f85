"""The Ollama engine: streaming ``/api/generate`` against the daemon at ``settings.ollama_host``.

Figures come from the final chunk's counters, read by the same code as the Python client's
results (``mlxstate._ollama.counters``; docs/benchmarks.md, "What is measured"): generation
tok/s = ``eval_count / eval_duration * 1e9``, prompt tok/s from ``prompt_eval_count`` /
``prompt_eval_duration``, load time from ``load_duration``; a missing counter is "not
measured" (None), never a zero rate. Time to first token is wall clock on the stream.
``keep_alive`` keeps the model loaded for the run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlxstate._httpx import httpx
from mlxstate._ollama.counters import Counters, counters
from mlxstate.bench.engines._http import bounded, json_object, said
from mlxstate.bench.engines.base import BenchTarget, EngineError, Loaded, Measurement
from mlxstate.observe.ollama_api import probe_daemon
from mlxstate.text import printable

__all__ = ["KEEP_ALIVE", "OllamaEngine", "OllamaSession"]

KEEP_ALIVE = "10m"  # between two generations of a run the model must not be unloaded
# A long prompt on a slow machine can take minutes before its first token; a dead daemon
# must still fail fast (connect), and a stalled stream must end (read, per chunk).
TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=300.0)


class OllamaEngine:
    name = "ollama"

    def __init__(self, host: str, client: httpx.Client | None = None) -> None:
        self.host = host.rstrip("/")
        self.client = client or httpx.Client(timeout=TIMEOUT, trust_env=False)
        self._current: str | None = None  # the model being measured: not "another model"

    def close(self) -> None:
        self.client.close()

    def version(self) -> str | None:
        daemon = probe_daemon(self.host, self.client)
        return daemon.version if daemon.reachable else None

    def conditions(self) -> dict[str, Any]:
        """The other models Ollama holds in memory now (``/api/ps``): they share the memory
        bandwidth and can explain a slow run."""
        daemon = probe_daemon(self.host, self.client)
        if not daemon.reachable:
            return {"ollama_loaded": None}
        current = (self._current or "").lower()
        return {
            "ollama_loaded": [
                {"name": m.name, "size": m.size, "size_vram": m.size_vram}
                for m in daemon.running
                if m.name.lower() != current
            ]
        }

    @contextmanager
    def load(self, target: BenchTarget) -> Iterator[OllamaSession]:
        identity = self._identity(target.ref)
        self._current = target.ref
        try:
            yield OllamaSession(self, target.ref, Loaded(identity))
        finally:
            self._current = None

    # -- HTTP ------------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return self.client.post(f"{self.host}{path}", json=body)
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None

    def unreachable(self, exc: httpx.HTTPError) -> EngineError:
        if isinstance(exc, httpx.ConnectError):
            return EngineError(
                f"Ollama is not running at {self.host}; start it (`ollama serve`, or open the "
                "Ollama app) and run the benchmark again"
            )
        if isinstance(exc, httpx.TimeoutException):
            return EngineError(f"Ollama at {self.host} stopped answering ({type(exc).__name__})")
        return EngineError(f"lost the connection to Ollama at {self.host}: {exc or type(exc)}")

    def refused(self, ref: str, response: httpx.Response) -> EngineError:
        if response.status_code == 404:
            return EngineError(
                f"model {ref} is not in Ollama at {self.host}; install it with `mlx apply`"
            )
        return EngineError(f"Ollama answered HTTP {response.status_code}: {said(response)}")

    def _identity(self, ref: str) -> dict[str, Any]:
        """What exactly is measured: manifest digest, quantization, size, context length."""
        shown = self._post("/api/show", {"model": ref})
        if not shown.is_success:
            raise self.refused(ref, shown)
        doc = json_object(shown)
        details, info = _mapping(doc.get("details")), _mapping(doc.get("model_info"))
        arch = info.get("general.architecture")
        context = info.get(f"{arch}.context_length") if isinstance(arch, str) else None
        return {
            "digest": self._digest(ref),
            "format": _text(details.get("format")),
            "family": _text(details.get("family")),
            "quantization": _text(details.get("quantization_level")),
            "parameter_size": _text(details.get("parameter_size")),
            "context_length": context if isinstance(context, int) else None,
        }

    def _digest(self, ref: str) -> str | None:
        """The manifest digest ``/api/tags`` lists for ``ref`` (None when not listed)."""
        try:
            tags = self.client.get(f"{self.host}/api/tags")
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None
        models = json_object(tags).get("models") if tags.is_success else None
        for model in models if isinstance(models, list) else []:
            if isinstance(model, dict) and str(model.get("name", "")).lower() == ref.lower():
                return _text(model.get("digest"))
        return None


class OllamaSession:
    """A model Ollama keeps loaded; one :meth:`generate` per measured generation."""

    def __init__(self, engine: OllamaEngine, ref: str, loaded: Loaded) -> None:
        self.engine, self.ref, self.loaded = engine, ref, loaded

    def generate(self, prompt: str, *, max_tokens: int, seed: int) -> Measurement:
        body = {
            "model": self.ref,
            "prompt": prompt,
            "stream": True,
            "keep_alive": KEEP_ALIVE,
            "options": {"temperature": 0, "seed": seed, "num_predict": max_tokens},
        }
        engine = self.engine
        start = time.perf_counter()
        try:
            with engine.client.stream("POST", f"{engine.host}/api/generate", json=body) as reply:
                if not reply.is_success:
                    reply.read()
                    raise engine.refused(self.ref, reply)
                lines = bounded(reply.iter_lines(), max_tokens, "Ollama")
                first, final, text = _read_stream(lines, start)
        except httpx.HTTPError as exc:
            raise engine.unreachable(exc) from None
        ttft = (first if first is not None else time.perf_counter()) - start
        return measurement(final, ttft, text)


def _read_stream(lines: Iterator[str], start: float) -> tuple[float | None, dict[str, Any], str]:
    """(time of the first token, the final chunk, the text) of an NDJSON generate stream."""
    first: float | None = None
    parts: list[str] = []
    final: dict[str, Any] | None = None
    for line in lines:
        if final is not None or not line.strip():
            continue  # read to the end: a connection closed with bytes unread is reset
        try:
            chunk = json.loads(line)
        except ValueError:
            raise EngineError(
                f"Ollama sent a line that is not JSON: {printable(line[:80])}"
            ) from None
        if not isinstance(chunk, dict):
            raise EngineError("Ollama sent an unexpected stream (not JSON objects)")
        if "error" in chunk:  # after HTTP 200: the runner failed mid-generation
            raise EngineError(f"Ollama: {printable(str(chunk['error']))[:200]}")
        piece = chunk.get("response")
        if first is None and isinstance(piece, str) and piece:
            first = time.perf_counter()
        if isinstance(piece, str):
            parts.append(piece)
        if chunk.get("done") is True:
            final = chunk
    if final is None:
        raise EngineError("the Ollama stream ended before its final chunk (done: true)")
    return first, final, "".join(parts)


def measurement(final: dict[str, Any], ttft_s: float, text: str = "") -> Measurement:
    """Rates from the final chunk's counters (ns); omitted fields are zero, except a missing
    ``prompt_eval_count`` (a cached prompt): its rate is unknown, not zero."""
    figures = Counters(**counters(final))
    return Measurement(
        ttft_ms=ttft_s * 1000,
        prompt_tokens=figures.prompt_eval_count,
        prompt_tps=figures.prompt_tps,
        gen_tokens=figures.eval_count,
        gen_tps=figures.gen_tps,
        load_ms=figures.load_ms,
        text=text,
    )


def _text(value: Any) -> str | None:
    return printable(value)[:100] if isinstance(value, str) and value else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
