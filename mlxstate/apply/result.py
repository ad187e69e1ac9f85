"""What one action's effect did, as a value the executor journals and records."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = ["Result"]


@dataclass(frozen=True)
class Result:
    status: Literal["done", "noop"]
    detail: str  # one line for the summary ("pulled", "already gone", …)
    # What the record step writes to the registry besides the action itself:
    links_made: tuple[tuple[Path, Path], ...] = ()  # (link, target) a link sync made
    links_removed: tuple[Path, ...] = ()  # mlx's links a link sync removed
    dirs_made: tuple[Path, ...] = ()  # folders mlx created for links (removable later)
    dirs_removed: tuple[Path, ...] = ()
    # A dedup this filesystem cannot do (no clone support): recorded all the same, so the
    # plan stops proposing it here.
    dedup_unsupported: bool = False
