"""The watch agent's snapshots: after each loop iteration it writes ``dashboard.json`` to
its state folder (docs/dashboard.md, "The agent's snapshot"), so `mlx menubar` and other
readers show it without observing again. Its own state and plan summary go in directly;
its reconciles' observations stand in for store scans."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlxstate.dashboard.sampler import Sampler
from mlxstate.dashboard.snapshot import write_snapshot

if TYPE_CHECKING:
    from mlxstate.engine import ApplyResult
    from mlxstate.settings import Settings
    from mlxstate.watch.loop import Agent

__all__ = ["AgentSnapshots"]

SNAPSHOT_EVERY = 10.0  # seconds between two dashboard.json writes of the agent


class AgentSnapshots:
    def __init__(self, agent: Agent, **sampler_options: Any) -> None:
        self.agent = agent
        self.sampler = Sampler(agent.session, agent=self._state, plan_every=None, **sampler_options)
        self.last: float | None = None  # when the last snapshot was written
        self.failure: str | None = None  # the last failure logged (logged once, not per second)

    def _state(self, _settings: Settings) -> tuple[dict[str, Any], dict[str, Any] | None]:
        from mlxstate.watch.state import agent_document

        doc = self.agent.doc
        summary = doc.get("plan_summary")
        # The flag as last read by the loop: no query of its own.
        state = agent_document(doc, self.agent.store.suspended, locked=True)
        return state, summary if isinstance(summary, dict) else None

    def reconciled(self, result: ApplyResult) -> None:
        """The reconcile's observation is the latest scan; after changes, scan again."""
        self.sampler.use_observed(result.planned.observed, result.planned.observed.now)
        if result.outcomes:
            self.sampler.stores_changed()

    def write(self, force: bool = False) -> None:
        """Write a snapshot if ``dashboard.refresh`` has passed (or ``force``). Never raises:
        the agent must outlive a full disk or a read-only state folder."""
        now = self.agent.clock()
        try:
            # The background agent samples at most every SNAPSHOT_EVERY seconds: the menu
            # bar reads a file younger than 30 s, and a full-screen dashboard samples itself.
            period = max(self.sampler.settings.refresh, SNAPSHOT_EVERY)
            if not force and self.last is not None and now - self.last < period:
                return
            # Reconciles observe the stores; between them, at most one scan per interval.
            self.sampler.stores_every = max(self.agent.schedule.interval, 60.0)
            doc = self.sampler.sample()
            write_snapshot(self.sampler.state_dir(), doc)
        except Exception as exc:
            text = _why(exc)
            if text != self.failure:
                self.agent.emit_log(f"could not write the dashboard snapshot: {text}")
            self.failure = text
            return
        self.last, self.failure = now, None

    def close(self) -> None:
        self.sampler.close()


def _why(exc: Exception) -> str:
    """One line, the same for the same cause (not naming the random temporary file)."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename2 or exc.filename
        return f"{exc.strerror}: {where}" if where else exc.strerror
    return " ".join((str(exc) or type(exc).__name__).split())
