"""App folders: the links mlx keeps there, dangling links, and foreign files.

``layout: lmstudio`` folders are read exactly two folders deep
(``<publisher>/<model>/<file>``), ``layout: dir`` folders one level deep.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlxstate.state import AppLink, AppState

__all__ = ["scan_app", "scan_paths"]

_DEPTH = {"lmstudio": 3, "dir": 1}


def scan_app(name: str, path: Path, layout: str) -> AppState:
    if not path.is_dir():
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
            out.append(AppLink(path, "file", size=entry.stat().st_size))


def _link(path: Path) -> AppLink:
    raw = os.readlink(path)
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
        if path.is_symlink():
            out.append(_link(path))
        elif path.is_file():
            out.append(AppLink(path, "file", size=path.stat().st_size))
        elif path.is_dir():
            out.append(AppLink(path, "dir"))
    return tuple(out)
