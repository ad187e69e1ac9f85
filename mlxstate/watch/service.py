"""The per-user service that runs ``mlx watch`` (docs/agent.md): what it runs, where its
file goes, and install / uninstall / status over a launchd or systemd backend.

Every external command (``launchctl``, ``systemctl``) goes through a ``Runner`` passed in,
so tests assert the exact argv sequences; the operating system is passed in too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mlxstate.errors import MlxError

__all__ = [
    "Account",
    "AgentStatus",
    "Backend",
    "Runner",
    "ServiceSpec",
    "backend_for",
    "install",
    "program_argv",
    "run_command",
    "status",
    "uninstall",
]

Runner = Callable[[Sequence[str]], tuple[int, str, str]]

# Variables that change where mlx looks: the agent must see the stores the user's shell
# sees. Tokens are deliberately not copied into a world-readable service file.
_CARRIED_ENV = (
    "OLLAMA_HOST",
    "OLLAMA_MODELS",
    "HF_HOME",
    "HF_HUB_CACHE",
    "HF_ENDPOINT",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
)


def run_command(argv: Sequence[str]) -> tuple[int, str, str]:
    """The real runner: (exit code, stdout, stderr); a missing program is code 127."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
        )
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: command not found"
    except subprocess.TimeoutExpired:
        return 124, "", f"{argv[0]}: timed out after 60 s"
    return done.returncode, done.stdout, done.stderr


def program_argv(argv0: str | None = None) -> tuple[str, ...]:
    """How the service starts mlx: the absolute path of the running ``mlx`` script, else
    ``python -m mlxstate`` with this interpreter. Symlinks are kept, not resolved:
    Homebrew's and uv's ``bin/mlx`` links survive upgrades, the versioned targets do not."""
    first = sys.argv[0] if argv0 is None else argv0
    if Path(first).name == "mlx" and os.path.isfile(first):
        return (os.path.abspath(first),)
    return (os.path.abspath(sys.executable), "-m", "mlxstate")


@dataclass(frozen=True)
class Account:
    """Whose service it is: where their files go and their launchd domain."""

    home: Path
    config_home: Path
    uid: int

    @classmethod
    def of(cls, environ: Mapping[str, str], uid: int) -> Account:
        home = Path(environ.get("HOME") or Path.home())
        config = environ.get("XDG_CONFIG_HOME")
        return cls(home, Path(config) if config else home / ".config", uid)


@dataclass(frozen=True)
class ServiceSpec:
    """What the service runs and where it writes: all paths absolute."""

    program: tuple[str, ...]  # `mlx`, or `python -m mlxstate`
    spec_file: Path
    log_dir: Path
    account: Account
    environment: tuple[tuple[str, str], ...] = ()

    @property
    def argv(self) -> tuple[str, ...]:
        return (*self.program, "watch", "-f", str(self.spec_file))

    @classmethod
    def make(
        cls,
        program: Sequence[str],
        spec_file: Path,
        log_dir: Path,
        environ: Mapping[str, str],
        account: Account,
    ) -> ServiceSpec:
        carried = [(k, environ[k]) for k in _CARRIED_ENV if environ.get(k)]
        spec = cls(
            program=tuple(program),
            # Absolute, not resolved: a symlinked mlx.yaml (dotfiles) is watched as a link.
            spec_file=Path(os.path.abspath(spec_file)),
            log_dir=log_dir,
            account=account,
            environment=tuple(carried),
        )
        spec.check()
        return spec

    def check(self) -> None:
        """A service file cannot carry a line break or a NUL in a path: refuse, clearly."""
        for text in (*self.argv, str(self.log_dir), *(v for _, v in self.environment)):
            if any(ch in text for ch in "\n\r\x00"):
                raise MlxError(
                    f"cannot install the agent: {text!r} contains a line break",
                    hint="move or rename it to a path without control characters",
                )

    def path_variable(self, standard: str) -> str:
        """PATH for the service: the folder of mlx first, then the system's usual folders
        (a service does not inherit the login shell's PATH)."""
        first = str(Path(self.program[0]).parent)
        parts = [first, *(p for p in standard.split(":") if p != first)]
        return ":".join(parts)


class Backend(Protocol):
    """One service manager (launchd, systemd)."""

    name: str

    def file_path(self, account: Account) -> Path: ...
    def render(self, spec: ServiceSpec) -> str: ...
    def load(self, account: Account, run: Runner) -> list[str]: ...
    def unload(self, account: Account, run: Runner) -> None: ...
    def after_removal(self, run: Runner) -> None: ...
    def loaded(self, account: Account, run: Runner) -> bool: ...


def backend_for(system: str) -> Backend:
    """The backend for ``system`` (``sys.platform``): darwin → launchd, linux → systemd."""
    if system == "darwin":
        from mlxstate.watch.service_macos import Launchd

        return Launchd()
    if system.startswith("linux"):
        from mlxstate.watch.service_linux import Systemd

        return Systemd()
    raise MlxError(
        f"mlx agent runs on macOS (launchd) and Linux (systemd), not on {system!r}",
        hint="run `mlx watch` in the foreground under your own service manager",
    )


@dataclass(frozen=True)
class Installed:
    path: Path
    loaded: bool
    notes: tuple[str, ...]


def install(backend: Backend, spec: ServiceSpec, run: Runner, *, load: bool) -> Installed:
    """Write the service file (temp + rename) and, with ``load``, (re)load it."""
    path = backend.file_path(spec.account)
    path.parent.mkdir(parents=True, exist_ok=True)
    spec.log_dir.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(backend.render(spec), encoding="utf-8")
    os.replace(temp, path)  # never a half-written file for the service manager to read
    notes = backend.load(spec.account, run) if load else []
    return Installed(path, load, tuple(notes))


def uninstall(backend: Backend, account: Account, run: Runner) -> Path:
    """Unload the service and remove its file; :class:`MlxError` when none is installed."""
    path = backend.file_path(account)
    if not path.exists():
        raise MlxError(
            f"the agent is not installed (no {path})",
            hint="`mlx agent install` installs it",
        )
    backend.unload(account, run)  # raises, keeping the file, if the service would stay loaded
    path.unlink()
    backend.after_removal(run)
    return path


@dataclass(frozen=True)
class AgentStatus:
    backend: str
    path: Path
    installed: bool
    loaded: bool

    def document(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "file": str(self.path),
            "installed": self.installed,
            "loaded": self.loaded,
        }


def status(backend: Backend, account: Account, run: Runner) -> AgentStatus:
    """Is the service file there, and does the service manager have it loaded?"""
    path = backend.file_path(account)
    return AgentStatus(backend.name, path, path.exists(), backend.loaded(account, run))
