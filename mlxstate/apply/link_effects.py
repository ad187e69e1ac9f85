"""Link effects: create, retarget and remove the symlinks mlx keeps in app folders.

Every change re-checks what is on disk first and never replaces anything mlx did not make:
a new link is created with ``os.symlink`` straight at its path (which fails if anything
appeared there since the plan); a retarget writes the new link under a temp name in the
same folder and ``os.replace``s it over mlx's old link, after checking the old one is still
the link mlx recorded; a removal checks the same, and then removes the empty folders above it.

Confinement: the folder a link lives in, with every symlink on the way resolved, must lie
inside the app folder (itself resolved). A subfolder of the app folder that is a link to
somewhere else therefore never lets mlx create or remove anything out there. mlx removes
a link itself, never what it points to. Any OS error (a read-only folder, a symlink loop)
fails the one action with a one-line message.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from mlxstate.errors import ActionError

__all__ = ["create_link", "remove_link", "retarget_link"]


def _current(path: Path) -> Path | None:
    try:
        return Path(os.path.normpath(os.path.join(path.parent, os.readlink(path))))
    except OSError:
        return None


def _confine(path: Path, root: Path) -> None:
    """Refuse ``path`` unless its folder, symlinks resolved, is inside ``root`` (resolved).
    Folders not made yet resolve as written, below the deepest one that exists."""
    if not Path(os.path.realpath(path.parent)).is_relative_to(os.path.realpath(root)):
        raise ActionError(
            f"{path.parent} leads outside the app folder {root} (a symlinked folder); left alone"
        )


def _failed(what: str, path: Path, exc: OSError) -> ActionError:
    return ActionError(f"cannot {what} {path}: {exc.strerror or exc}; left alone")


def create_link(path: Path, target: Path, root: Path, created: list[Path] | None = None) -> bool:
    """True if created, False if the same link is already there. Anything else: conflict.
    Folders made on the way are appended to ``created`` (mlx removes only those later)."""
    if os.path.lexists(path):
        if path.is_symlink() and _current(path) == target:
            return False
        raise ActionError(f"{path} exists and is not mlx's link to {target}; left alone (conflict)")
    _confine(path, root)
    missing = [p for p in reversed(path.parents) if not os.path.lexists(p)]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if created is not None:
            created += missing
    except (FileExistsError, NotADirectoryError):
        raise ActionError(
            f"a file is where mlx needs the folder {path.parent}; left alone (conflict)"
        ) from None
    except OSError as exc:  # read-only, a symlink loop on the way, ...
        raise _failed("create the folder", path.parent, exc) from None
    _confine(path, root)  # again: a folder may have been swapped for a link meanwhile
    try:
        os.symlink(target, path)  # fails if something appeared there: never overwrites
    except FileExistsError:
        raise ActionError(f"{path} appeared while linking; left alone (conflict)") from None
    except OSError as exc:
        raise _failed("link", path, exc) from None
    return True


def retarget_link(path: Path, old: Path, new: Path, root: Path) -> None:
    _confine(path, root)
    if not path.is_symlink() or _current(path) != old:
        raise ActionError(
            f"{path} is no longer the link mlx made (to {old}); left alone (conflict)"
        )
    tmp = path.with_name(f".{path.name}.mlx-{uuid.uuid4().hex[:8]}")
    try:
        os.symlink(new, tmp)
        os.replace(tmp, path)  # atomic: apps see the old link or the new one, never none
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _failed("retarget", path, exc) from None


def remove_link(
    path: Path, target: Path, app_root: Path, owned: set[Path], removed: list[Path] | None = None
) -> bool:
    """Remove mlx's link (only if it still points where mlx made it point), then the folders
    above it that mlx created (``owned``) and that are now empty — never a user's folder."""
    _confine(path, app_root)
    if not path.is_symlink():
        return False
    if _current(path) != target:
        raise ActionError(f"{path} now points elsewhere; not mlx's link any more, left alone")
    try:
        path.unlink()  # the link itself: never what it points to
    except OSError as exc:
        raise _failed("remove the link", path, exc) from None
    folder = path.parent
    while folder != app_root and folder.is_relative_to(app_root) and folder in owned:
        if os.path.islink(folder):
            break  # a link where mlx's folder was: not mlx's any more
        try:
            folder.rmdir()  # only when empty
        except OSError:
            break
        if removed is not None:
            removed.append(folder)
        folder = folder.parent
    return True
