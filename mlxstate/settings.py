"""The ONLY place defaults and environment variables are resolved (docs/mlx-yaml.md).

``Environment`` reads the variables mlxstate honours; ``resolve`` combines them with the
``settings:`` of an ``mlx.yaml`` into a frozen ``Settings`` with concrete paths and URLs.
Precedence for every value: mlx.yaml, then the environment, then the built-in default.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field

from mlxstate.paths import expand_path_text

if TYPE_CHECKING:
    from mlxstate.mlxyaml.models import SettingsSpec

__all__ = [
    "DEFAULT_OLLAMA_REGISTRY",
    "Environment",
    "Settings",
    "normalize_ollama_host",
    "normalize_registry",
    "resolve",
    "spec_candidates",
]

OLLAMA_DEFAULT_PORT = 11434
DEFAULT_OLLAMA_REGISTRY = "https://registry.ollama.ai"
DEFAULT_MIN_FREE = 10_000_000_000
_FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


class Environment(BaseModel):
    """Environment variables mlxstate reads (names are case-sensitive; no .env files).

    ``read_environment()`` reads the process environment; ``from_mapping`` reads a given
    one (tests). Every variable is an optional string; its meaning is in the methods below.
    (A plain model, not pydantic-settings: that package's import pulls in asyncio and its
    sources, a fifth of `mlx validate`'s start, to read eleven strings.)
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    HOME: str | None = None
    OLLAMA_HOST: str | None = None
    OLLAMA_MODELS: str | None = None
    HF_HUB_CACHE: str | None = None
    HF_HOME: str | None = None
    HF_ENDPOINT: str | None = None
    XDG_CONFIG_HOME: str | None = None
    XDG_CACHE_HOME: str | None = None
    XDG_STATE_HOME: str | None = None
    MLX_FILE: str | None = None
    MLX_DEBUG: str | None = None
    MLX_HOST: str | None = None  # this machine's name for `when: {hosts}`; default hostname
    # The variable settings.huggingface.token_env names (default HF_TOKEN) is only known once
    # mlx.yaml is read: the snapshot keeps the rest, never shown (repr) or serialized.
    snapshot: Mapping[str, str] = Field(default_factory=dict, repr=False, exclude=True)

    @classmethod
    def from_mapping(cls, environ: Mapping[str, str]) -> Environment:
        # The variables named above are read; a missing one is None.
        named = {name: environ.get(name) for name in cls.model_fields if name != "snapshot"}
        return cls.model_validate({**named, "snapshot": dict(environ)})

    def variable(self, name: str) -> str | None:
        """Any other variable of the environment this was read from (a token's, say)."""
        return self.snapshot.get(name)

    @property
    def debug(self) -> bool:
        return (self.MLX_DEBUG or "").strip().lower() not in _FALSE_WORDS

    def home(self) -> Path:
        return Path(self.HOME) if self.HOME else Path.home()

    def expand(self, value: str) -> Path:
        """A path from an environment variable, ``~`` and ``$VARS`` expanded."""
        try:
            return expand_path_text(value, None)
        except ValueError as exc:
            from mlxstate.errors import MlxError

            names = [n for n in type(self).model_fields if getattr(self, n) == value]
            raise MlxError(f"${names[0] if names else 'a variable'}: {exc}") from None

    def config_home(self) -> Path:
        return (
            self.expand(self.XDG_CONFIG_HOME) if self.XDG_CONFIG_HOME else self.home() / ".config"
        )

    def ollama_models_dir(self) -> Path:
        if self.OLLAMA_MODELS:
            return self.expand(self.OLLAMA_MODELS)
        return self.home() / ".ollama" / "models"

    def hf_cache_dir(self) -> Path:
        # Same order as huggingface_hub.constants: HF_HUB_CACHE, HF_HOME/hub,
        # $XDG_CACHE_HOME/huggingface/hub, ~/.cache/huggingface/hub.
        if self.HF_HUB_CACHE:
            return self.expand(self.HF_HUB_CACHE)
        if self.HF_HOME:
            return self.expand(self.HF_HOME) / "hub"
        cache = self.expand(self.XDG_CACHE_HOME) if self.XDG_CACHE_HOME else self.home() / ".cache"
        return cache / "huggingface" / "hub"

    def lmstudio_home(self) -> Path:
        """LM Studio's home, as lmstudio-js findLMStudioHome does.

        The path in ``~/.lmstudio-home-pointer``, else ``~/.cache/lm-studio`` if it exists,
        else ``~/.lmstudio``.
        """
        home = self.home()
        try:
            pointed = (home / ".lmstudio-home-pointer").read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            pointed = ""
        if pointed:
            return self.expand(pointed)
        legacy = home / ".cache" / "lm-studio"
        return legacy if legacy.is_dir() else home / ".lmstudio"

    def ollama_host(self) -> str:
        return normalize_ollama_host(self.OLLAMA_HOST or "")


def read_environment() -> Environment:
    """The current process environment."""
    return Environment.from_mapping(os.environ)


def spec_candidates(env: Environment) -> list[Path]:
    """Where ``mlx.yaml`` is looked for when no ``-f`` is given, in order (docs/commands.md)."""
    places = [Path("mlx.yaml"), env.config_home() / "mlx" / "mlx.yaml"]
    if env.MLX_FILE:
        places.insert(0, env.expand(env.MLX_FILE))
    return places


def normalize_ollama_host(value: str, *, strict: bool = False) -> str:
    """``[scheme://]host[:port]`` → ``scheme://host:port``, as Ollama's envconfig.Host does.

    With ``strict`` a malformed value raises ``ValueError`` (mlx.yaml); otherwise it falls
    back to the default like Ollama (environment variables).
    """
    text = value.strip()
    default = f"http://127.0.0.1:{OLLAMA_DEFAULT_PORT}"
    if not text:
        if strict:
            raise ValueError("empty Ollama host; expected e.g. http://127.0.0.1:11434")
        return default
    _, sep, _ = text.partition("://")
    url = text if sep else f"http://{text}"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        if strict:
            raise ValueError(f"invalid Ollama host {_masked(value)!r}: {exc}") from None
        return default
    if parts.scheme not in ("http", "https") or not parts.hostname:
        if strict:
            raise ValueError(
                f"invalid Ollama host {_masked(value)!r}; expected http(s)://HOST[:PORT]"
            )
        return default
    if port is None:
        # Ollama: no scheme → 11434; explicit http → 80; https → 443.
        port = OLLAMA_DEFAULT_PORT if not sep else (443 if parts.scheme == "https" else 80)
    host = parts.hostname
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    # A path is kept (Ollama behind a reverse proxy at https://host/ollama).
    return f"{parts.scheme}://{host}:{port}{parts.path.rstrip('/')}"


def normalize_registry(value: str) -> str:
    """``http(s)://host[:port][/path]`` without a trailing slash; ValueError otherwise."""
    text = value.strip().rstrip("/")
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ValueError(f"invalid registry URL {value!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise ValueError(
            f"invalid registry URL {value!r}; expected http(s)://HOST[:PORT], "
            f"e.g. {DEFAULT_OLLAMA_REGISTRY}"
        )
    return text


@dataclass(frozen=True, slots=True)
class Cleanup:
    partials: bool = False
    orphans: bool = False
    detached_revisions: bool = False
    dangling_links: bool = True


@dataclass(frozen=True)
class Settings:
    """Fully resolved settings: every value concrete, every path absolute."""

    ollama_host: str
    ollama_models_dir: Path
    hf_cache_dir: Path
    hf_token_env: str
    prune: bool
    dedup: str
    cleanup: Cleanup
    min_free: int
    state_dir_override: Path | None = None
    env: Environment | None = None
    # Who owns what this run installs (docs/apply.md, "Ownership"); None without an mlx.yaml.
    workspace: str | None = None
    # Where `mlx lock` resolves ollama:// tags of Ollama's own registry (docs/lock.md).
    ollama_registry: str = DEFAULT_OLLAMA_REGISTRY

    @cached_property
    def state_dir(self) -> Path:
        if self.state_dir_override is not None:
            return self.state_dir_override
        if self.env is not None and self.env.XDG_STATE_HOME:
            return self.env.expand(self.env.XDG_STATE_HOME) / "mlxstate"
        import platformdirs  # not on the validate path: only commands that keep state need it

        return Path(platformdirs.user_state_dir("mlxstate", appauthor=False))

    @property
    def hf_endpoint(self) -> str | None:
        """$HF_ENDPOINT (a mirror; the loopback fake hub in tests), else the library default."""
        return self.env.HF_ENDPOINT.rstrip("/") if self.env and self.env.HF_ENDPOINT else None

    @property
    def hf_token(self) -> str | None:
        return (self.env.variable(self.hf_token_env) if self.env else None) or None


def resolve(spec: SettingsSpec | None, env: Environment, spec_path: Path | None = None) -> Settings:
    """Combine ``settings:`` from mlx.yaml (may be ``None``) with the environment.

    The workspace is ``settings.workspace``, else derived from ``spec_path``'s real path."""
    from mlxstate.workspace import derive_workspace

    workspace = spec.workspace if spec and spec.workspace else None
    if workspace is None and spec_path is not None:
        workspace = derive_workspace(spec_path)
    ollama = spec.ollama if spec else None
    hf = spec.huggingface if spec else None
    host = normalize_ollama_host(ollama.host) if ollama and ollama.host else env.ollama_host()
    cleanup = spec.cleanup if spec else None
    return Settings(
        ollama_host=host,
        ollama_models_dir=(
            ollama.models_dir if ollama and ollama.models_dir else env.ollama_models_dir()
        ),
        hf_cache_dir=hf.cache_dir if hf and hf.cache_dir else env.hf_cache_dir(),
        hf_token_env=hf.token_env if hf else "HF_TOKEN",
        prune=spec.prune if spec else False,
        dedup=spec.dedup if spec else "off",
        cleanup=Cleanup(**cleanup.model_dump()) if cleanup else Cleanup(),
        min_free=int(spec.disk.min_free) if spec else DEFAULT_MIN_FREE,
        state_dir_override=spec.state_dir if spec else None,
        env=env,
        workspace=workspace,
        ollama_registry=(
            ollama.registry if ollama and ollama.registry else DEFAULT_OLLAMA_REGISTRY
        ),
    )


def _masked(url: str) -> str:
    """``url`` with any password replaced by ``***``: error messages end up in logs."""
    import re

    return re.sub(r"(://[^/@:\s]*:)[^/\s]*@", r"\1***@", url)
