"""The macOS LaunchAgent (docs/agent.md, "macOS"): a plist in ~/Library/LaunchAgents,
loaded into the user's GUI domain with ``launchctl bootstrap`` (the user domain when there
is no GUI session, as Homebrew's ``brew services`` does)."""

from __future__ import annotations

import plistlib
from pathlib import Path
from typing import Any

from mlxstate.errors import MlxError
from mlxstate.watch.service import Account, Runner, ServiceSpec

__all__ = ["LABEL", "Launchd"]

LABEL = "io.github.mlxstate.agent"
THROTTLE_SECONDS = 30  # launchd's minimum between two starts after a crash
_STANDARD_PATH = "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
# What `launchctl bootout` says of a service that is not loaded: ESRCH (3) and
# "Could not find specified service" (113). Either way there is nothing to unload.
_NOT_LOADED_CODES = (3, 113)


def _domains(uid: int) -> tuple[str, str]:
    return f"gui/{uid}", f"user/{uid}"


class Launchd:
    name = "launchd"

    def file_path(self, account: Account) -> Path:
        return account.home / "Library" / "LaunchAgents" / f"{LABEL}.plist"

    def document(self, spec: ServiceSpec) -> dict[str, Any]:
        env = dict(spec.environment)
        env["PATH"] = spec.path_variable(_STANDARD_PATH)
        return {
            "Label": LABEL,
            "ProgramArguments": list(spec.argv),
            "RunAtLoad": True,
            # Restart after a crash only: `mlx watch` exiting 0 (SIGTERM, --once) stays down.
            "KeepAlive": {"SuccessfulExit": False},
            "ThrottleInterval": THROTTLE_SECONDS,
            # Background: the agent never competes with the user for CPU and disk; the
            # price is that what it runs is throttled too (docs/agent.md, "Priority").
            "ProcessType": "Background",
            "WorkingDirectory": str(spec.account.home),
            "StandardOutPath": str(spec.log_dir / "agent.out.log"),
            "StandardErrorPath": str(spec.log_dir / "agent.err.log"),
            "EnvironmentVariables": env,
        }

    def render(self, spec: ServiceSpec) -> str:
        return plistlib.dumps(self.document(spec), fmt=plistlib.FMT_XML).decode("utf-8")

    def load(self, account: Account, run: Runner) -> list[str]:
        plist = str(self.file_path(account))
        for domain in _domains(account.uid):
            # An older copy may be loaded (in either domain): bootstrap of a loaded label
            # fails (EIO), and two copies would run two loops. "Not loaded" is fine.
            run(["launchctl", "bootout", f"{domain}/{LABEL}"])
        errors: list[str] = []
        for domain in _domains(account.uid):
            # gui/<uid> needs a login session; over ssh only user/<uid> exists (brew services).
            code, _, err = run(["launchctl", "bootstrap", domain, plist])
            if code == 0:
                return [f"loaded into launchd domain {domain}"]
            errors.append(f"{domain}: {err.strip() or f'exit {code}'}")
        raise MlxError(
            "launchctl could not load the agent: " + "; ".join(errors),
            hint=f"the file is written; try `launchctl bootstrap gui/{account.uid} {plist}`",
        )

    def unload(self, account: Account, run: Runner) -> None:
        for domain in _domains(account.uid):
            code, _, err = run(["launchctl", "bootout", f"{domain}/{LABEL}"])
            if code != 0 and code not in _NOT_LOADED_CODES:
                raise MlxError(
                    f"launchctl could not unload the agent from {domain}: "
                    f"{err.strip() or f'exit {code}'}",
                    hint="the file is kept; run `mlx agent uninstall` again",
                )

    def after_removal(self, run: Runner) -> None:
        pass  # launchd reads the plist only at bootstrap

    def loaded(self, account: Account, run: Runner) -> bool:
        return any(
            run(["launchctl", "print", f"{domain}/{LABEL}"])[0] == 0
            for domain in _domains(account.uid)
        )
