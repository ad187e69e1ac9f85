"""An OpenAI-compatible server as a benchmark engine: LM Studio, llama.cpp's llama-server,
mlx_lm.server, vLLM, Ollama's own ``/v1``. ``mlx bench run --engine openai --endpoint URL``.

The API has no timing counters of its own, so figures are wall clock on the stream
(docs/benchmarks.md, "OpenAI-compatible servers"): time to first token from the request to
the first content delta; generation tok/s = (completion tokens - 1) / (last delta - first
delta), so the prompt and the first token are not counted as decoding; prompt tok/s =
prompt tokens / time to first token. A server that reports its own timings (llama-server's
``timings`` object) is believed instead. Token counts come from the final ``usage`` chunk
(``stream_options.include_usage``); a server that sends none is counted one token per
content delta.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from mlxstate._httpx import httpx
from mlxstate.bench.engines._http import bounded, count, json_object, positive, said
from mlxstate.bench.engines.base import BenchTarget, EngineError, Loaded, Measurement
from mlxstate.text import printable

__all__ = ["OpenAIEngine", "OpenAISession"]

TIMEOUT = httpx.Timeout(30.0, connect=5.0, read=300.0)


class OpenAIEngine:
    name = "openai"

    def __init__(
        self, endpoint: str, api_key: str | None = None, client: httpx.Client | None = None
    ) -> None:
        # Accept both http://host:port and http://host:port/v1.
        base = endpoint.rstrip("/")
        self.base = base if base.endswith("/v1") else f"{base}/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.Client(timeout=TIMEOUT, trust_env=False, headers=headers)

    def close(self) -> None:
        self.client.close()

    def version(self) -> str | None:
        """llama-server says its build in ``/props``; other servers have no standard way."""
        root = self.base.removesuffix("/v1")
        try:
            reply = self.client.get(f"{root}/props", timeout=5.0)
        except httpx.HTTPError:
            return None
        doc = json_object(reply) if reply.is_success else {}
        build = doc.get("build_info")
        return printable(build)[:100] if isinstance(build, str) and build else None

    def conditions(self) -> dict[str, Any]:
        return {"openai_endpoint": self.base}

    def models(self) -> list[str]:
        try:
            reply = self.client.get(f"{self.base}/models")
        except httpx.HTTPError as exc:
            raise self.unreachable(exc) from None
        if not reply.is_success:
            raise EngineError(f"{self.base}/models answered HTTP {reply.status_code}")
        data = json_object(reply).get("data")
        return (
            [str(m["id"]) for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
            if isinstance(data, list)
            else []
        )

    @contextmanager
    def load(self, target: BenchTarget) -> Iterator[OpenAISession]:
        served = self.models()
        model = _served_as(target.ref, served)
        if model is None:
            listed = ", ".join(served[:5]) or "none"
            raise EngineError(
                f"the server at {self.base} does not serve {target.ref} (it serves: {listed});"
                " load the model in the server first"
            )
        yield OpenAISession(self, model, Loaded({"served_as": model, "endpoint": self.base}))

    def unreachable(self, exc: httpx.HTTPError) -> EngineError:
        if isinstance(exc, httpx.ConnectError):
            return EngineError(f"no server answers at {self.base}; start it and run again")
        if isinstance(exc, httpx.TimeoutException):
            return EngineError(f"the server at {self.base} stopped answering")
        return EngineError(f"lost the connection to {self.base}: {exc or type(exc).__name__}")


def _served_as(ref: str, served: list[str]) -> str | None:
    """The server's id for ``ref``: exact, then case-insensitive, then the id whose last
    path part is the repo name (LM Studio lists ``org/repo``; some servers list a path)."""
    if ref in served:
        return ref
    folded = ref.lower()
    for model in served:
        if model.lower() == folded:
            return model
    tail = folded.rsplit("/", 1)[-1]
    matches = [m for m in served if m.lower().rstrip("/").rsplit("/", 1)[-1] == tail]
    return matches[0] if len(matches) == 1 else None


@dataclass
class _Stream:
    start: float
    first: float | None = None
    last: float | None = None
    deltas: int = 0
    text: list[str] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, Any] = field(default_factory=dict)


class OpenAISession:
    def __init__(self, engine: OpenAIEngine, model: str, loaded: Loaded) -> None:
        self.engine, self.model, self.loaded = engine, model, loaded

    def generate(self, prompt: str, *, max_tokens: int, seed: int) -> Measurement:
        body = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max_tokens,
            "temperature": 0,
            "seed": seed,
        }
        engine = self.engine
        stream = _Stream(start=time.perf_counter())
        try:
            with engine.client.stream(
                "POST", f"{engine.base}/chat/completions", json=body
            ) as reply:
                if not reply.is_success:
                    reply.read()
                    raise EngineError(
                        f"{engine.base}/chat/completions answered HTTP {reply.status_code}:"
                        f" {said(reply)}"
                    )
                _read_events(bounded(reply.iter_lines(), max_tokens, "the server"), stream)
        except httpx.HTTPError as exc:
            raise engine.unreachable(exc) from None
        return _measure(stream)


def _read_events(lines: Iterator[str], stream: _Stream) -> None:
    """Server-sent events: ``data: {json}`` lines, ending with ``data: [DONE]``."""
    done = False
    for line in lines:
        if done or not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            done = True
            continue
        try:
            event = json.loads(payload)
        except ValueError:
            raise EngineError(
                f"the server sent an event that is not JSON: {printable(payload[:80])}"
            ) from None
        if not isinstance(event, dict):
            continue
        if "error" in event:
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise EngineError(f"the server: {printable(str(message))[:200]}")
        _take(event, stream)
    if not done and stream.deltas == 0:
        raise EngineError("the stream ended before any token or [DONE]")


def _take(event: dict[str, Any], stream: _Stream) -> None:
    choices = event.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        piece = delta.get("content") if isinstance(delta, dict) else None
        if isinstance(piece, str) and piece:
            now = time.perf_counter()
            stream.first = stream.first or now
            stream.last = now
            stream.deltas += 1
            stream.text.append(piece)
    if isinstance(event.get("usage"), dict):
        stream.usage = event["usage"]
    if isinstance(event.get("timings"), dict):
        stream.timings = event["timings"]


def _measure(stream: _Stream) -> Measurement:
    first = stream.first if stream.first is not None else time.perf_counter()
    ttft_s = first - stream.start
    gen_tokens = count(stream.usage.get("completion_tokens")) or stream.deltas
    prompt_tokens = count(stream.usage.get("prompt_tokens"))
    timings = stream.timings
    gen_tps = positive(timings.get("predicted_per_second"))
    prompt_tps = positive(timings.get("prompt_per_second"))
    if gen_tps is None and stream.last is not None and gen_tokens > 1 and stream.last > first:
        gen_tps = (gen_tokens - 1) / (stream.last - first)
    if prompt_tps is None and prompt_tokens and ttft_s > 0:
        prompt_tps = prompt_tokens / ttft_s
    return Measurement(
        ttft_ms=ttft_s * 1000,
        prompt_tokens=prompt_tokens or count(timings.get("prompt_n")),
        prompt_tps=prompt_tps,
        gen_tokens=gen_tokens,
        gen_tps=gen_tps,
        text="".join(stream.text),
    )
