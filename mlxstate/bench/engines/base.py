"""The engine interface every benchmark runner talks to. An engine measures one
generation at a time on a model it has loaded; adding one (an OpenAI-compatible server,
say) is a new file implementing :class:`Engine`, not a change to the runner.

Deterministic settings are the engine's job: temperature 0, the given seed, and
``max_tokens`` as the generation limit.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["BenchTarget", "Engine", "EngineError", "Loaded", "Measurement", "Session"]


class EngineError(Exception):
    """A run cannot go on (daemon down, model missing, extra not installed): one line a
    user can act on. The runner records the run as ``failed`` with this message."""


@dataclass(frozen=True, slots=True)
class BenchTarget:
    """A declared model as the engine needs it: ``ref`` is what the engine is given (the
    Ollama model name ``name:tag``; for MLX, the snapshot folder)."""

    name: str  # the mlx.yaml model name
    source: str  # canonical source string
    ref: str
    path: Path | None = None  # MLX: the snapshot folder
    revision: str | None = None  # HF commit


@dataclass(frozen=True, slots=True)
class Measurement:
    """One generation as the engine measured it (the runner adds the prompt index).
    Counters are the engine's; ``ttft_ms`` is wall clock from the request to the first
    token on the stream. ``load_ms`` > 0: the model was loaded for this request (cold)."""

    ttft_ms: float
    prompt_tokens: int
    prompt_tps: float | None
    gen_tokens: int
    gen_tps: float | None
    load_ms: float = 0.0
    peak_memory_bytes: int | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the engine says about the model it loaded: ``identity`` (digest or commit,
    quantization, parameter_size, context_length) goes into the record as is."""

    identity: dict[str, Any] = field(default_factory=dict)


class Session(Protocol):
    """A model loaded once, measured many times."""

    loaded: Loaded

    def generate(self, prompt: str, *, max_tokens: int, seed: int) -> Measurement: ...


class Engine(Protocol):
    name: str  # "ollama", "mlx", "openai": the record's `engine`

    def version(self) -> str | None:
        """The engine's version (Ollama's /api/version, mlx-lm's __version__)."""
        ...

    def conditions(self) -> dict[str, Any]:
        """What else the engine is doing now (Ollama: other loaded models from /api/ps)."""
        ...

    def load(self, target: BenchTarget) -> AbstractContextManager[Session]:
        """Load ``target`` once; raise :class:`EngineError` when it cannot be."""
        ...
