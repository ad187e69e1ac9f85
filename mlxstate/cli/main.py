"""The ``mlx`` Typer app and the process entry point."""

from __future__ import annotations

import contextlib
import errno
import gc
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

# pydantic looks for plugins by scanning every installed package's entry points when it
# builds its first model: ~10 ms of each start, for observability hooks a CLI never has.
# A value the user set is kept.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from mlxstate.cli._errors import EXIT_INTERRUPTED, report, usage_error

if TYPE_CHECKING:
    import typer

    from mlxstate.seams import Seams

__all__ = ["entry_point", "main", "make_app"]


# name -> (module in mlxstate.cli, function, help). Order is the order of `mlx --help`.
_COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate": ("validate", "command", "Check mlx.yaml offline: schema and semantic rules."),
    "plan": ("plan", "command", "Show what `mlx apply` would change; change nothing."),
    "apply": ("apply", "command", "Carry out the plan: downloads, deletions; asks first."),
    "status": (
        "status",
        "command",
        "Show every model in every store, links, duplicates, reclaimable space.",
    ),
    "which": (
        "which",
        "command",
        "Show what a declared model is on disk: Ollama name, GGUF/mmproj, HF snapshot.",
    ),
    "init": ("init", "command", "Write mlx.yaml declaring the models installed now."),
    "add": ("edit", "add_command", "Add a model to mlx.yaml, keeping comments and formatting."),
    "rm": ("edit", "rm_command", "Remove a model from mlx.yaml, keeping comments and formatting."),
    "remove": ("edit", "rm_command", "Alias of `mlx rm`."),
    "sync": ("apply", "command", "Alias of `mlx apply`."),
    "scan": ("status", "command", "Alias of `mlx status`."),
    "link": (
        "link",
        "link_command",
        "Link models into an app's folder (apps.APP in mlx.yaml).",
    ),
    "unlink": ("link", "unlink_command", "Stop linking models into an app's folder."),
    "config": ("config", "app", "Get, set or unset settings.* in mlx.yaml, keeping comments."),
    "show": ("show", "command", "Show a plan saved by `mlx plan --out FILE`, as `mlx plan` would."),
    "import": (
        "own",
        "import_command",
        "Make a model already installed managed by this mlx.yaml.",
    ),
    "forget": (
        "own",
        "forget_command",
        "Stop managing a model from this mlx.yaml; keep its files.",
    ),
    "clean": (
        "clean",
        "command",
        "Delete stale partials, orphan blobs and detached revisions now (-y, --dry-run).",
    ),
    "verify": (
        "verify",
        "command",
        "Re-hash stored files against their names; exit 1 naming each corrupt one.",
    ),
    "stats": (
        "stats",
        "command",
        "Bytes per store, saved by dedup and links, reclaimable, reclaimed over time.",
    ),
    "watch": (
        "watch",
        "command",
        "Keep the machine reconciled with mlx.yaml: on every change and every interval.",
    ),
    "suspend": ("watch", "suspend_command", "Stop the watch agent's applies; it keeps watching."),
    "resume": ("watch", "resume_command", "Let the watch agent apply again."),
    "reconcile": ("watch", "reconcile_command", "Ask the running watch agent to reconcile now."),
    "lock": ("lock", "command", "Pin what every model resolves to upstream in mlx.lock."),
    "schema": ("schema", "command", "Print the JSON Schema of mlx.yaml."),
    "agent": ("agent", "app", "Install, remove or inspect the background agent (mlx watch)."),
    "bench": ("bench", "app", "Run declared benchmarks and read their history."),
    "dashboard": (
        "dashboard",
        "command",
        "Full-screen dashboard of models, machine, disks, benchmarks and the agent.",
    ),
    "dash": ("dashboard", "command", "Alias of `mlx dashboard`."),
    "menubar": ("menubar", "app", "The SwiftBar/xbar menu bar plugin: its output; install it."),
}


def make_app(only: str | None = None) -> typer.Typer:
    """The ``mlx`` app; with ``only``, just that subcommand (its module alone is imported:
    `mlx validate` does not load what apply or status need). Options, help and errors of a
    subcommand do not depend on which others are registered."""
    import typer

    from mlxstate.cli._root import root

    app = typer.Typer(
        name="mlx",
        help=(
            "Declarative manager for local LLM model stores (Ollama, Hugging Face cache, "
            "LM Studio)."
        ),
        no_args_is_help=True,
        add_completion=True,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(root)
    for name, (module, attr, help_text) in _COMMANDS.items():
        if only is None or name == only:
            func: Callable[..., Any] = getattr(
                importlib.import_module(f"mlxstate.cli.{module}"), attr
            )
            if isinstance(func, typer.Typer):  # a command with subcommands (`mlx agent`)
                app.add_typer(func, name=name, help=help_text)
            else:
                app.command(name, help=help_text)(func)
    return app


def main(argv: Sequence[str] | None = None, seams: Seams | None = None) -> int:
    """Run ``mlx`` with ``argv``; return the exit code (never raises). ``seams``: the side
    effects this one command uses (tests, embedding front-ends); default the real ones."""
    from mlxstate.seams import CURRENT

    args = list(sys.argv[1:] if argv is None else argv)
    token = CURRENT.set(seams) if seams is not None else None
    try:
        with _plain_if_asked(args), _hashing_notice(args), _without_cyclic_gc(args):
            return _main(args)
    finally:
        if token is not None:
            CURRENT.reset(token)


def _main(args: list[str]) -> int:
    debug = _debug_requested(args)
    if args[:1] == ["menubar"]:
        # The menu bar plugin's own call, run every few seconds: no option parser, not even
        # its import (a third of the run).
        try:
            if _menubar_plain(args[1:]):
                return 0
        except BrokenPipeError:
            return _pipe_closed()
        except (Exception, KeyboardInterrupt) as exc:
            return report(exc, debug=debug)
    if args[:1] == ["which"]:
        # Scripts call it in loops: a plain call skips the option parser and its import.
        try:
            code = _which_plain(args[1:])
            if code is not None:
                return code
        except BrokenPipeError:
            return _pipe_closed()
        except (Exception, KeyboardInterrupt) as exc:
            return report(exc, debug=debug)
    import typer
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

    try:
        # The first word names the subcommand (the root has no option taking a value);
        # anything else (--help, a typo, nothing) gets them all, for help and suggestions.
        only = args[0] if args and args[0] in _COMMANDS else None
        command = typer.main.get_command(make_app(only))
        result = command.main(args=args, prog_name="mlx", standalone_mode=False)
    except NoArgsIsHelpError:
        return 0  # `mlx` alone printed the help; that is what was asked for
    except UsageError as exc:
        name = exc.ctx.command_path if exc.ctx is not None else "mlx"
        return usage_error(exc.format_message().replace("Value error, ", ""), name)
    except ClickException as exc:
        return usage_error(exc.format_message(), "mlx")
    except typer.Abort:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _pipe_closed()
    except SystemExit as exc:
        # The CLI framework turns EPIPE (`mlx status | head -1`) into exit 1; the reader
        # just stopped reading, as with `git log | head`: that is not an error.
        if isinstance(exc.__context__, OSError) and exc.__context__.errno == errno.EPIPE:
            return _pipe_closed()
        raise
    except (Exception, KeyboardInterrupt) as exc:
        return report(exc, debug=debug)
    if result == EXIT_INTERRUPTED:  # Ctrl-C: the CLI framework turned it into this code
        sys.stderr.write("\ninterrupted\n")
    return result if isinstance(result, int) else 0


def _menubar_plain(args: list[str]) -> bool:
    from mlxstate.cli.menubar_run import plain_run

    return plain_run(args)


def _which_plain(args: list[str]) -> int | None:
    from mlxstate.cli.which_run import plain_run

    return plain_run(args)


def _pipe_closed() -> int:
    _STDOUT_CLOSED.append(True)  # entry_point() silences stdout before the interpreter flushes it
    return 0


_STDOUT_CLOSED: list[bool] = []


@contextlib.contextmanager
def _without_cyclic_gc(args: Sequence[str]) -> Iterator[None]:
    """No cyclic garbage collection while a short command runs: the observers and the
    planner allocate one small object per file and make no reference cycles, and the
    collector would re-walk the growing heap again and again (5-10% of `mlx plan`/`status`).
    Reference counting still frees everything. `mlx apply` keeps the collector: it may run
    for hours of downloads through libraries whose garbage is not ours to vouch for."""
    if args[:1] in (["apply"], ["sync"], ["watch"]) or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@contextlib.contextmanager
def _plain_if_asked(args: Sequence[str]) -> Iterator[None]:
    """``--no-color`` for every stream and every writer (our own and rich's), by setting
    NO_COLOR (no-color.org) for the duration of the command."""
    if "--no-color" not in args or os.environ.get("NO_COLOR"):
        yield
        return
    os.environ["NO_COLOR"] = "1"
    try:
        yield
    finally:
        del os.environ["NO_COLOR"]


@contextlib.contextmanager
def _hashing_notice(args: Sequence[str]) -> Iterator[None]:
    """Show slow hashing (duplicate search) on stderr, unless -q."""
    from mlxstate.cli._output import HashingNotice
    from mlxstate.observe.hash_progress import reporting

    quiet = any(a in ("-q", "--quiet") for a in args)
    with reporting(None if quiet else HashingNotice()):
        yield


def _debug_requested(args: Sequence[str]) -> bool:
    flag = any(a in ("-v", "--verbose") for a in args)
    return flag or os.environ.get("MLX_DEBUG", "").strip().lower() not in (
        "",
        "0",
        "false",
        "no",
        "off",
    )


def entry_point() -> None:
    """Console-script entry point."""
    # Started with stdout or stderr closed (`mlx status >&-`), Python sets the stream to
    # None and every write would crash: the output goes nowhere instead, as asked.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    code = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _STDOUT_CLOSED.append(True)
    if _STDOUT_CLOSED:
        # Whatever is still buffered for the closed pipe would make the interpreter's own
        # flush at exit print "Exception ignored ... BrokenPipeError": send it nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)
