"""The benchmark run record: what one (benchmark, model) run measured, and where. The
``--json`` document of ``mlx bench run`` is ``{"format_version": "1", "runs": [record...]}``
(docs/benchmarks.md, "The record")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from mlxstate.bench.stats import Stats, summarize
from mlxstate.text import iso_time

__all__ = [
    "FORMAT_VERSION",
    "Host",
    "RunRecord",
    "RunSettings",
    "Sample",
    "Status",
    "Trigger",
]

FORMAT_VERSION = "1"
Trigger = Literal["manual", "schedule", "catch-up"]
Status = Literal["ok", "failed", "skipped"]
SUMMARY_FIELDS = ("gen_tps", "prompt_tps", "ttft_ms")


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured generation. Rates come from the engine's own counters where it has
    them; ``ttft_ms`` is wall clock on the stream. ``load_ms`` > 0 marks a cold run: it is
    recorded and kept out of the warm figures (the summary)."""

    prompt_index: int
    ttft_ms: float
    prompt_tokens: int
    prompt_tps: float | None  # None: the engine reused a cached prompt and counted nothing
    gen_tokens: int
    gen_tps: float | None
    load_ms: float = 0.0
    peak_memory_bytes: int | None = None  # engines that report it (mlx-lm)

    @property
    def cold(self) -> bool:
        return self.load_ms > 0

    def document(self) -> dict[str, Any]:
        return {
            "prompt_index": self.prompt_index,
            "ttft_ms": round(self.ttft_ms, 3),
            "prompt_tokens": self.prompt_tokens,
            "prompt_tps": None if self.prompt_tps is None else round(self.prompt_tps, 3),
            "gen_tokens": self.gen_tokens,
            "gen_tps": None if self.gen_tps is None else round(self.gen_tps, 3),
            "load_ms": round(self.load_ms, 3),
            "peak_memory_bytes": self.peak_memory_bytes,
        }


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    os: str
    arch: str
    cpu: str
    memory_bytes: int

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "os": self.os,
            "arch": self.arch,
            "cpu": self.cpu,
            "memory_bytes": self.memory_bytes,
        }


@dataclass(frozen=True, slots=True)
class RunSettings:
    runs: int
    warmup: int
    max_tokens: int
    prompts_sha256: str
    prompts: str = "standard"  # "standard-v1" style name, or "custom"
    seed: int = 42
    temperature: float = 0.0

    def document(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "warmup": self.warmup,
            "max_tokens": self.max_tokens,
            "prompts_sha256": self.prompts_sha256,
            "prompts": self.prompts,
            "seed": self.seed,
            "temperature": self.temperature,
        }


@dataclass(slots=True)
class RunRecord:
    """One benchmark on one model. ``identity`` pins what was measured (Ollama manifest
    digest or HF commit, quantization, parameter size, context length); ``conditions``
    the machine at the time (other loaded models, memory pressure, power source)."""

    id: str
    benchmark: str  # the mlx.yaml benchmark name; "" for `mlx bench run --model`
    model: str  # the mlx.yaml model name
    source: str
    engine: str  # "ollama" | "mlx" | "openai"
    engine_version: str | None
    trigger: Trigger
    started: float  # POSIX seconds
    status: Status
    reason: str | None
    host: Host
    settings: RunSettings
    samples: list[Sample] = field(default_factory=list)
    identity: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)
    finished: float | None = None

    def summary(self) -> dict[str, Stats | None]:
        """Warm samples only (a cold sample's TTFT includes loading the model)."""
        warm = [s for s in self.samples if not s.cold]
        return {
            "gen_tps": summarize([s.gen_tps for s in warm if s.gen_tps is not None]),
            "prompt_tps": summarize([s.prompt_tps for s in warm if s.prompt_tps is not None]),
            "ttft_ms": summarize([s.ttft_ms for s in warm]),
        }

    def document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "benchmark": self.benchmark,
            "model": self.model,
            "source": self.source,
            "engine": self.engine,
            "engine_version": self.engine_version,
            "trigger": self.trigger,
            "started": iso_time(self.started),
            "finished": None if self.finished is None else iso_time(self.finished),
            "status": self.status,
            "reason": self.reason,
            "host": self.host.document(),
            "settings": self.settings.document(),
            "identity": self.identity,
            "conditions": self.conditions,
            "samples": [s.document() for s in self.samples],
            "summary": {
                key: None if stats is None else stats.document()
                for key, stats in self.summary().items()
            },
        }
