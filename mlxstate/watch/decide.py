"""The watch loop's decisions, pure (docs/watch.md, "How the loop decides").

No clock, no files: the loop passes in what it observed and the time, so tests drive every
branch with plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["BACKOFF_START", "STALLED_AFTER", "Schedule", "Trigger", "backoff"]

BACKOFF_START = 5.0  # seconds before the first retry; doubles per failure
STALLED_AFTER = 3  # consecutive failures before the agent says Stalled

Trigger = Literal["file", "requested", "interval"]


def backoff(failures: int, interval: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures: 5 s doubling, capped."""
    if failures <= 0:
        return interval
    return min(BACKOFF_START * float(2 ** min(failures - 1, 30)), interval)


@dataclass
class Schedule:
    """When the next reconcile is due and what the loop has already seen."""

    interval: float
    next_run: float = 0.0
    failures: int = 0
    last_sha: str | None = None  # content the last reconcile acted on
    invalid_seen: set[str] = field(default_factory=set)  # content already reported invalid

    def trigger(
        self, now: float, sha: str | None, file_event: bool, requested: bool
    ) -> Trigger | None:
        """Why to reconcile now, or None. A file event counts only when the content
        changed: a `touch` or a rename of identical bytes is no reason."""
        if file_event and sha != self.last_sha:
            return "file"
        if requested:
            return "requested"
        if now >= self.next_run:
            return "interval"
        return None

    def succeeded(self, now: float) -> None:
        self.failures = 0
        self.next_run = now + self.interval

    def failed(self, now: float) -> float:
        self.failures += 1
        delay = backoff(self.failures, self.interval)
        self.next_run = now + delay
        return delay

    def invalid(self, now: float, sha: str | None) -> bool:
        """An invalid file waits for an edit (or the interval); True the first time this
        content is seen, so it is logged once."""
        self.next_run = now + self.interval
        if sha is None or sha in self.invalid_seen:
            return False
        self.invalid_seen.add(sha)
        return True

    @property
    def stalled(self) -> bool:
        return self.failures >= STALLED_AFTER
