"""Where `mlx menubar` gets its snapshot: the agent's ``<state_dir>/dashboard.json`` when it
is fresh, else a sample taken now (docs/dashboard.md, "Menu bar").

SwiftBar runs the plugin every few seconds, so the common path stays small: no pydantic,
no observers, no YAML parser — one ``stat``, one bounded read and ``json.loads``. The file
is untrusted (any process of the user can write there): a FIFO, a symlink, a huge file,
deep nesting, bad UTF-8 or the wrong shape is a *problem* string, never a traceback.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "FRESH_SECONDS",
    "MAX_BYTES",
    "SNAPSHOT_NAME",
    "default_state_dir",
    "produce",
    "read_fresh",
    "state_dir_if_default",
]

SNAPSHOT_NAME = "dashboard.json"
FRESH_SECONDS = 30.0  # three times the plugin's 10 s refresh
MAX_BYTES = 4 * 1024 * 1024  # a snapshot is a few kB; a bigger file is not one
_FUTURE_SLACK = 5.0  # seconds a file may seem to come from the future (clock steps)
_SPEC_PEEK = 1024 * 1024

Sampler = Callable[[], Any]


def read_fresh(path: Path, now: float, max_age: float = FRESH_SECONDS) -> tuple[Any, str | None]:
    """(document, None) when ``path`` holds a snapshot younger than ``max_age`` seconds;
    (None, None) when there is no file; (None, why) when it is stale or unusable."""
    try:
        # O_NONBLOCK: a FIFO put there must not hang the menu bar; O_NOFOLLOW: the agent
        # renames a regular file into place, a symlink is someone else's doing.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{SNAPSHOT_NAME}: {exc.strerror or exc}"
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None, f"{SNAPSHOT_NAME} is not a regular file"
        age = now - info.st_mtime
        if age > max_age or age < -_FUTURE_SLACK:
            return None, f"{SNAPSHOT_NAME} is stale ({int(age)} s old)"
        if info.st_size > MAX_BYTES:
            return None, f"{SNAPSHOT_NAME} is too large ({info.st_size} bytes)"
        data = os.read(fd, MAX_BYTES + 1)
    except OSError as exc:
        return None, f"{SNAPSHOT_NAME}: {exc.strerror or exc}"
    finally:
        os.close(fd)
    return _parse(data)


def _parse(data: bytes) -> tuple[Any, str | None]:
    if len(data) > MAX_BYTES:
        return None, f"{SNAPSHOT_NAME} is too large"
    try:
        doc = json.loads(data.decode("utf-8"))
    except RecursionError:
        return None, f"{SNAPSHOT_NAME} is nested too deeply"
    except ValueError as exc:  # bad UTF-8 or not JSON
        return None, f"{SNAPSHOT_NAME} is not JSON ({type(exc).__name__})"
    if not isinstance(doc, dict):
        return None, f"{SNAPSHOT_NAME} is not a JSON object"
    if doc.get("format_version") != "1":
        return None, f"{SNAPSHOT_NAME} has an unknown format_version"
    return doc, None


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """The state folder when mlx.yaml does not set one: what ``Settings.state_dir`` gives
    (settings.py), without building it (a test keeps the two equal)."""
    xdg = environ.get("XDG_STATE_HOME")
    if xdg:
        from mlxstate.paths import expand_path_text

        return expand_path_text(xdg, None) / "mlxstate"
    import platformdirs

    return Path(platformdirs.user_state_dir("mlxstate", appauthor=False))


def state_dir_if_default(spec_path: Path, environ: Mapping[str, str]) -> Path | None:
    """The state folder of ``spec_path`` without parsing it, when its text cannot set
    ``state_dir``; None when only the full settings resolution can tell."""
    try:
        # O_NONBLOCK: a FIFO named with -f would hold the plugin until someone writes to it;
        # anything but a regular file is left to the loader, which says what is wrong.
        fd = os.open(spec_path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        head = os.read(fd, _SPEC_PEEK + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    # A key spelt with an escape ("state\x5fdir") or a file too big to peek at: ask the
    # real loader.
    if len(head) > _SPEC_PEEK or b"state_dir" in head or b"\\" in head:
        return None
    return default_state_dir(environ)


def produce(
    state_dir: Path,
    now: float,
    mlx: tuple[str, ...],
    spec_path: str | None,
    sampler: Sampler | None,
    max_age: float = FRESH_SECONDS,
) -> str:
    """The plugin output: the agent's fresh snapshot, else ``sampler()``'s, else "mlx ⚠"."""
    from mlxstate.dashboard.menubar import render, render_error

    doc, problem = read_fresh(state_dir / SNAPSHOT_NAME, now, max_age)
    if doc is not None:
        return render(doc, mlx, spec_path, origin="from the agent")
    why = problem or f"no {SNAPSHOT_NAME} (is the agent running? `mlx agent install`)"
    if sampler is None:
        return render_error(f"No fresh snapshot: {why}", mlx, spec_path)
    try:
        sampled = sampler()
    except Exception as exc:  # any failure of a live sample is shown in the menu, not raised
        return render_error(f"Sampling failed: {type(exc).__name__}: {exc}", mlx, spec_path)
    origin = "sampled now" + (f"; {problem}" if problem else "")
    return render(sampled, mlx, spec_path, origin=origin)
