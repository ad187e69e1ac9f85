"""``mlx watch``, ``mlx suspend``, ``mlx resume``, ``mlx reconcile`` (docs/watch.md)."""

from __future__ import annotations

import json
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.cli._errors import EXIT_INTERRUPTED

if TYPE_CHECKING:
    from mlxstate.engine import Session
    from mlxstate.watch.loop import Event
    from mlxstate.watch.state import AgentStore

__all__ = ["command", "reconcile_command", "resume_command", "suspend_command"]


def command(
    once: Annotated[bool, typer.Option("--once", help="Reconcile once, then exit.")] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object per event and line.")
    ] = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Keep the machine reconciled with mlx.yaml: at start, on every change, every interval."""
    from mlxstate.registry import Registry
    from mlxstate.watch.files import FileWatcher
    from mlxstate.watch.loop import Agent
    from mlxstate.watch.state import AgentStore, agent_lock

    found, _ = Invocation.make(file, no_color, quiet, verbose).session().find_spec()
    # From now on this file, by its absolute path: were it deleted, looking again would pick
    # another mlx.yaml (the config folder's) and apply a different machine state.
    path = found.absolute()
    session = Invocation.make(path, no_color, quiet, verbose).session()
    state_dir = _state_dir(session)
    with Registry.open(state_dir) as registry, agent_lock(state_dir):
        agent = Agent(session, path, AgentStore(registry), _printer(json_out))
        stop = _Stop(agent)
        agent.start()
        watcher = None if once else FileWatcher(path).start()
        try:
            with stop.installed():
                if once:
                    agent.step("once")
                else:
                    assert watcher is not None
                    agent.run(watcher.wait, stop.stopping)
        except KeyboardInterrupt:
            pass  # a signal abandoned an apply: the journal lets the next apply adopt it
        finally:
            if watcher is not None:
                watcher.close()
            agent.stop()
    if stop.code is not None:
        raise typer.Exit(stop.code)
    if once and not agent.ok:
        raise typer.Exit(1)


def _state_dir(session: Session) -> Path:
    """The state folder of the file, or the default one while the file is invalid (the
    agent still starts and reports why it applies nothing)."""
    from mlxstate.errors import SpecError

    try:
        loaded = session.load_optional()
    except SpecError:
        loaded = None
    return session.settings(loaded).state_dir


class _Stop:
    """SIGTERM and SIGHUP (exit 0) and SIGINT (exit 130): stop the loop; during an apply, abandon it
    the way Ctrl-C abandons `mlx apply` (the lock is released, the journal remains); during a
    scheduled benchmark, abandon the model being measured (nothing is recorded for it)."""

    def __init__(self, agent: object) -> None:
        self.agent = agent
        self.code: int | None = None

    def stopping(self) -> bool:
        return self.code is not None  # read by the loop at least once per poll (1 s)

    def handle(self, signum: int, _frame: FrameType | None) -> None:
        # No lock here (no threading.Event.set): a second signal runs this handler inside
        # the first one, and a lock taken twice by one thread hangs the agent for good.
        first = self.code is None
        self.code = EXIT_INTERRUPTED if signum == signal.SIGINT else 0
        busy = getattr(self.agent, "applying", False) or getattr(self.agent, "benchmarking", False)
        if first and busy:
            raise KeyboardInterrupt

    def installed(self) -> _Installed:
        return _Installed(self)


# SIGHUP too (a closed terminal): by default it kills the loop mid-apply without recording
# `stopped`, leaving a stale pid behind.
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _Installed:
    def __init__(self, stop: _Stop) -> None:
        self.stop = stop
        self.saved: list[object] = []

    def __enter__(self) -> None:
        for sig in _SIGNALS:
            self.saved.append(signal.signal(sig, self.stop.handle))

    def __exit__(self, *_: object) -> None:
        for sig, old in zip(_SIGNALS, self.saved, strict=True):
            signal.signal(sig, old)  # type: ignore[arg-type]


def _printer(json_out: bool) -> Callable[[Event], None]:
    def emit(event: Event) -> None:
        doc = event.document()
        plain = f"{doc['time']} {event.event}: {event.message}"
        line = json.dumps(doc) if json_out else plain
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    return emit


# -- suspend / resume / reconcile ----------------------------------------------------------


def _store_do(file: FileOpt, action: Callable[[AgentStore], str]) -> None:
    from mlxstate.registry import Registry
    from mlxstate.watch.state import AgentStore

    session = Invocation.make(file, False, False, False).session()
    state_dir = _state_dir(session)
    with Registry.open(state_dir) as registry:
        sys.stdout.write(action(AgentStore(registry)) + "\n")


def suspend_command(file: FileOpt = None) -> None:
    """Stop automatic applies; the agent keeps watching."""

    def act(store: AgentStore) -> str:
        store.set_suspended(True)
        return "Suspended: the agent applies nothing until `mlx resume`."

    _store_do(file, act)


def resume_command(file: FileOpt = None) -> None:
    """Restart automatic applies."""

    def act(store: AgentStore) -> str:
        store.set_suspended(False)
        return "Resumed: the agent reconciles now and keeps doing so."

    _store_do(file, act)


def reconcile_command(file: FileOpt = None) -> None:
    """Ask the running agent to reconcile now (exit 1 if none runs)."""
    from mlxstate.errors import MlxError
    from mlxstate.watch.state import agent_lock_held, pid_alive

    def act(store: AgentStore) -> str:
        pid = store.doc().get("pid")
        # The agent lock, not the pid alone: after a kill -9 the pid may be another process.
        if not (agent_lock_held(store.registry.path.parent) and pid_alive(pid)):
            raise MlxError(
                "no watch agent is running for this state folder",
                hint="start one with `mlx watch`, or run `mlx apply` by hand",
            )
        store.request_reconcile()
        return f"Asked the agent (pid {pid}) to reconcile now."

    _store_do(file, act)
