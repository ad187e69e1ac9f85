"""Running ``mlx`` in-process for tests."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlxstate.cli.main import main
from mlxstate.seams import Seams

REPO_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


def mlx(capsys: pytest.CaptureFixture[str], *args: str, seams: Seams | None = None) -> Result:
    """Run ``mlx ARGS`` in this process; return exit code and captured output. ``seams``:
    the clock, free-space probe or cloner this one command uses instead of the real ones."""
    capsys.readouterr()
    code = main(list(args), seams=seams)
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


# Where the autouse fixture of conftest.py put the stores and the state of the test.
def ollama_dir() -> Path:
    return Path(os.environ["OLLAMA_MODELS"])


def hf_dir() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def state_dir() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "mlxstate"


def manage(
    source: str, name: str, revision: str | None = None, spec: Path = Path("mlx.yaml")
) -> None:
    """Record ``source`` in the registry as installed by mlx for the workspace of ``spec``."""
    from mlxstate.registry import Registry
    from mlxstate.workspace import derive_workspace

    with Registry.open(state_dir()) as registry:
        registry.add_model(source, name, revision, derive_workspace(spec))


def spec_in(folder: str, text: str) -> Path:
    """Write ``text`` as ``<folder>/mlx.yaml`` (one workspace per folder) and return it."""
    path = Path(folder) / "mlx.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def run_ok(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> Result:
    """``mlx ARGS`` in process: no traceback, and exit ``code``."""
    result = mlx(capsys, *args)
    assert "Traceback" not in result.out + result.err
    assert result.code == code, (result.out, result.err)
    return result


def race_before_actions(monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], object]) -> None:
    """Run ``meanwhile`` after apply made its plan and right before the first action: the
    world moving on between plan and effect, which every effect must re-check."""
    from mlxstate.apply.executor import Executor

    run = Executor.execute

    def late(self: Executor, actions: Any) -> Any:
        meanwhile()
        return run(self, actions)

    monkeypatch.setattr(Executor, "execute", late)


def dead_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def run_apply(spec: Path, failpoint: str | None = None) -> subprocess.CompletedProcess[str]:
    """`mlx apply -y -f SPEC` as a separate process (so a fail point can SIGKILL it), with
    this test's isolated environment."""
    env = dict(os.environ)
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    env.pop("MLX_FAILPOINT", None)
    if failpoint:
        env["MLX_FAILPOINT"] = failpoint
    return subprocess.run(
        [sys.executable, "-m", "mlxstate", "apply", "-y", "-f", str(spec)],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- the sentinel tree: files outside every store that no command may touch -----------------------

SentinelEntry = tuple[object, ...]


def tree_facts(root: Path) -> dict[str, SentinelEntry]:
    """Every entry below ``root`` (``root`` itself included), never following links: a
    link's target text; a file's type, mode, inode, link count, mtime and sha256; a
    folder's mode and mtime (so a temp file made and removed inside it shows too)."""
    out: dict[str, SentinelEntry] = {}

    def fact(path: Path) -> SentinelEntry:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            return ("link", os.readlink(path))
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode):
            return ("dir", oct(mode), st.st_mtime_ns)
        if not stat.S_ISREG(st.st_mode):
            return ("other", stat.S_IFMT(st.st_mode), oct(mode))
        with _readable(path, st.st_mode):
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        # Not st_nlink: deleting a store's hardlink to a user's file is allowed.
        return ("file", oct(mode), st.st_ino, st.st_mtime_ns, digest)

    if not os.path.lexists(root):
        return out
    out["."] = fact(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = Path(dirpath, name)
            out[path.relative_to(root).as_posix()] = fact(path)
    return out


@contextlib.contextmanager
def _readable(path: Path, mode: int) -> Iterator[None]:
    """Read a file the test made unreadable (mode restored; the mtime does not change)."""
    if os.access(path, os.R_OK):
        yield
        return
    os.chmod(path, mode | stat.S_IRUSR)
    try:
        yield
    finally:
        os.chmod(path, stat.S_IMODE(mode))


def tree_diff(before: dict[str, SentinelEntry], after: dict[str, SentinelEntry]) -> list[str]:
    """One line per entry that appeared, disappeared or changed."""
    lines = [f"deleted: {p} {before[p]}" for p in sorted(before.keys() - after.keys())]
    lines += [f"added: {p} {after[p]}" for p in sorted(after.keys() - before.keys())]
    lines += [
        f"changed: {p} {before[p]} -> {after[p]}"
        for p in sorted(before.keys() & after.keys())
        if before[p] != after[p]
    ]
    return lines


@dataclass
class Sentinel:
    """A tree of the user's files OUTSIDE every store and app folder, with links into it
    from inside the stores (:meth:`link_from`). :meth:`check` fails, with the diff, if
    anything in it changed since it was built (or since :meth:`rebaseline`).

    Layout under ``root``: ``notes.txt``, ``weights/model.gguf`` (also the target of the
    store links by default), ``weights/nested/deep/config.json``, ``readonly.bin`` (0444),
    ``locked/`` (a 0555 folder holding ``inside.txt``), ``blobs/sha256-<hex>`` (a file named
    like an Ollama blob, with those bytes) and ``loop`` (a link back to ``weights``)."""

    root: Path
    baseline: dict[str, SentinelEntry]
    links: list[Path]

    @property
    def gguf(self) -> Path:
        return self.root / "weights" / "model.gguf"

    @property
    def blob(self) -> Path:
        return next((self.root / "blobs").iterdir())

    @property
    def files(self) -> list[Path]:
        """The regular files, as link targets for hostile stores."""
        return sorted(
            Path(self.root, p) for p, f in self.baseline.items() if f[0] == "file" and p != "."
        )

    def link_from(self, link: Path, target: Path | None = None) -> Path:
        """Put a symlink at ``link`` (inside a store) pointing into the sentinel tree."""
        link.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(link):
            link.unlink()
        os.symlink(target or self.gguf, link)
        self.links.append(link)
        return link

    def rebaseline(self) -> None:
        self.baseline = tree_facts(self.root)

    def diff(self) -> list[str]:
        return tree_diff(self.baseline, tree_facts(self.root))

    def check(self, what: str = "") -> None:
        changes = self.diff()
        assert not changes, f"files outside the stores changed{' ' + what if what else ''}:\n" + (
            "\n".join(changes)
        )


SENTINEL_GGUF = b"GGUF\x03\x00\x00\x00" + b"sentinel weights, the user's own " * 64


def make_sentinel(root: Path) -> Sentinel:
    """Build the sentinel tree at ``root`` (which must lie outside every store and app
    folder) and return its checker."""
    (root / "weights" / "nested" / "deep").mkdir(parents=True)
    (root / "notes.txt").write_text("the user's notes\n")
    (root / "weights" / "model.gguf").write_bytes(SENTINEL_GGUF)
    (root / "weights" / "nested" / "deep" / "config.json").write_text('{"user": true}\n')
    readonly = root / "readonly.bin"
    readonly.write_bytes(b"\x00read-only user bytes\xff")
    readonly.chmod(0o444)
    blob_data = b"a file that looks like an Ollama blob\n"
    blobs = root / "blobs"
    blobs.mkdir()
    (blobs / ("sha256-" + hashlib.sha256(blob_data).hexdigest())).write_bytes(blob_data)
    locked = root / "locked"
    locked.mkdir()
    (locked / "inside.txt").write_text("inside a read-only folder\n")
    locked.chmod(0o555)
    os.symlink("weights", root / "loop")
    return Sentinel(root, tree_facts(root), [])


def restore_writable(root: Path) -> None:
    """Give the owner write access below ``root`` again (so tmp_path can be removed)."""
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            path = Path(dirpath, name)
            if not path.is_symlink():
                path.chmod(path.stat().st_mode | stat.S_IRWXU)
