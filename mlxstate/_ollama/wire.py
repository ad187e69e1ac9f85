"""Ollama's HTTP API as pure functions (no I/O but reading image files): request bodies,
answers into typed results, HTTP failures into typed errors. The sync and async clients
differ only in how they send; everything they agree on lives here.

Fields follow Ollama's API reference (docs/api.md in the Ollama repository): images are
base64 strings, durations nanoseconds, streams NDJSON with a final ``done: true`` object
(pulls end with ``{"status": "success"}``), errors ``{"error": "..."}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from mlxstate._httpx import httpx
from mlxstate._ollama.counters import count, counters
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
from mlxstate.text import printable

__all__ = ["Image", "MessageInput"]

Image: TypeAlias = str | bytes | os.PathLike[str]
"""An image for a vision model: a file path, the raw bytes, or a base64 string."""
MessageInput: TypeAlias = Mapping[str, Any] | Message
"""``{"role": ..., "content": ..., "images": [...]}`` or a :class:`Message`."""

# A string this long is no file name (PATH_MAX is 1024 on macOS, 4096 on Linux): base64.
_MAX_PATH = 4096
# Ollama's own request limit is far above any photo; this only stops a wrong path (a disk
# image, a model file) from being read into memory and sent.
MAX_IMAGE_BYTES = 100 * 1024 * 1024


# --- requests -------------------------------------------------------------------------------


def encode_image(image: Image) -> str:
    """An image as Ollama wants it: base64 text. A ``str`` naming an existing file is that
    file; any other ``str`` must already be base64."""
    if isinstance(image, bytes | bytearray | memoryview):
        return base64.b64encode(image).decode("ascii")
    if isinstance(image, str) and (len(image) > _MAX_PATH or not os.path.isfile(image)):
        try:
            base64.b64decode(image, validate=True)
        except (binascii.Error, ValueError):
            raise OllamaError(
                f"image {printable(image[:60])!r} is neither a file nor base64 text"
            ) from None
        return image
    if not isinstance(image, str | os.PathLike):
        raise OllamaError(f"an image is a path, bytes or base64 text, not {type(image).__name__}")
    path = Path(image)
    try:
        # Opened without blocking (a FIFO has no writer) and read only when a regular file.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OllamaError(f"image {printable(str(path))} is not a regular file")
            os.set_blocking(fd, True)
            # At most the limit and one byte more: stat's size is no bound on what a read
            # returns (/proc files say 0 and never end; a file may grow meanwhile).
            data = fh.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            raise OllamaError(
                f"image {printable(str(path))} is over {MAX_IMAGE_BYTES} bytes; too large to send"
            )
        return base64.b64encode(data).decode("ascii")
    except OSError as exc:
        raise OllamaError(f"cannot read image {printable(str(path))}: {exc.strerror}") from None


def encode_message(message: MessageInput) -> dict[str, Any]:
    if isinstance(message, Message):
        out: dict[str, Any] = {"role": message.role, "content": message.content}
        if message.images:  # paths or base64, like a dict message's
            out["images"] = [encode_image(image) for image in message.images]
        if message.tool_calls:
            out["tool_calls"] = list(message.tool_calls)
        return out
    out = dict(message)
    images = out.get("images")
    if images is not None:
        if isinstance(images, str | bytes) or not isinstance(images, Sequence):
            raise OllamaError("a message's images are a list (paths, bytes or base64 text)")
        out["images"] = [encode_image(image) for image in images]
    return out


def _options(body: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """``body`` with the optional fields that were given (None: leave Ollama's default)."""
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def generate_body(
    model: str,
    prompt: str,
    *,
    stream: bool,
    images: Sequence[Image] | None = None,
    **optional: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "prompt": prompt, "stream": stream}
    if images:
        body["images"] = [encode_image(image) for image in images]
    return _options(body, **optional)


def chat_body(
    model: str, messages: Sequence[MessageInput], *, stream: bool, **optional: Any
) -> dict[str, Any]:
    body = {"model": model, "messages": [encode_message(m) for m in messages], "stream": stream}
    return _options(body, **optional)


def embed_body(model: str, input: str | Sequence[str], **optional: Any) -> dict[str, Any]:
    texts = [input] if isinstance(input, str) else list(input)
    return _options({"model": model, "input": texts}, **optional)


# --- answers --------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _maybe(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def message(doc: Any) -> Message:
    m = _mapping(doc)
    calls = m.get("tool_calls")
    calls = [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []
    return Message(
        role=_text(m.get("role")) or "assistant",
        content=_text(m.get("content")),
        thinking=_maybe(m.get("thinking")),
        images=_strings(m.get("images")),
        tool_calls=tuple(calls),
    )


def generate_result(doc: Mapping[str, Any]) -> GenerateResult:
    return GenerateResult(
        model=_text(doc.get("model")),
        response=_text(doc.get("response")),
        done_reason=_maybe(doc.get("done_reason")),
        thinking=_maybe(doc.get("thinking")),
        created_at=_maybe(doc.get("created_at")),
        **counters(doc),
    )


def generate_chunk(doc: Mapping[str, Any]) -> GenerateChunk:
    return GenerateChunk(
        model=_text(doc.get("model")),
        response=_text(doc.get("response")),
        done=doc.get("done") is True,
        done_reason=_maybe(doc.get("done_reason")),
        thinking=_maybe(doc.get("thinking")),
        **counters(doc),
    )


def chat_result(doc: Mapping[str, Any]) -> ChatResult:
    return ChatResult(
        model=_text(doc.get("model")),
        message=message(doc.get("message")),
        done_reason=_maybe(doc.get("done_reason")),
        created_at=_maybe(doc.get("created_at")),
        **counters(doc),
    )


def chat_chunk(doc: Mapping[str, Any]) -> ChatChunk:
    return ChatChunk(
        model=_text(doc.get("model")),
        message=message(doc.get("message")),
        done=doc.get("done") is True,
        done_reason=_maybe(doc.get("done_reason")),
        **counters(doc),
    )


def embed_result(doc: Mapping[str, Any]) -> EmbedResult:
    vectors = doc.get("embeddings")
    if not isinstance(vectors, list) or not all(isinstance(v, list) for v in vectors):
        raise OllamaError("Ollama's /api/embed answer has no list of embeddings")
    return EmbedResult(
        model=_text(doc.get("model")),
        embeddings=tuple(tuple(float(x) for x in v if _number(x)) for v in vectors),
        **counters(doc),
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def details(doc: Any) -> ModelDetails:
    d = _mapping(doc)
    return ModelDetails(
        format=_text(d.get("format")),
        family=_text(d.get("family")),
        parameter_size=_text(d.get("parameter_size")),
        quantization_level=_text(d.get("quantization_level")),
        families=_strings(d.get("families")),
    )


def models(doc: Mapping[str, Any]) -> list[ModelInfo]:
    """The models of an ``/api/tags`` answer (anything malformed is left out)."""
    listed = doc.get("models")
    return [
        ModelInfo(
            name=_text(m.get("name")),
            size=count(m.get("size")),
            digest=_text(m.get("digest")),
            modified_at=_maybe(m.get("modified_at")),
            details=details(m.get("details")),
        )
        for m in (listed if isinstance(listed, list) else [])
        if isinstance(m, dict) and isinstance(m.get("name"), str)
    ]


def show_result(doc: Mapping[str, Any]) -> ShowResult:
    return ShowResult(
        modelfile=_text(doc.get("modelfile")),
        parameters=_text(doc.get("parameters")),
        template=_text(doc.get("template")),
        license=_text(doc.get("license")),
        details=details(doc.get("details")),
        model_info=_mapping(doc.get("model_info")),
        capabilities=_strings(doc.get("capabilities")),
    )


def pull_progress(doc: Mapping[str, Any]) -> PullProgress:
    return PullProgress(
        status=_text(doc.get("status")),
        digest=_maybe(doc.get("digest")),
        total=count(doc.get("total")),
        completed=count(doc.get("completed")),
    )


# --- streams --------------------------------------------------------------------------------

# A stream line is one token or one progress report; a daemon sending megabytes without a
# newline is broken (or not Ollama), and must not grow the client's memory without end.
MAX_LINE = 8 * 1024 * 1024


class Lines:
    """Splits a stream's bytes into text lines, refusing a line longer than ``MAX_LINE``."""

    def __init__(self) -> None:
        self._pending = bytearray()

    def feed(self, data: bytes) -> list[str]:
        self._pending += data
        *lines, rest = self._pending.split(b"\n")
        if len(rest) > MAX_LINE:
            raise StreamError(f"Ollama sent a line longer than {MAX_LINE} bytes; stopped reading")
        self._pending = bytearray(rest)
        return [line.decode("utf-8", "replace") for line in lines]

    def end(self) -> list[str]:
        rest, self._pending = self._pending, bytearray()
        return [rest.decode("utf-8", "replace")] if rest.strip() else []


def stream_line(line: str) -> dict[str, Any] | None:
    """One NDJSON line as an object (None for a blank line); an ``{"error"}`` line or
    anything but a JSON object is a :class:`StreamError`."""
    if not line.strip():
        return None
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):
        raise StreamError(f"Ollama sent a line that is not JSON: {printable(line[:80])}") from None
    if not isinstance(doc, dict):
        raise StreamError("Ollama sent an unexpected stream (not JSON objects)")
    if "error" in doc:  # after HTTP 200: the runner failed mid-generation, or the pull did
        raise StreamError(f"Ollama: {printable(str(doc['error']))[:300]}")
    return doc


def objects(lines: Sequence[str]) -> Iterator[dict[str, Any]]:
    """The objects of some stream lines, blank lines skipped (see :func:`stream_line`)."""
    for line in lines:
        doc = stream_line(line)
        if doc is not None:
            yield doc


def is_final(doc: Mapping[str, Any]) -> bool:
    """The last object of a generate/chat stream (``done``) or of a pull (``success``)."""
    return doc.get("done") is True or doc.get("status") == "success"


def unfinished() -> StreamError:
    return StreamError("the Ollama stream ended before its final object")


# --- whole answers --------------------------------------------------------------------------

# The largest answer read whole (an embedding of a big batch is tens of MB); an error page is
# only shown by its start. A daemon (or whatever listens there) sending more is not read on.
MAX_ANSWER = 512 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024


class Body:
    """A reply's bytes, collected up to ``limit`` (``full`` once more were offered)."""

    def __init__(self, success: bool) -> None:
        self.limit = MAX_ANSWER if success else MAX_ERROR_BODY
        self.data = bytearray()
        self.full = False

    def feed(self, chunk: bytes) -> bool:
        """Keep ``chunk``; False once the limit is passed (stop reading)."""
        self.data += chunk[: self.limit + 1 - len(self.data)]
        self.full = len(self.data) > self.limit
        return not self.full

    def text(self) -> str:
        return bytes(self.data[: self.limit]).decode("utf-8", "replace")


def too_large(host: str, path: str) -> OllamaError:
    return OllamaError(f"the answer of {host}{path} is larger than {MAX_ANSWER} bytes; not read")


# --- failures -------------------------------------------------------------------------------


def json_object(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    return doc if isinstance(doc, dict) else {}


def unreachable(host: str, exc: httpx.HTTPError) -> OllamaError:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return DaemonDown(
            f"Ollama is not running at {host}",
            hint="start it (`ollama serve`, or open the Ollama app)",
        )
    if isinstance(exc, httpx.TimeoutException):
        return OllamaError(f"Ollama at {host} stopped answering ({type(exc).__name__})")
    return OllamaError(f"lost the connection to Ollama at {host}: {exc or type(exc).__name__}")


def refused(host: str, path: str, status: int, text: str, model: str | None) -> OllamaError:
    """The error for an answer that is not 2xx (``text``: its body)."""
    said = json_object(text).get("error")
    if status == 404 and said and model is not None:
        return ModelNotFound(model, f"model {model} is not in Ollama at {host}")
    if status == 404:  # "404 page not found": a daemon too old for this endpoint
        return OllamaError(f"Ollama at {host} has no {path}; update Ollama", status=404)
    detail = printable(str(said))[:300] if said else printable(text[:120]) or "no details"
    return OllamaError(f"Ollama answered HTTP {status}: {detail}", status=status)


def answer(doc_text: str) -> dict[str, Any]:
    """A 2xx answer that must be one JSON object."""
    doc = json_object(doc_text)
    if not doc and doc_text.strip() != "{}":
        raise OllamaError(f"Ollama sent an answer that is not a JSON object: {doc_text[:80]!r}")
    return doc
