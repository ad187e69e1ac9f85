"""The single place where errors become messages and exit codes (docs/commands.md).

- ``MlxError``: its message (and hint) on stderr, its exit code (1).
- Usage errors (bad flags): exit 1, not click's 2, because 2 means "changes pending".
- ``KeyboardInterrupt``: 130.
- Anything else is a bug: exit 3; the traceback goes to a log file under the state dir,
  and is printed only with ``-v`` or ``MLX_DEBUG=1``.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from mlxstate.cli._output import color_enabled, paint
from mlxstate.errors import MlxError, SpecError

__all__ = ["EXIT_CHANGES", "EXIT_ERROR", "EXIT_INTERNAL", "EXIT_INTERRUPTED", "EXIT_OK", "report"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INTERNAL = 3
EXIT_INTERRUPTED = 130


def report(exc: BaseException, *, debug: bool) -> int:
    """Print ``exc`` for a user and return the exit code."""
    color = color_enabled(sys.stderr)
    if isinstance(exc, KeyboardInterrupt):
        sys.stderr.write("\ninterrupted\n")
        return EXIT_INTERRUPTED
    if isinstance(exc, SpecError):
        for diagnostic in exc.diagnostics:
            sys.stderr.write(diagnostic.render() + "\n")
        _hint(exc.hint, color)
        return exc.exit_code
    if isinstance(exc, MlxError):
        sys.stderr.write(f"{paint('error:', 'red', color)} {exc.message}\n")
        _hint(exc.hint, color)
        if debug:
            traceback.print_exception(exc, file=sys.stderr)
        return exc.exit_code
    return _internal(exc, debug=debug, color=color)


def usage_error(message: str, command: str) -> int:
    color = color_enabled(sys.stderr)
    sys.stderr.write(f"{paint('error:', 'red', color)} {message}\n")
    _hint(f"see '{command} --help'", color)
    return EXIT_ERROR


def _hint(hint: str | None, color: bool) -> None:
    if hint:
        sys.stderr.write(f"{paint('hint:', 'dim', color)} {hint}\n")


def _internal(exc: BaseException, *, debug: bool, color: bool) -> int:
    text = "".join(traceback.format_exception(exc))
    log = _write_crash_log(text)
    if debug:
        sys.stderr.write(text)
    where = f"the full report is in {log}" if log else "no log file could be written"
    sys.stderr.write(
        f"{paint('internal error:', 'red', color)} {type(exc).__name__}: {exc}\n"
        f"This is a bug in mlxstate; {where}. Please include it when you report the bug "
        "(run with -v to print the traceback).\n"
    )
    return EXIT_INTERNAL


def write_crash_log(exc: BaseException) -> Path | None:
    """The traceback of an unexpected error inside one action (the apply goes on)."""
    return _write_crash_log("".join(traceback.format_exception(exc)))


def _write_crash_log(text: str) -> Path | None:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in _log_dirs():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"crash-{stamp}-{_pid()}.log"
            path.write_text(text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def _log_dirs() -> list[Path]:
    import tempfile

    dirs: list[Path] = []
    try:
        from mlxstate.settings import read_environment, resolve

        dirs.append(resolve(None, read_environment()).state_dir / "logs")
    except Exception:
        pass
    dirs.append(Path(tempfile.gettempdir()) / "mlxstate-logs")
    return dirs


def _pid() -> int:
    import os

    return os.getpid()
