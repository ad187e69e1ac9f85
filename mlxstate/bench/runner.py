"""Run declared benchmarks: resolve each model from the stores (never downloading), load it
once, ``warmup`` unmeasured generations per prompt, then ``runs`` measured ones, and keep
every run in the registry (docs/benchmarks.md).

The apply lock is held for the whole run: an apply that deletes or replaces a model while
it is measured would make the figures meaningless, and the machine busy with a download
would make them slow."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from mlxstate.bench.engines.base import Engine, EngineError, Session
from mlxstate.bench.prompts import PromptSet, prompt_set
from mlxstate.bench.record import Host, RunRecord, RunSettings, Sample, Status, Trigger
from mlxstate.bench.targets import Missing, Resolved, engine_of, resolve_target
from mlxstate.errors import MlxError

if TYPE_CHECKING:
    from mlxstate.engine import Session as MlxSession
    from mlxstate.facts import Observed
    from mlxstate.mlxyaml.load import LoadedSpec
    from mlxstate.mlxyaml.models import BenchmarkSpec
    from mlxstate.registry import Registry
    from mlxstate.settings import Settings

__all__ = [
    "DEFAULT_RUNS",
    "SEED",
    "BenchProgress",
    "EngineFactory",
    "Job",
    "default_engines",
    "run_benchmarks",
    "skipped_run",
]

EngineFactory = Callable[[str], Engine]
SEED = 42  # the same seed for every generation: temperature 0 plus a fixed seed
DEFAULT_RUNS, DEFAULT_WARMUP, DEFAULT_MAX_TOKENS = 5, 1, 128


class BenchProgress(Protocol):
    """What a front-end shows while a benchmark runs."""

    def model_started(self, benchmark: str, model: str, prompts: int, runs: int) -> None: ...

    def generation(self, prompt: int, run: int, *, warmup: bool) -> None:
        """Before each generation: ``prompt`` and ``run`` count from 1."""
        ...

    def model_finished(self, record: RunRecord) -> None: ...


@dataclass(frozen=True, slots=True)
class Job:
    """One benchmark on one model, with the settings it runs with."""

    benchmark: str  # "" for `mlx bench run --model`
    model: str
    runs: int
    warmup: int
    max_tokens: int
    prompts: PromptSet

    def settings(self) -> RunSettings:
        return RunSettings(
            runs=self.runs,
            warmup=self.warmup,
            max_tokens=self.max_tokens,
            prompts_sha256=self.prompts.sha256,
            prompts=self.prompts.name,
            seed=SEED,
        )


def run_benchmarks(
    session: MlxSession,
    loaded: LoadedSpec,
    *,
    benchmarks: Sequence[str] = (),
    models: Sequence[str] = (),
    trigger: Trigger = "manual",
    progress: BenchProgress | None = None,
    lock_timeout: float = 0.0,
    engines: EngineFactory | None = None,
    record: bool = True,
    endpoint: str | None = None,
) -> list[RunRecord]:
    """Run the named benchmarks (all when neither benchmarks nor models are named) and, for
    each of ``models``, the default settings. Raises MlxError for an unknown name before
    anything runs, LockHeld when the apply lock stays busy for ``lock_timeout`` seconds.
    ``endpoint``: run every model on that OpenAI-compatible server (LM Studio, llama-server,
    mlx_lm.server) instead of Ollama / mlx-lm; the model must still be installed."""
    from mlxstate.apply.lock import apply_lock
    from mlxstate.bench.history import save_run
    from mlxstate.observe.scan import observe

    jobs = plan_jobs(loaded, benchmarks, models)
    settings = session.settings(loaded)
    own = default_engines(settings, endpoint) if engines is None else None
    factory = engines or own
    assert factory is not None
    records: list[RunRecord] = []
    with (
        apply_lock(settings.state_dir, lock_timeout),
        _registry(settings, record) as registry,
        _closing(own),
    ):
        observed = observe(
            settings, loaded.spec, probe=False, duplicates=False, seams=session.seams
        )
        runner = _Runner(session, loaded, observed, factory, trigger, progress)
        runner.served = endpoint is not None
        for job in jobs:
            records.append(runner.run(job))
            if registry is not None:  # each run as it ends: an interrupted run keeps the rest
                save_run(registry, records[-1])
    return records


def skipped_run(
    session: MlxSession,
    loaded: LoadedSpec,
    benchmark: str,
    model: str,
    trigger: Trigger,
    reason: str,
) -> RunRecord:
    """A ``skipped`` record (on battery, under memory pressure, ...); not saved."""
    job = _job(loaded, benchmark, model)
    return _new_record(session, loaded, job, trigger, engine_of(loaded.spec.models[model])).done(
        session, "skipped", reason
    )


def plan_jobs(loaded: LoadedSpec, benchmarks: Sequence[str], models: Sequence[str]) -> list[Job]:
    declared = loaded.spec.benchmarks
    for name in benchmarks:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none declared"
            raise MlxError(f"no benchmark {name!r} in {loaded.display} (known: {known})")
    for name in models:
        _check_model(loaded, name)
    chosen = list(benchmarks) if benchmarks or models else list(declared)
    jobs = [_job(loaded, b, m) for b in chosen for m in declared[b].models]
    return jobs + [_job(loaded, "", m) for m in models]


def _check_model(loaded: LoadedSpec, name: str) -> None:
    from mlxstate.sources import FileSource

    model = loaded.spec.models.get(name)
    if model is None:
        raise MlxError(f"no model {name!r} in {loaded.display}; give a name under 'models:'")
    if isinstance(model.parsed_source, FileSource):
        raise MlxError(f"{name} is a file:// model; a benchmark model must be ollama:// or hf://")


def _job(loaded: LoadedSpec, benchmark: str, model: str) -> Job:
    spec: BenchmarkSpec | None = loaded.spec.benchmarks.get(benchmark) if benchmark else None
    if spec is None:
        return Job(benchmark, model, DEFAULT_RUNS, DEFAULT_WARMUP, DEFAULT_MAX_TOKENS,
                   prompt_set("standard"))  # fmt: skip
    return Job(benchmark, model, spec.runs, spec.warmup, spec.max_tokens, prompt_set(spec.prompts))


def default_engines(settings: Settings, endpoint: str | None = None) -> _Engines:
    """Engines by name, built on first use (mlx-lm is imported only for an ``hf://`` model)."""
    return _Engines(settings, endpoint)


class _Engines:
    def __init__(self, settings: Settings, endpoint: str | None) -> None:
        self.settings, self.endpoint = settings, endpoint
        self.built: dict[str, Engine] = {}

    def __call__(self, name: str) -> Engine:
        if name not in self.built:
            self.built[name] = _engine(name, self.settings, self.endpoint)
        return self.built[name]

    def close(self) -> None:
        for engine in self.built.values():
            close = getattr(engine, "close", None)
            if callable(close):
                close()


def _engine(name: str, settings: Settings, endpoint: str | None) -> Engine:
    if name == "ollama":
        from mlxstate.bench.engines.ollama import OllamaEngine

        return OllamaEngine(settings.ollama_host)
    if name == "mlx":
        # mlx-lm itself is imported when a model loads; without the extra that run fails
        # with a line naming the extra, not the command.
        from mlxstate.bench.engines.mlx import MlxEngine

        return MlxEngine()
    if name == "openai" and endpoint is not None:
        from mlxstate.bench.engines.openai import OpenAIEngine

        return OpenAIEngine(endpoint)
    raise EngineError(f"no benchmark engine {name!r}")


def _host() -> Host:
    from mlxstate.machine import host_facts

    facts = host_facts()
    return Host(**{k: facts[k] for k in ("name", "os", "arch", "cpu", "memory_bytes")})


def _new_record(
    session: MlxSession, loaded: LoadedSpec, job: Job, trigger: Trigger, engine: str
) -> _Building:
    model = loaded.spec.models[job.model]
    record = RunRecord(
        id=uuid.uuid4().hex[:16],
        benchmark=job.benchmark,
        model=job.model,
        source=str(model.parsed_source),
        engine=engine,
        engine_version=None,
        trigger=trigger,
        started=session.seams.clock(),
        status="ok",
        reason=None,
        host=_host(),
        settings=job.settings(),
        conditions=session.seams.conditions().document(),
    )
    return _Building(record)


@dataclass
class _Building:
    record: RunRecord

    def done(self, session: MlxSession, status: Status, reason: str | None = None) -> RunRecord:
        self.record.status, self.record.reason = status, reason
        self.record.finished = session.seams.clock()
        return self.record


class _Runner:
    def __init__(
        self,
        session: MlxSession,
        loaded: LoadedSpec,
        observed: Observed,
        engines: EngineFactory,
        trigger: Trigger,
        progress: BenchProgress | None,
    ) -> None:
        self.session, self.loaded, self.observed = session, loaded, observed
        self.engines, self.trigger, self.progress = engines, trigger, progress
        self.served = False  # every model runs on an OpenAI-compatible server

    def run(self, job: Job) -> RunRecord:
        found = resolve_target(job.model, self.loaded.spec.models[job.model], self.observed)
        if self.served and isinstance(found, Resolved):
            found = Resolved("openai", found.target)
        building = _new_record(self.session, self.loaded, job, self.trigger, found.engine)
        if self.progress is not None:
            count = len(job.prompts.prompts)
            self.progress.model_started(job.benchmark, job.model, count, job.runs)
        record = self._measure(job, found, building)
        if self.progress is not None:
            self.progress.model_finished(record)
        return record

    def _measure(self, job: Job, found: Resolved | Missing, building: _Building) -> RunRecord:
        if isinstance(found, Missing):
            return building.done(self.session, "skipped", found.reason)
        record = building.record
        try:
            engine = self.engines(found.engine)
            record.engine_version = engine.version()
            with engine.load(found.target) as loaded:
                record.identity = {**loaded.loaded.identity, "revision": found.target.revision}
                record.conditions = {**record.conditions, **engine.conditions()}
                self._generations(job, loaded, record.samples)
        except EngineError as exc:
            return building.done(self.session, "failed", str(exc))
        return building.done(self.session, "ok")

    def _generations(self, job: Job, loaded: Session, samples: list[Sample]) -> None:
        for index, prompt in enumerate(job.prompts.prompts):
            for run in range(job.warmup + job.runs):
                warmup = run < job.warmup
                if self.progress is not None:
                    number = run + 1 if warmup else run - job.warmup + 1
                    self.progress.generation(index + 1, number, warmup=warmup)
                got = loaded.generate(prompt, max_tokens=job.max_tokens, seed=SEED)
                # A warm-up that loaded the model is kept: it is the run's only load time
                # and cold first token. Being cold, it stays out of the summary.
                if not warmup or got.load_ms > 0:
                    samples.append(
                        Sample(
                            prompt_index=index,
                            ttft_ms=got.ttft_ms,
                            prompt_tokens=got.prompt_tokens,
                            prompt_tps=_finite(got.prompt_tps),
                            gen_tokens=got.gen_tokens,
                            gen_tps=_finite(got.gen_tps),
                            load_ms=got.load_ms,
                            peak_memory_bytes=got.peak_memory_bytes,
                        )
                    )


def _finite(rate: float | None) -> float | None:
    """An engine's rate, or None when it is NaN or infinite (a zero elapsed time): such a
    figure would poison every median and is not valid JSON."""
    return rate if rate is not None and math.isfinite(rate) else None


@contextmanager
def _closing(engines: _Engines | None) -> Iterator[None]:
    try:
        yield
    finally:
        if engines is not None:
            engines.close()


@contextmanager
def _registry(settings: Settings, record: bool) -> Iterator[Registry | None]:
    if not record:
        yield None
        return
    from mlxstate.registry import Registry

    with Registry.open(settings.state_dir) as registry:
        yield registry
