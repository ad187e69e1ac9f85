"""What the client returns: frozen, typed values. Every final answer of a generation is a
:class:`~mlxstate._ollama.counters.Counters` too (``eval_count``, ``gen_tps``, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlxstate._ollama.counters import Counters

__all__ = [
    "ChatChunk",
    "ChatResult",
    "EmbedResult",
    "GenerateChunk",
    "GenerateResult",
    "Message",
    "ModelDetails",
    "ModelInfo",
    "PullProgress",
    "ShowResult",
]


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message as Ollama answers it (``images`` are base64, as sent)."""

    role: str
    content: str = ""
    thinking: str | None = None
    images: tuple[str, ...] = ()
    tool_calls: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateResult(Counters):
    """The whole answer of ``/api/generate``."""

    model: str
    response: str
    done_reason: str | None = None
    thinking: str | None = None
    created_at: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateChunk(Counters):
    """One line of a generate stream; the last (``done``) carries the counters."""

    model: str
    response: str
    done: bool = False
    done_reason: str | None = None
    thinking: str | None = None

    @property
    def content(self) -> str:
        return self.response


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatResult(Counters):
    """The whole answer of ``/api/chat``: the assistant's ``message`` and the counters."""

    model: str
    message: Message
    done_reason: str | None = None
    created_at: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatChunk(Counters):
    """One line of a chat stream: ``content`` is the new text; the last (``done``) carries
    the counters."""

    model: str
    message: Message
    done: bool = False
    done_reason: str | None = None

    @property
    def content(self) -> str:
        return self.message.content


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbedResult(Counters):
    """One vector per input, in order (``/api/embed``)."""

    model: str
    embeddings: tuple[tuple[float, ...], ...]


@dataclass(frozen=True, slots=True)
class ModelDetails:
    format: str = ""
    family: str = ""
    parameter_size: str = ""
    quantization_level: str = ""
    families: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """An installed model (``/api/tags``)."""

    name: str
    size: int
    digest: str
    modified_at: str | None = None
    details: ModelDetails = field(default_factory=ModelDetails)


@dataclass(frozen=True, slots=True)
class ShowResult:
    """``/api/show``: ``capabilities`` includes ``"vision"`` for models that take images."""

    modelfile: str = ""
    parameters: str = ""
    template: str = ""
    license: str = ""
    details: ModelDetails = field(default_factory=ModelDetails)
    model_info: dict[str, Any] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()

    @property
    def context_length(self) -> int | None:
        arch = self.model_info.get("general.architecture")
        value = self.model_info.get(f"{arch}.context_length") if isinstance(arch, str) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class PullProgress:
    """One line of a pull: ``status`` (``"pulling <digest>"``, ..., ``"success"``) and bytes."""

    status: str
    digest: str | None = None
    total: int = 0
    completed: int = 0
