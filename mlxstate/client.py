"""A typed Ollama client for apps: ``OllamaClient`` (sync) and ``AsyncOllamaClient``.

::

    from mlxstate.client import OllamaClient

    with OllamaClient() as ollama:  # $OLLAMA_HOST, else http://127.0.0.1:11434
        reply = ollama.chat("llava:7b", [{"role": "user", "content": "what is this?",
                                          "images": ["cat.jpg"]}])
        print(reply.message.content, reply.gen_tps)

Every final result carries the engine's counters (``eval_count``, ``eval_duration``,
``prompt_eval_count``, ``load_duration``, ...) and the figures derived from them
(``gen_tps``, ``prompt_tps``, ``load_ms``) — the same code `mlx bench` measures with.
Timeouts are finite: connecting fails in 5 s, and a stream that sends nothing for
``timeout`` seconds (default 300: a long prompt on a slow machine) fails. Errors are typed:
:class:`DaemonDown`, :class:`ModelNotFound`, :class:`StreamError`, all :class:`OllamaError`.
Images (``images=`` of generate, ``"images"`` of a chat message) are file paths, bytes or
base64 text. docs/api.md has examples.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from mlxstate._httpx import httpx
from mlxstate._ollama import wire
from mlxstate._ollama.counters import Counters
from mlxstate._ollama.errors import DaemonDown, ModelNotFound, OllamaError, StreamError
from mlxstate._ollama.types import (
    ChatChunk,
    ChatResult,
    EmbedResult,
    GenerateChunk,
    GenerateResult,
    Message,
    ModelDetails,
    ModelInfo,
    PullProgress,
    ShowResult,
)
from mlxstate._ollama.wire import Image, MessageInput
from mlxstate.facts import RunningModel
from mlxstate.observe.ollama_api import running_models

__all__ = [
    "AsyncOllamaClient",
    "ChatChunk",
    "ChatResult",
    "Counters",
    "DaemonDown",
    "EmbedResult",
    "GenerateChunk",
    "GenerateResult",
    "Image",
    "Message",
    "MessageInput",
    "ModelDetails",
    "ModelInfo",
    "ModelNotFound",
    "OllamaClient",
    "OllamaError",
    "PullProgress",
    "RunningModel",
    "ShowResult",
    "StreamError",
]

DEFAULT_TIMEOUT = 300.0  # seconds without a byte from the daemon (a read, a stream chunk)
CONNECT_TIMEOUT = 5.0  # a dead daemon fails fast


def _host(host: str | None) -> str:
    from mlxstate.settings import normalize_ollama_host, read_environment

    if host is None:
        return read_environment().ollama_host()
    try:
        return normalize_ollama_host(host, strict=True)
    except ValueError as exc:
        raise OllamaError(str(exc)) from None


def _timeout(seconds: float) -> httpx.Timeout:
    if not (isinstance(seconds, int | float) and math.isfinite(seconds) and seconds > 0):
        raise OllamaError(f"timeout must be a positive number of seconds, not {seconds!r}")
    return httpx.Timeout(seconds, connect=min(CONNECT_TIMEOUT, seconds))


def _checked(host: str, path: str, status: int, got: wire.Body, model: str | None) -> str:
    """The text of a whole answer, or the error its status or size is."""
    if not 200 <= status < 300:
        raise wire.refused(host, path, status, got.text(), model)
    if got.full:
        raise wire.too_large(host, path)
    return got.text()


class _Base:
    """What both clients share: the host, and the request bodies of each method."""

    host: str

    def _generate(self, model: str, prompt: str, stream: bool, **kw: Any) -> dict[str, Any]:
        return wire.generate_body(model, prompt, stream=stream, **kw)

    def _chat(
        self, model: str, messages: Sequence[MessageInput], stream: bool, **kw: Any
    ) -> dict[str, Any]:
        return wire.chat_body(model, messages, stream=stream, **kw)


class OllamaClient(_Base):
    """Talks to the Ollama daemon at ``host`` (default: ``$OLLAMA_HOST`` as Ollama reads it).

    ``http``: an ``httpx.Client`` to use instead of the client's own (tests, proxies); it is
    not closed by :meth:`close`.
    """

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.Client | None = None,
    ) -> None:
        self.host = _host(host)
        self._own = http is None
        self.http = http or httpx.Client(timeout=_timeout(timeout), trust_env=False)

    def close(self) -> None:
        if self._own:
            self.http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- generation ------------------------------------------------------------------------

    def generate(
        self,
        model: str,
        prompt: str,
        *,
        images: Sequence[Image] | None = None,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        format: str | Mapping[str, Any] | None = None,
        keep_alive: str | float | None = None,
        think: bool | None = None,
    ) -> GenerateResult:
        body = self._generate(
            model, prompt, False, images=images, system=system, options=options,
            format=format, keep_alive=keep_alive, think=think,
        )  # fmt: skip
        return wire.generate_result(self._json("POST", "/api/generate", body, model))

    def stream_generate(
        self,
        model: str,
        prompt: str,
        *,
        images: Sequence[Image] | None = None,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        format: str | Mapping[str, Any] | None = None,
        keep_alive: str | float | None = None,
        think: bool | None = None,
    ) -> Iterator[GenerateChunk]:
        """The answer as it is generated; the last chunk (``done``) carries the counters."""
        body = self._generate(
            model, prompt, True, images=images, system=system, options=options,
            format=format, keep_alive=keep_alive, think=think,
        )  # fmt: skip
        for doc in self._lines("/api/generate", body, model):
            yield wire.generate_chunk(doc)

    def chat(
        self,
        model: str,
        messages: Sequence[MessageInput],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        options: Mapping[str, Any] | None = None,
        format: str | Mapping[str, Any] | None = None,
        keep_alive: str | float | None = None,
        think: bool | None = None,
    ) -> ChatResult:
        body = self._chat(
            model, messages, False, tools=tools, options=options, format=format,
            keep_alive=keep_alive, think=think,
        )  # fmt: skip
        return wire.chat_result(self._json("POST", "/api/chat", body, model))

    def stream_chat(
        self,
        model: str,
        messages: Sequence[MessageInput],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        options: Mapping[str, Any] | None = None,
        format: str | Mapping[str, Any] | None = None,
        keep_alive: str | float | None = None,
        think: bool | None = None,
    ) -> Iterator[ChatChunk]:
        """The reply as it is generated (``chunk.content``); the last chunk (``done``)
        carries the counters."""
        body = self._chat(
            model, messages, True, tools=tools, options=options, format=format,
            keep_alive=keep_alive, think=think,
        )  # fmt: skip
        for doc in self._lines("/api/chat", body, model):
            yield wire.chat_chunk(doc)

    def embed(
        self,
        model: str,
        input: str | Sequence[str],
        *,
        truncate: bool | None = None,
        dimensions: int | None = None,
        keep_alive: str | float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> EmbedResult:
        """One vector per input text (one text: ``result.embeddings[0]``)."""
        body = wire.embed_body(
            model, input, truncate=truncate, dimensions=dimensions, keep_alive=keep_alive,
            options=options,
        )  # fmt: skip
        return wire.embed_result(self._json("POST", "/api/embed", body, model))

    # -- models ------------------------------------------------------------------------------

    def version(self) -> str:
        return wire.json_object(self._text("GET", "/api/version")).get("version", "") or ""

    def list(self) -> list[ModelInfo]:
        """The installed models (``/api/tags``)."""
        return wire.models(self._json("GET", "/api/tags"))

    def ps(self) -> tuple[RunningModel, ...]:
        """The models loaded in memory now (``/api/ps``)."""
        return running_models(self._json("GET", "/api/ps"))

    def show(self, model: str) -> ShowResult:
        return wire.show_result(self._json("POST", "/api/show", {"model": model}, model))

    def pull(
        self, model: str, progress: Callable[[PullProgress], None] | None = None
    ) -> PullProgress:
        """Download ``model`` into Ollama; ``progress`` sees every line. Returns the last
        (``status == "success"``). Note: `mlx apply` is how declared models get installed
        (ownership, journal); this is Ollama's own pull."""
        last = PullProgress("")
        for last in self.stream_pull(model):
            if progress is not None:
                progress(last)
        return last

    def stream_pull(self, model: str) -> Iterator[PullProgress]:
        for doc in self._lines("/api/pull", {"model": model, "stream": True}, model):
            yield wire.pull_progress(doc)

    # -- HTTP --------------------------------------------------------------------------------

    def _text(self, method: str, path: str, body: Any = None, model: str | None = None) -> str:
        try:
            with self.http.stream(method, f"{self.host}{path}", json=body) as reply:
                got = wire.Body(reply.is_success)
                for data in reply.iter_bytes():  # bounded: never a whole endless answer
                    if not got.feed(data):
                        break
        except httpx.HTTPError as exc:
            raise wire.unreachable(self.host, exc) from None
        return _checked(self.host, path, reply.status_code, got, model)

    def _json(
        self, method: str, path: str, body: Any = None, model: str | None = None
    ) -> dict[str, Any]:
        return wire.answer(self._text(method, path, body, model))

    def _lines(self, path: str, body: dict[str, Any], model: str) -> Iterator[dict[str, Any]]:
        """The objects of an NDJSON stream up to its final one; closing early (a ``break`` in
        the caller's loop) closes the connection."""
        try:
            with self.http.stream("POST", f"{self.host}{path}", json=body) as reply:
                if not reply.is_success:
                    got = wire.Body(success=False)
                    for data in reply.iter_bytes():  # only the start of an error page
                        if not got.feed(data):
                            break
                    raise wire.refused(self.host, path, reply.status_code, got.text(), model)
                lines = wire.Lines()
                for data in reply.iter_bytes():
                    for doc in wire.objects(lines.feed(data)):
                        yield doc
                        if wire.is_final(doc):
                            return
                for doc in wire.objects(lines.end()):
                    yield doc
                    if wire.is_final(doc):
                        return
        except httpx.HTTPError as exc:
            raise wire.unreachable(self.host, exc) from None
        raise wire.unfinished()


class AsyncOllamaClient(_Base):
    """:class:`OllamaClient` for asyncio (and anyio): the same methods, awaited; the
    ``stream_*`` methods are async iterators (``async for chunk in ...``)."""

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.host = _host(host)
        self._own = http is None
        self.http = http or httpx.AsyncClient(timeout=_timeout(timeout), trust_env=False)

    async def aclose(self) -> None:
        if self._own:
            await self.http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def generate(
        self,
        model: str,
        prompt: str,
        *,
        images: Sequence[Image] | None = None,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        format: str | Mapping[str, Any] | None = None,
        keep_alive: str | float | None = None,
        think: bool | None = None,
    ) -> GenerateResult:
        body = self._generate(
            model, prompt, False, images=images, system=system, options=options,
            format=format, keep_alive=keep_alive, think=think,
        )  # fmt: skip
        return wire.generate_result(await self._json("POST", "/api/generate", body, model))

    async def stream_generate(
        self,
        model: str,
        prompt: str,
        *,
        images: Sequence[Image] | None = None,
        system: str | None = None,
        options: Mapping[str, Any] | None = None,
        format: str | Mapping[str, Any] | None = None,
        keep_alive: str | float | None = None,
        think: bool | None = None,
    ) -> AsyncIterator[GenerateChunk]:
        body = self._generate(
            model, prompt, True, images=images, system=system, options=options,
            format=format, keep_alive=keep_alive, think=think,
        )  # fmt: skip
        async for doc in self._lines("/api/generate", body, model):
            yield wire.generate_chunk(doc)

    async def chat(
        self,
        model: str,
        messages: Sequence[MessageInput],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        options: Mapping[str, Any] | None = None,
        format: str | Mapping[str, Any] | None = None,
        keep_alive: str | float | None = None,
        think: bool | None = None,
    ) -> ChatResult:
        body = self._chat(
            model, messages, False, tools=tools, options=options, format=format,
            keep_alive=keep_alive, think=think,
        )  # fmt: skip
        return wire.chat_result(await self._json("POST", "/api/chat", body, model))

    async def stream_chat(
        self,
        model: str,
        messages: Sequence[MessageInput],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        options: Mapping[str, Any] | None = None,
        format: str | Mapping[str, Any] | None = None,
        keep_alive: str | float | None = None,
        think: bool | None = None,
    ) -> AsyncIterator[ChatChunk]:
        body = self._chat(
            model, messages, True, tools=tools, options=options, format=format,
            keep_alive=keep_alive, think=think,
        )  # fmt: skip
        async for doc in self._lines("/api/chat", body, model):
            yield wire.chat_chunk(doc)

    async def embed(
        self,
        model: str,
        input: str | Sequence[str],
        *,
        truncate: bool | None = None,
        dimensions: int | None = None,
        keep_alive: str | float | None = None,
        options: Mapping[str, Any] | None = None,
    ) -> EmbedResult:
        body = wire.embed_body(
            model, input, truncate=truncate, dimensions=dimensions, keep_alive=keep_alive,
            options=options,
        )  # fmt: skip
        return wire.embed_result(await self._json("POST", "/api/embed", body, model))

    async def version(self) -> str:
        return wire.json_object(await self._text("GET", "/api/version")).get("version", "") or ""

    async def list(self) -> list[ModelInfo]:
        return wire.models(await self._json("GET", "/api/tags"))

    async def ps(self) -> tuple[RunningModel, ...]:
        return running_models(await self._json("GET", "/api/ps"))

    async def show(self, model: str) -> ShowResult:
        return wire.show_result(await self._json("POST", "/api/show", {"model": model}, model))

    async def pull(
        self, model: str, progress: Callable[[PullProgress], None] | None = None
    ) -> PullProgress:
        last = PullProgress("")
        async for last in self.stream_pull(model):
            if progress is not None:
                progress(last)
        return last

    async def stream_pull(self, model: str) -> AsyncIterator[PullProgress]:
        async for doc in self._lines("/api/pull", {"model": model, "stream": True}, model):
            yield wire.pull_progress(doc)

    async def _text(
        self, method: str, path: str, body: Any = None, model: str | None = None
    ) -> str:
        try:
            async with self.http.stream(method, f"{self.host}{path}", json=body) as reply:
                got = wire.Body(reply.is_success)
                async for data in reply.aiter_bytes():  # bounded: never a whole endless answer
                    if not got.feed(data):
                        break
        except httpx.HTTPError as exc:
            raise wire.unreachable(self.host, exc) from None
        return _checked(self.host, path, reply.status_code, got, model)

    async def _json(
        self, method: str, path: str, body: Any = None, model: str | None = None
    ) -> dict[str, Any]:
        return wire.answer(await self._text(method, path, body, model))

    async def _lines(
        self, path: str, body: dict[str, Any], model: str
    ) -> AsyncIterator[dict[str, Any]]:
        try:
            async with self.http.stream("POST", f"{self.host}{path}", json=body) as reply:
                if not reply.is_success:
                    got = wire.Body(success=False)
                    async for data in reply.aiter_bytes():  # only the start of an error page
                        if not got.feed(data):
                            break
                    raise wire.refused(self.host, path, reply.status_code, got.text(), model)
                lines = wire.Lines()
                async for data in reply.aiter_bytes():
                    for doc in wire.objects(lines.feed(data)):
                        yield doc
                        if wire.is_final(doc):
                            return
                for doc in wire.objects(lines.end()):
                    yield doc
                    if wire.is_final(doc):
                        return
        except httpx.HTTPError as exc:
            raise wire.unreachable(self.host, exc) from None
        raise wire.unfinished()
