"""Robust summaries of a run's samples: median and MAD (median absolute deviation), which
one slow outlier (a page fault, a background job) does not drag the way a mean and a
standard deviation are dragged."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Stats", "median", "percentile", "summarize"]


@dataclass(frozen=True, slots=True)
class Stats:
    median: float
    mad: float
    min: float
    max: float
    p95: float
    n: int

    def document(self) -> dict[str, Any]:
        doc = asdict(self)
        del doc["n"]
        return {key: round(value, 4) for key, value in doc.items()}


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    n = len(ordered)
    if n == 0:
        raise ValueError("median of no values")
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear interpolation between closest ranks (numpy's default, 'linear')."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("percentile of no values")
    rank = (len(ordered) - 1) * pct / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: Sequence[float]) -> Stats | None:
    """Median, MAD, min, max and p95 of the finite ``values``; None when there are none.
    (A NaN or an infinity, from an engine's odd timing or an edited registry, would make
    every figure NaN and break the report's axes.)"""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None
    mid = median(values)
    return Stats(
        median=mid,
        mad=median([abs(v - mid) for v in values]),
        min=min(values),
        max=max(values),
        p95=percentile(values, 95),
        n=len(values),
    )
