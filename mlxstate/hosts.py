"""Which machine a plan is for, and whether a model or app's ``when:`` lets it on
(docs/mlx-yaml.md, "Hosts").

A host is a name (``$MLX_HOST``, else the machine's short hostname), its memory (total
bytes, from psutil) and its OS (from ``sys.platform``). ``mlx plan --host NAME`` plans as
another machine: what it does not say (``--memory``, ``--os``) is unknown, and a condition
on an unknown value fails closed — the model is skipped, and the plan says why.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Literal, Protocol

from mlxstate.text import human_bytes

__all__ = [
    "GLOB_PATTERN",
    "HOST_NAME_PATTERN",
    "OS_NAMES",
    "Host",
    "OsName",
    "When",
    "exclusion",
    "glob_problem",
    "host_name",
    "never_together",
    "os_of",
]

OsName = Literal["macos", "linux"]
OS_NAMES: tuple[OsName, ...] = ("macos", "linux")
# A host name as `hostname -s` gives it (letters, digits, '-', '_', '.'): matched without case.
HOST_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$"
_HOST_RE = re.compile(HOST_NAME_PATTERN)
# What a glob may hold: host-name characters and the wildcards * ? [ ] !.
GLOB_PATTERN = r"^[A-Za-z0-9._\-*?\[\]!]+$"
_GLOB_CHARS = re.compile(GLOB_PATTERN)
_WILD = re.compile(r"[*?\[]")


class When(Protocol):
    """The ``when:`` of a model or app (``mlxstate.mlxyaml.models.WhenSpec``)."""

    @property
    def hosts(self) -> list[str] | None: ...
    @property
    def min_memory(self) -> int | None: ...
    @property
    def os(self) -> list[OsName] | None: ...


@dataclass(frozen=True, slots=True)
class Host:
    """The machine a plan is made for. ``None``: not known (fails a condition on it)."""

    name: str
    memory: int | None
    os: OsName | None
    given: bool = False  # named by `mlx plan --host`, not this machine

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "memory_bytes": self.memory,
            "os": self.os,
            "given": self.given,
        }


def os_of(platform: str) -> OsName | None:
    if platform == "darwin":
        return "macos"
    return "linux" if platform.startswith("linux") else None


def host_name(given: str | None = None) -> str:
    """``given`` (``$MLX_HOST``, ``--host``) checked, else this machine's short hostname."""
    if given is not None:
        name = given.strip()
        if not _HOST_RE.fullmatch(name):
            raise ValueError(f"invalid host name {given!r}; use letters, digits, '.', '_' or '-'")
        return name
    # The short name: "studio.local" and "studio.example.com" are the machine "studio".
    return socket.gethostname().split(".", 1)[0] or "localhost"


def exclusion(when: When | None, host: Host) -> str | None:
    """Why ``when`` keeps this thing off ``host``; ``None`` when it is for this host."""
    if when is None:
        return None
    if when.hosts is not None and not any(_matches(g, host.name) for g in when.hosts):
        return f"hosts [{', '.join(when.hosts)}] do not match {host.name}"
    if when.min_memory is not None:
        need = human_bytes(when.min_memory)
        if host.memory is None:
            return f"needs min_memory {need}; the memory of {host.name} is unknown (--memory)"
        if host.memory < when.min_memory:
            return f"needs min_memory {need}; {host.name} has {human_bytes(host.memory)}"
    if when.os is not None:
        wanted = ", ".join(when.os)
        if host.os is None:
            return f"os [{wanted}] only; the OS of {host.name} is unknown (--os)"
        if host.os not in when.os:
            return f"os [{wanted}] only; {host.name} runs {host.os}"
    return None


def _matches(glob: str, name: str) -> bool:
    return fnmatchcase(name.lower(), glob.lower())  # host names have no case


def glob_problem(glob: str) -> str | None:
    """Why a ``hosts:`` glob can never match a host name (``None``: it can)."""
    if not glob.strip():
        return "an empty host glob matches no host"
    if "/" in glob:
        return f"host glob {glob!r} contains '/'; host names never do"
    if not _GLOB_CHARS.fullmatch(glob):
        return (
            f"host glob {glob!r} can never match a host name "
            "(letters, digits, '.', '_', '-' and the wildcards * ? [...])"
        )
    return None


def never_together(app: dict[str, Any], model: dict[str, Any]) -> str | None:
    """Why no host can have both (plain ``when:`` mappings); ``None`` when some host may.
    Conservative: only what is certain is reported (two wildcard globs are compared by
    their literal prefixes and suffixes)."""
    a_os, m_os = _plain_list(app.get("os")), _plain_list(model.get("os"))
    if a_os is not None and m_os is not None and not set(a_os) & set(m_os):
        return f"os [{', '.join(m_os)}] and the app's os [{', '.join(a_os)}] never meet"
    a_hosts, m_hosts = _plain_list(app.get("hosts")), _plain_list(model.get("hosts"))
    if a_hosts is None or m_hosts is None:
        return None
    if any(_may_meet(a, m) for a in a_hosts for m in m_hosts):
        return None
    return f"hosts [{', '.join(m_hosts)}] never match the app's hosts [{', '.join(a_hosts)}]"


def _plain_list(value: Any) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        return None
    return [x.lower() for x in value]


def _may_meet(a: str, b: str) -> bool:
    if not _WILD.search(a):
        return fnmatchcase(a, b)
    if not _WILD.search(b):
        return fnmatchcase(b, a)
    pa, pb = _literal_prefix(a), _literal_prefix(b)
    sa, sb = _literal_prefix(a[::-1]), _literal_prefix(b[::-1])
    return (pa.startswith(pb) or pb.startswith(pa)) and (sa.startswith(sb) or sb.startswith(sa))


def _literal_prefix(glob: str) -> str:
    match = _WILD.search(glob.replace("]", "["))  # reversed globs end classes with '['
    return glob[: match.start()] if match else glob
