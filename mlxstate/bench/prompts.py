"""The prompts a benchmark runs: the versioned standard set, or the benchmark's own list.

The standard set mixes what people ask a local model (docs/benchmarks.md, "The standard
prompt set"): short chat, code, reasoning, a medium summary and two long-context prompts
(~1.6k tokens each, a field report shipped with the package). It never changes once
released: a new wording is a new version (``standard-v2``), so history compares like with
like. Every run records :func:`prompts_sha256` of the prompts it ran.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

__all__ = ["STANDARD_NAME", "PromptSet", "prompt_set", "prompts_sha256", "standard_prompts"]

STANDARD_NAME = "standard-v1"
CUSTOM_NAME = "custom"

_SUMMARY_TEXT = (
    "Summarize the following paragraph in two sentences for a busy reader.\n\n"
    "Most households in the valley heat their homes with wood or heating oil, and both have "
    "become more expensive over the last decade. A pilot run by the county in 2022 fitted "
    "air-source heat pumps to forty homes of different ages, from stone cottages to "
    "post-war terraces, and measured their electricity use for two winters. The newer homes "
    "saw running costs fall by about a third compared with oil. The oldest cottages, which "
    "have solid walls and little insulation, saved much less, and in three of them the "
    "heat pump could not keep the living room above 18 degrees on the coldest nights "
    "without help from a stove. The report concludes that insulation should come first in "
    "older buildings, and that the county's grants should be able to pay for both."
)

_CODE_REVIEW = '''Review this Python function. List each bug you find and give a fixed version.

def moving_average(values, window):
    """Return the moving averages of values over window items."""
    if window <= 0:
        raise ValueError("window must be positive")
    out = []
    total = 0
    for i, v in enumerate(values):
        total += v
        if i > window:
            total -= values[i - window]
        if i >= window:
            out.append(total / window)
    return out
'''


def _long_text() -> str:
    data = resources.files("mlxstate.bench").joinpath("data/standard-v1-long.txt")
    return data.read_text(encoding="utf-8")


@cache
def standard_prompts() -> tuple[str, ...]:
    """The ten prompts of ``standard-v1``, in order."""
    report = _long_text().strip()
    return (
        "Hi! In one sentence, what is a large language model?",
        "Give me three practical tips for staying focused when working from home.",
        "Write a Python function `fib(n: int) -> int` that returns the n-th Fibonacci number "
        "iteratively, with a docstring and a short example.",
        "Explain step by step what this shell command does and when it could be dangerous:\n"
        "find . -name '*.log' -mtime +7 -print0 | xargs -0 rm -f",
        _CODE_REVIEW,
        "A train leaves at 9:40 and arrives at 13:15, stopping twice for 12 minutes each. "
        "How long is it actually moving? Show your reasoning, then give the answer.",
        "Three friends share a bill of 84 euros. Ana pays twice as much as Ben, and Ben pays "
        "6 euros more than Cleo. How much does each pay? Reason it out before answering.",
        _SUMMARY_TEXT,
        f"{report}\n\nSummarize the report above in five bullet points for the village "
        "council, with the main figures.",
        "Read the report below, then answer: which options does it recommend, in what order, "
        "and what is the combined cost of the options recommended for this year?\n\n"
        f"{report}",
    )


@dataclass(frozen=True, slots=True)
class PromptSet:
    name: str  # "standard-v1", or "custom" for a benchmark's own list
    prompts: tuple[str, ...]

    @property
    def sha256(self) -> str:
        return prompts_sha256(self.prompts)


def prompt_set(declared: str | Sequence[str]) -> PromptSet:
    """The prompts of a benchmark's ``prompts:`` value (``standard`` or a list)."""
    if isinstance(declared, str):
        if declared != "standard":
            raise ValueError(f"unknown prompt set {declared!r}; expected 'standard' or a list")
        return PromptSet(STANDARD_NAME, standard_prompts())
    return PromptSet(CUSTOM_NAME, tuple(declared))


def prompts_sha256(prompts: Sequence[str]) -> str:
    """sha256 of the prompts as a compact UTF-8 JSON array: a stable identity of the exact
    texts and their order (the same list in mlx.yaml gives the same sha on every machine)."""
    canonical = json.dumps(list(prompts), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
