"""Compare benchmark runs, noise-aware (docs/benchmarks.md, "Compare").

A difference of medians within the combined MAD of the two runs (``|a - b| <= mad_a +
mad_b``) is ``same``: one run's jitter cannot be told apart from a change. Outside it, gen
tok/s up (or TTFT down) is ``faster``, the other way ``slower``. Two runs of different
workloads (prompt set, ``max_tokens``, engine) are ``not comparable``; a new engine version
or a changed model (digest, quantization...) is compared and said."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mlxstate.bench.record import RunRecord
from mlxstate.bench.stats import Stats

__all__ = ["Comparison", "MetricChange", "compare_latest", "compare_runs", "regressions"]

Verdict = Literal["faster", "slower", "same", "unknown"]


@dataclass(frozen=True, slots=True)
class MetricChange:
    """One figure's medians in both runs; ``change_pct`` relative to the baseline."""

    metric: str  # "gen_tps" | "ttft_ms"
    baseline: float | None
    latest: float | None
    noise: float  # mad of the baseline + mad of the latest
    change_pct: float | None
    verdict: Verdict

    def beyond_noise_pct(self) -> float | None:
        """How far the change goes past the noise, in % of the baseline (0 inside it)."""
        if self.baseline is None or self.latest is None or self.baseline == 0:
            return None
        excess = max(0.0, abs(self.latest - self.baseline) - self.noise)
        return excess / abs(self.baseline) * 100

    def document(self) -> dict[str, Any]:
        return {
            "baseline": _round(self.baseline),
            "latest": _round(self.latest),
            "noise": round(self.noise, 4),
            "change_pct": _round(self.change_pct, 2),
            "verdict": self.verdict,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """The latest ``ok`` run of a (benchmark, model) against its baseline (``None``: there
    is no earlier ``ok`` run). ``not_comparable``: why the workloads differ; ``changes``:
    what changed under the same workload (engine version, model identity)."""

    benchmark: str
    model: str
    latest: RunRecord
    baseline: RunRecord | None
    gen_tps: MetricChange | None
    ttft_ms: MetricChange | None
    not_comparable: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        if self.baseline is None:
            return "no baseline"
        if self.not_comparable:
            return "not comparable"
        return self.gen_tps.verdict if self.gen_tps is not None else "unknown"

    def regressed(self, pct: float) -> bool:
        """Generation tok/s slower by more than ``pct`` % of the baseline beyond the noise
        (``baseline - latest - noise > pct/100 * baseline``); never for runs of different
        workloads."""
        if self.not_comparable or self.gen_tps is None or self.gen_tps.verdict != "slower":
            return False
        beyond = self.gen_tps.beyond_noise_pct()
        return beyond is not None and beyond > pct

    def document(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "model": self.model,
            "latest": self.latest.id,
            "baseline": None if self.baseline is None else self.baseline.id,
            "verdict": self.verdict,
            "comparable": not self.not_comparable,
            "not_comparable": list(self.not_comparable),
            "changes": list(self.changes),
            "gen_tps": None if self.gen_tps is None else self.gen_tps.document(),
            "ttft_ms": None if self.ttft_ms is None else self.ttft_ms.document(),
        }


def compare_runs(latest: RunRecord, baseline: RunRecord | None) -> Comparison:
    if baseline is None:
        return Comparison(latest.benchmark, latest.model, latest, None, None, None)
    now, then = latest.summary(), baseline.summary()
    return Comparison(
        benchmark=latest.benchmark,
        model=latest.model,
        latest=latest,
        baseline=baseline,
        gen_tps=_metric("gen_tps", then["gen_tps"], now["gen_tps"], higher_is_faster=True),
        ttft_ms=_metric("ttft_ms", then["ttft_ms"], now["ttft_ms"], higher_is_faster=False),
        not_comparable=_workload_differences(latest, baseline),
        changes=_changes(latest, baseline),
    )


def compare_latest(
    runs: Sequence[RunRecord], baseline: RunRecord | None = None
) -> list[Comparison]:
    """Per (benchmark, model) of ``runs`` (oldest first): its latest ``ok`` run against the
    ``ok`` run before it, or against ``baseline`` (then only that run's benchmark and model)."""
    ok = [r for r in runs if r.status == "ok"]
    if baseline is not None:
        same = [r for r in ok if (r.benchmark, r.model) == (baseline.benchmark, baseline.model)]
        # Only runs after the baseline: the baseline is the "before" by definition.
        later = [r for r in same if (r.started, r.id) > (baseline.started, baseline.id)]
        return [compare_runs(later[-1], baseline)] if later else []
    by_pair: dict[tuple[str, str], list[RunRecord]] = {}
    for run in ok:
        by_pair.setdefault((run.benchmark, run.model), []).append(run)
    result = []
    for key in sorted(by_pair):
        pair = by_pair[key]
        result.append(compare_runs(pair[-1], pair[-2] if len(pair) > 1 else None))
    return result


def regressions(comparisons: Sequence[Comparison], pct: float) -> list[Comparison]:
    return [c for c in comparisons if c.regressed(pct)]


def _metric(
    metric: str, then: Stats | None, now: Stats | None, *, higher_is_faster: bool
) -> MetricChange:
    if then is None or now is None:
        return MetricChange(
            metric,
            None if then is None else then.median,
            None if now is None else now.median,
            0.0,
            None,
            "unknown",
        )
    noise = then.mad + now.mad
    diff = now.median - then.median
    change = None if then.median == 0 else diff / then.median * 100
    verdict: Verdict
    if abs(diff) <= noise:  # inside the combined jitter of the two runs
        verdict = "same"
    else:
        verdict = "faster" if (diff > 0) == higher_is_faster else "slower"
    return MetricChange(metric, then.median, now.median, noise, change, verdict)


def _workload_differences(latest: RunRecord, baseline: RunRecord) -> tuple[str, ...]:
    a, b = baseline.settings, latest.settings
    reasons = []
    if a.prompts_sha256 != b.prompts_sha256:
        reasons.append(
            f"prompt set changed ({a.prompts} {a.prompts_sha256[:12]} → "
            f"{b.prompts} {b.prompts_sha256[:12]})"
        )
    if a.max_tokens != b.max_tokens:
        reasons.append(f"max_tokens changed ({a.max_tokens} → {b.max_tokens})")
    if baseline.engine != latest.engine:
        reasons.append(f"engine changed ({baseline.engine} → {latest.engine})")
    return tuple(reasons)


def _changes(latest: RunRecord, baseline: RunRecord) -> tuple[str, ...]:
    changes = []
    if baseline.engine == latest.engine and baseline.engine_version != latest.engine_version:
        changes.append(
            f"{latest.engine} version changed ({baseline.engine_version or '?'} → "
            f"{latest.engine_version or '?'})"
        )
    if identity_changed(baseline.identity, latest.identity):
        keys = sorted(
            k
            for k in set(baseline.identity) | set(latest.identity)
            if baseline.identity.get(k) != latest.identity.get(k)
        )
        changes.append(f"model changed ({', '.join(keys)})")
    return tuple(changes)


def identity_changed(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Both known and different (a record without an identity says nothing)."""
    return bool(before) and bool(after) and before != after


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)
