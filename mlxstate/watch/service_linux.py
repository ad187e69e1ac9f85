"""The Linux systemd user unit (docs/agent.md, "Linux"): a unit file in
$XDG_CONFIG_HOME/systemd/user, enabled and started with ``systemctl --user``."""

from __future__ import annotations

from pathlib import Path

from mlxstate.errors import MlxError
from mlxstate.watch.service import Account, Runner, ServiceSpec

__all__ = ["UNIT", "Systemd", "quote"]

UNIT = "mlxstate-agent.service"
_STANDARD_PATH = "/usr/local/bin:/usr/bin:/bin"
LINGER_HINT = (
    "the agent runs while you are logged in; to keep it running after you log out, "
    "run `loginctl enable-linger $USER`"
)


def quote(word: str, *, executable: bool = False) -> str:
    """One word of a systemd ``ExecStart=`` line (systemd.syntax(7), systemd.service(5)
    "Command lines"): double-quoted with ``\\`` and ``"`` escaped and ``%`` doubled
    (specifiers); in the arguments ``$`` is doubled too (variable expansion), which systemd
    does not apply to the executable's path. Any path with spaces, dollars or percent signs
    reaches the program unchanged."""
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return '"' + (escaped if executable else escaped.replace("$", "$$")) + '"'


def _command_line(argv: tuple[str, ...]) -> str:
    # systemd refuses an executable path with quotes or backslashes ("special characters").
    if any(ch in argv[0] for ch in "\"'\\"):
        raise MlxError(
            f"cannot install the agent: systemd cannot run a program whose path has quotes "
            f"or backslashes: {argv[0]}",
            hint="reinstall mlxstate in a folder whose path has none",
        )
    return " ".join([quote(argv[0], executable=True), *(quote(w) for w in argv[1:])])


def _quote_assignment(name: str, value: str) -> str:
    # Environment= takes quoted NAME=VALUE words; specifiers apply, $VARS do not.
    escaped = f"{name}={value}".replace("\\", "\\\\").replace('"', '\\"')
    return '"' + escaped.replace("%", "%%") + '"'


class Systemd:
    name = "systemd"

    def file_path(self, account: Account) -> Path:
        return account.config_home / "systemd" / "user" / UNIT

    def render(self, spec: ServiceSpec) -> str:
        env = [*spec.environment, ("PATH", spec.path_variable(_STANDARD_PATH))]
        lines = [
            "[Unit]",
            "Description=mlxstate agent: keeps this machine's models reconciled with mlx.yaml",
            "Documentation=https://github.com/mlxstate/mlxstate/blob/main/docs/agent.md",
            # Never give up restarting: the backoff below spaces the attempts instead.
            "StartLimitIntervalSec=0",
            "",
            "[Service]",
            "Type=exec",
            "ExecStart=" + _command_line(spec.argv),
            *(f"Environment={_quote_assignment(k, v)}" for k, v in env),
            "WorkingDirectory=~",
            # Restart after a crash only; exit 0 (SIGTERM, `systemctl stop`) stays down.
            "Restart=on-failure",
            "RestartSec=5",
            # 5 s doubling up to 5 min over 6 restarts (systemd >= 254; older ones ignore it).
            "RestartSteps=6",
            "RestartMaxDelaySec=5min",
            # SIGTERM lets `mlx watch` finish or abandon the current action and free the lock.
            "KillMode=mixed",
            "TimeoutStopSec=60",
            "",
            "[Install]",
            "WantedBy=default.target",
        ]
        return "\n".join(lines) + "\n"

    def load(self, account: Account, run: Runner) -> list[str]:
        running = self.loaded(account, run)
        _check(run, ["systemctl", "--user", "daemon-reload"])
        _check(run, ["systemctl", "--user", "enable", "--now", UNIT])
        if running:  # enable --now leaves a running agent on its old command line
            _check(run, ["systemctl", "--user", "restart", UNIT])
        return [LINGER_HINT]

    def unload(self, account: Account, run: Runner) -> None:
        code, _, err = run(["systemctl", "--user", "disable", "--now", UNIT])
        if code != 0 and "not loaded" not in err and "does not exist" not in err:
            raise MlxError(
                f"systemctl could not stop the agent: {err.strip() or f'exit {code}'}",
                hint="the unit file is kept; run `mlx agent uninstall` again",
            )

    def after_removal(self, run: Runner) -> None:
        run(["systemctl", "--user", "daemon-reload"])  # forget the removed unit now

    def loaded(self, account: Account, run: Runner) -> bool:
        return run(["systemctl", "--user", "is-active", "--quiet", UNIT])[0] == 0


def _check(run: Runner, argv: list[str]) -> None:
    code, _, err = run(argv)
    if code != 0:
        raise MlxError(
            f"`{' '.join(argv)}` failed: {err.strip() or f'exit {code}'}",
            hint="the unit file is written; is a systemd user session running "
            "(`systemctl --user status`)?",
        )
