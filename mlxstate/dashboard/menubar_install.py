"""`mlx menubar install|uninstall`: the SwiftBar plugin file (docs/dashboard.md, "Menu bar").

The plugin is a small bash script, ``mlx.10s.sh`` (SwiftBar reads the refresh interval
from the name), that runs the absolute ``mlx menubar -f <absolute mlx.yaml>``. mlx only
ever replaces or removes a plugin file it wrote itself (the marker line says so), and
never writes through a symlink: the file is written next to its place and renamed over it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import stat
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mlxstate import __version__
from mlxstate.dashboard.swiftbar import line
from mlxstate.errors import MlxError
from mlxstate.watch.service import _CARRIED_ENV

__all__ = [
    "MARKER",
    "PLUGIN_NAME",
    "install_plugin",
    "plugin_folder",
    "plugin_text",
    "uninstall_plugin",
]

PLUGIN_NAME = "mlx.10s.sh"
MARKER = "# mlxstate: written by `mlx menubar install`; `mlx menubar uninstall` removes it"
_PEEK = 64 * 1024

Runner = Callable[[Sequence[str]], tuple[int, str, str]]


def plugin_text(mlx: Sequence[str], spec_path: str | None, environ: Mapping[str, str]) -> str:
    """The plugin script: metadata SwiftBar and xbar show, the carried environment, and
    one ``exec`` of the absolute ``mlx menubar``."""
    argv = [*mlx, "menubar", *(["-f", spec_path] if spec_path else [])]
    for part in argv:
        if any(ch in part for ch in "\n\r\x00"):
            raise MlxError(f"cannot write the plugin: {part!r} contains a line break")
    # SwiftBar starts plugins without the login shell's environment: carry what the agent's
    # service carries, so the plugin finds the same state folder and Ollama.
    exports = [
        f"export {name}={shlex.quote(environ[name])}"
        for name in _CARRIED_ENV
        if environ.get(name) and not any(ch in environ[name] for ch in "\n\r\x00")
    ]
    missing = [line("mlx ⚠", {"sfimage": "exclamationmark.triangle"}), "---"]
    missing.append(line(f"mlx is not at {mlx[0]}: run `mlx menubar install` again"))
    return "\n".join(
        [
            "#!/bin/bash",
            MARKER,
            "# <xbar.title>mlx</xbar.title>",
            f"# <xbar.version>v{__version__}</xbar.version>",
            "# <xbar.author>mlxstate</xbar.author>",
            "# <xbar.desc>Running models, drift, disk, benchmarks and the mlx agent.</xbar.desc>",
            "# <xbar.dependencies>mlxstate</xbar.dependencies>",
            "# <swiftbar.hideRunInTerminal>true</swiftbar.hideRunInTerminal>",
            "# <swiftbar.hideDisablePlugin>false</swiftbar.hideDisablePlugin>",
            *exports,
            f"if [ ! -x {shlex.quote(mlx[0])} ]; then",
            *(f"  printf '%s\\n' {shlex.quote(text)}" for text in missing),
            "  exit 0",
            "fi",
            f"exec {' '.join(shlex.quote(part) for part in argv)}",
            "",
        ]
    )


def plugin_folder(given: Path | None, platform: str, run: Runner) -> Path:
    """``--dir``, else SwiftBar's plugin folder from its preferences (macOS only)."""
    if given is not None:
        return _checked_folder(given, "--dir")
    if platform != "darwin":
        raise MlxError("SwiftBar runs on macOS only: give the plugin folder with --dir DIR")
    code, out, _ = run(["defaults", "read", "com.ameba.SwiftBar", "PluginDirectory"])
    text = out.strip()
    if code != 0 or not text or "\n" in text:
        raise MlxError("SwiftBar's plugin folder is not set: give it with --dir DIR")
    return _checked_folder(Path(os.path.expanduser(text)), "SwiftBar's plugin folder")


def _checked_folder(folder: Path, what: str) -> Path:
    if not folder.is_absolute():
        folder = Path(os.path.abspath(folder))
    if not folder.exists():
        raise MlxError(f"{what}: {folder} does not exist; create it first")
    if not folder.is_dir():
        raise MlxError(f"{what}: {folder} is not a folder")
    return folder


def _written_by_mlx(path: Path) -> bool:
    """Is ``path`` a regular file (not a link) that carries the marker?"""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        head = os.read(fd, _PEEK)
    finally:
        os.close(fd)
    return MARKER.encode() in head.splitlines()[:3]


def install_plugin(folder: Path, text: str, force: bool = False) -> Path:
    """Write ``text`` as ``folder/mlx.10s.sh`` (mode 0755), replacing only a file mlx wrote
    (or anything, with ``force``: a link is replaced, never what it points to)."""
    path = folder / PLUGIN_NAME
    if os.path.lexists(path) and not force and not _written_by_mlx(path):
        raise MlxError(f"{path} exists and was not written by mlx: move it away or use --force")
    temp = folder / f".{PLUGIN_NAME}.{os.getpid()}.tmp"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o755)
        try:
            os.fchmod(fd, 0o755)  # whatever the umask: SwiftBar runs only executables
            os.write(fd, text.encode("utf-8"))
        finally:
            os.close(fd)
        os.replace(temp, path)  # the rename replaces a link itself, not its target
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise MlxError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def uninstall_plugin(folder: Path) -> Path:
    """Remove ``folder/mlx.10s.sh`` if mlx wrote it; anything else stays."""
    path = folder / PLUGIN_NAME
    if not os.path.lexists(path):
        raise MlxError(f"no mlx plugin in {folder} (no {PLUGIN_NAME})")
    if not _written_by_mlx(path):
        raise MlxError(f"{path} was not written by mlx: left in place")
    try:
        path.unlink()
    except OSError as exc:
        raise MlxError(f"cannot remove {path}: {exc.strerror or exc}") from None
    return path
