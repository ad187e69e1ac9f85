"""Watching one mlx.yaml for content changes (docs/watch.md, "How the loop decides").

watchfiles (rust notify: FSEvents, inotify) watches the *folders*, not the file: an editor's
atomic save renames a new file over the old one, and a watch on the file itself ends with
the first such save. A symlinked mlx.yaml (a dotfiles repo) changes at its target, so the
target's folder is watched too, and the link is resolved again after every event.
"""

from __future__ import annotations

import hashlib
import subprocess
import threading
from pathlib import Path

__all__ = ["FileWatcher", "git_commit", "real_path", "spec_sha256"]

DEBOUNCE_MS = 300  # one editor save (write temp, rename, chmod...) is one batch


def spec_sha256(path: Path) -> str | None:
    """The content's sha256 (through a symlink), or None when it cannot be read now."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def real_path(path: Path) -> Path:
    """``path`` resolved through its links; a symlink loop (RuntimeError on Python 3.11,
    OSError later) or an unreadable link leaves it as it is: the next event looks again."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def git_commit(path: Path) -> str | None:
    """HEAD of the git repository the real file lives in; None without git or a repo."""
    try:
        done = subprocess.run(
            ["git", "-C", str(real_path(path).parent), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and len(commit) == 40 else None


def _targets(path: Path) -> tuple[frozenset[Path], frozenset[str]]:
    """(folders to watch, file names that matter) for ``path`` and its resolved target.
    Names, not full paths: macOS reports canonical paths (/private/var for /var)."""
    real = real_path(path)  # never path.resolve(): a symlink loop would end the thread
    folders = {path.absolute().parent, real.parent}
    return frozenset(f for f in folders if f.is_dir()), frozenset({path.name, real.name})


class FileWatcher:
    """A thread feeding :meth:`wait`: True once a batch touched the file's names."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stop = threading.Event()
        self._changed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlx-watch-files", daemon=True)

    def start(self) -> FileWatcher:
        self._thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self._thread.join(timeout=5)

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True if the file (maybe) changed meanwhile."""
        if self._changed.wait(max(timeout, 0.0)):
            self._changed.clear()
            return True
        return False

    def _run(self) -> None:
        import watchfiles

        restarted = False
        while not self.stop.is_set():
            folders, names = _targets(self.path)
            if not folders:
                self.stop.wait(1.0)  # the folder is gone (a checkout in progress?): look again
                continue
            if restarted:
                # A folder deleted and made again: the file may have been written before
                # this new watch began, so let the loop compare the content once.
                self._changed.set()
            restarted = True
            try:
                for changes in watchfiles.watch(
                    *folders,
                    recursive=False,
                    debounce=DEBOUNCE_MS,
                    stop_event=self.stop,
                    raise_interrupt=False,
                ):
                    if any(Path(p).name in names for _, p in changes):
                        self._changed.set()
                    if _targets(self.path) != (folders, names):
                        self._changed.set()  # the link moved: its new target may differ
                        break  # and watch the new target's folder
            except (OSError, RuntimeError):
                self.stop.wait(1.0)  # a folder vanished under the watch: start over
