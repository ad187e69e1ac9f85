"""Ollama's timing counters, read once for everyone: the client's results and the
benchmark engine's measurements (docs/benchmarks.md, "What is measured").

Durations are nanoseconds. Ollama leaves a field out when it is zero (``omitempty``) and
leaves ``prompt_eval_count`` out when the prompt came from its cache, so a missing counter
is 0 and a rate that needs it is "not measured" (None), never a zero rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Counters", "count", "counters"]

# No real counter comes near 2**53 (a float's exact integers); a larger one would overflow
# float division, or SQLite's 64-bit integers when a benchmark sample is saved.
_MAX_COUNT = 2**53
_NS = 1e9


def count(value: Any) -> int:
    """A positive integer counter, else 0 (servers leave zero counters out; an absurd one
    is as good as none)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_COUNT:
        return value
    return 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Counters:
    """The engine's counters of one request (0 when Ollama left them out) and the figures
    derived from them: ``gen_tps``, ``prompt_tps`` (None when not measured), ``load_ms``."""

    total_duration: int = 0
    load_duration: int = 0
    prompt_eval_count: int = 0
    prompt_eval_duration: int = 0
    eval_count: int = 0
    eval_duration: int = 0

    @property
    def gen_tps(self) -> float | None:
        """Generated tokens per second: ``eval_count / eval_duration * 1e9``."""
        return _rate(self.eval_count, self.eval_duration)

    @property
    def prompt_tps(self) -> float | None:
        """Prompt tokens per second; None for a prompt served from Ollama's cache."""
        return _rate(self.prompt_eval_count, self.prompt_eval_duration)

    @property
    def load_ms(self) -> float:
        """Time spent loading the model for this request (0: it was already loaded)."""
        return self.load_duration / 1e6

    @property
    def total_ms(self) -> float:
        return self.total_duration / 1e6


def counters(doc: Mapping[str, Any]) -> dict[str, int]:
    """The counter fields of a final answer, as keyword arguments for :class:`Counters` (or
    any result type built on it)."""
    return {
        "total_duration": count(doc.get("total_duration")),
        "load_duration": count(doc.get("load_duration")),
        "prompt_eval_count": count(doc.get("prompt_eval_count")),
        "prompt_eval_duration": count(doc.get("prompt_eval_duration")),
        "eval_count": count(doc.get("eval_count")),
        "eval_duration": count(doc.get("eval_duration")),
    }


def _rate(tokens: int, duration_ns: int) -> float | None:
    return tokens / duration_ns * _NS if tokens and duration_ns else None
