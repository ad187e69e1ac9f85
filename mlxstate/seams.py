"""The side effects a test or another front-end may replace, passed in, never patched:
the clock, the free-space probe, the copy-on-write cloner and the case-folding probe
(docs/architecture.md, "Side effects").

A :class:`~mlxstate.engine.Session` takes a ``Seams``; ``mlx`` run in process takes one
through ``mlxstate.cli.main.main(argv, seams=...)``, which sets :data:`CURRENT` for the
duration of that one command.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import tzinfo

    from mlxstate.facts import DiskSpace
    from mlxstate.machine import Conditions

__all__ = ["CURRENT", "DEFAULT", "Seams"]


def _disk_space(path: Path) -> DiskSpace | None:
    from mlxstate.observe.scan import disk_space

    return disk_space(path)


def _clone(src: Path, dst: Path) -> None:
    from mlxstate.apply.dedup_effects import clone_file

    clone_file(src, dst)


def _run_command(argv: Sequence[str]) -> tuple[int, str, str]:
    from mlxstate.watch.service import run_command

    return run_command(argv)


def _conditions() -> Conditions:
    from mlxstate.machine import conditions

    return conditions()


def _memory_total() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except (OSError, RuntimeError, AttributeError):
        return None  # unknown: a `when: {min_memory}` then fails closed


def _timezone() -> tzinfo:
    from mlxstate.bench.schedule import local_zone

    return local_zone()


def _folds_case(path: Path) -> bool:
    from mlxstate.fsutil import folds_case

    return folds_case(path)


@dataclass(frozen=True)
class Seams:
    clock: Callable[[], float] = time.time  # POSIX seconds: "older than 1 hour" is relative
    disk_space: Callable[[Path], DiskSpace | None] = _disk_space  # free space where it lands
    clone: Callable[[Path, Path], None] = _clone  # copy-on-write copy (CloneUnsupported)
    folds_case: Callable[[Path], bool] = _folds_case  # does this folder's filesystem?
    # `mlx agent`: launchctl / systemctl calls (argv -> code, stdout, stderr), and the OS.
    run_command: Callable[[Sequence[str]], tuple[int, str, str]] = _run_command
    platform: str = sys.platform
    # Power source and memory pressure now (benchmarks skip scheduled runs on battery).
    conditions: Callable[[], Conditions] = _conditions
    # The local time zone cron schedules are read in (a named zone, so DST is right).
    timezone: Callable[[], tzinfo] = _timezone
    # The dashboard's machine figures (the ``system`` part of its snapshot) and the host it
    # names; None: the real ones (docs/dashboard.md).
    system_figures: Callable[[], dict[str, Any]] | None = None
    host_facts: Callable[[], dict[str, Any]] | None = None
    # This machine's total memory in bytes (None: unknown), for `when: {min_memory}`.
    memory_total: Callable[[], int | None] = _memory_total


DEFAULT = Seams()
CURRENT: ContextVar[Seams] = ContextVar("mlxstate_seams", default=DEFAULT)
