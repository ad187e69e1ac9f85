"""App folders: the links mlx keeps there, dangling links, and foreign files.

``layout: lmstudio`` folders are read exactly two folders deep
(``<publisher>/<model>/<file>``), ``layout: dir`` folders one level deep.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mlxstate.facts import AppLink, AppState

__all__ = ["scan_app", "scan_paths"]

_DEPTH = {"lmstudio": 3, "dir": 1}


def scan_app(name: str, path: Path, layout: str) -> AppState:
    try:
        is_dir = stat.S_ISDIR(os.stat(path).st_mode)
    except FileNotFoundError:
        return AppState(name, path, layout, exists=False)
    except OSError as exc:  # a symlink loop on the way, a folder we may not enter, ...
        why = exc.strerror or str(exc)
        return AppState(name, path, layout, False, (), (f"apps.{name}: cannot read {path}: {why}",))
    if not is_dir:
        return AppState(name, path, layout, exists=False)
    warnings: list[str] = []
    entries: list[AppLink] = []
    _walk(path, _DEPTH.get(layout, 1), entries, warnings)
    entries.sort(key=lambda e: e.path)
    return AppState(name, path, layout, True, tuple(entries), tuple(warnings))


def _walk(folder: Path, depth: int, out: list[AppLink], warnings: list[str]) -> None:
    try:
        items = list(os.scandir(folder))
    except OSError as exc:
        warnings.append(f"cannot list {folder}: {exc.strerror or exc}")
        return
    for entry in items:
        if entry.name.startswith("."):
            continue  # .DS_Store, LM Studio's own dotfiles
        path = Path(entry.path)
        if entry.is_symlink():
            out.append(_link(path))
        elif entry.is_dir():
            if depth > 1:
                _walk(path, depth - 1, out, warnings)
            else:
                out.append(AppLink(path, "dir"))
        elif entry.is_file():
            try:
                out.append(AppLink(path, "file", size=entry.stat().st_size))
            except OSError:
                continue  # gone since the listing


def _link(path: Path) -> AppLink:
    try:
        raw = os.readlink(path)
    except OSError:
        return AppLink(path, "dangling")  # gone or unreadable since the listing
    target = Path(os.path.normpath(os.path.join(path.parent, raw)))
    try:
        size = os.stat(path).st_size  # follows the link
    except OSError:
        return AppLink(path, "dangling", target)
    return AppLink(path, "link", target, size)


def scan_paths(paths: list[Path]) -> tuple[AppLink, ...]:
    """What is at each of ``paths`` (missing ones are left out)."""
    out = []
    for path in sorted(paths):
        try:
            st = os.lstat(path)
        except OSError:
            continue  # missing, or unreachable (a symlink loop above it)
        if stat.S_ISLNK(st.st_mode):
            out.append(_link(path))
        elif stat.S_ISREG(st.st_mode):
            out.append(AppLink(path, "file", size=st.st_size))
        elif stat.S_ISDIR(st.st_mode):
            out.append(AppLink(path, "dir"))
    return tuple(out)
