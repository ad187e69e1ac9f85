"""``mlx agent install|uninstall|status``: the per-user service that runs ``mlx watch``
(docs/agent.md). Parse → build the service description → call mlxstate.watch.service."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.cli._output import emit_json

if TYPE_CHECKING:
    from mlxstate.seams import Seams
    from mlxstate.watch.service import Account, Backend, ServiceSpec

__all__ = ["app"]

app = typer.Typer(
    no_args_is_help=True,
    help="Install, remove or inspect the background agent that runs `mlx watch`.",
)


def _seams() -> Seams:
    from mlxstate.seams import CURRENT

    return CURRENT.get()


def _backend() -> Backend:
    from mlxstate.watch.service import backend_for

    return backend_for(_seams().platform)


def _account(call: Invocation) -> Account:
    from mlxstate.watch.service import Account

    return Account.of(call.env.snapshot, os.getuid())


def _service(call: Invocation) -> ServiceSpec:
    from mlxstate.watch.service import ServiceSpec, program_argv

    session = call.session()
    loaded = session.load()  # the agent watches this file: it must exist and be valid now
    logs = session.settings(loaded).state_dir / "logs"
    return ServiceSpec.make(program_argv(), loaded.path, logs, call.env.snapshot, _account(call))


@app.command("install")
def install_command(
    file: FileOpt = None,
    print_only: Annotated[
        bool, typer.Option("--print", help="Print the service file; write nothing.")
    ] = False,
    no_load: Annotated[
        bool, typer.Option("--no-load", help="Write the service file; do not load it.")
    ] = False,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write the service that runs `mlx watch -f FILE` and (unless --no-load) start it."""
    from mlxstate.watch.service import install

    call = Invocation.make(file, no_color, quiet, verbose)
    backend = _backend()
    service = _service(call)
    if print_only:
        sys.stdout.write(backend.render(service))
        return
    done = install(backend, service, _seams().run_command, load=not no_load)
    if quiet:
        return
    verb = "installed and loaded" if done.loaded else "installed (not loaded)"
    sys.stdout.write(f"agent {verb}: {done.path}\n")
    sys.stdout.write(f"runs: {' '.join(service.argv)}\n")
    sys.stdout.write(f"logs: {service.log_dir}\n")
    for note in done.notes:
        sys.stdout.write(f"note: {note}\n")


@app.command("uninstall")
def uninstall_command(
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Stop the agent and remove its service file (exit 1 if none is installed)."""
    from mlxstate.watch.service import uninstall

    call = Invocation.make(None, no_color, quiet, verbose)
    path = uninstall(_backend(), _account(call), _seams().run_command)
    if not quiet:
        sys.stdout.write(f"agent uninstalled: removed {path}\n")


@app.command("status")
def status_command(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Is the agent's service file installed, and is it loaded?"""
    from mlxstate.watch.service import status

    call = Invocation.make(None, no_color, quiet, verbose)
    state = status(_backend(), _account(call), _seams().run_command)
    if json_out:
        emit_json(state.document())
        return
    if quiet:
        return
    sys.stdout.write(f"installed: {'yes' if state.installed else 'no'} ({state.path})\n")
    sys.stdout.write(f"loaded:    {'yes' if state.loaded else 'no'} ({state.backend})\n")
