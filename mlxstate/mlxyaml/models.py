"""Pydantic models of ``mlx.yaml`` version 1 (docs/mlx-yaml.md).

Pydantic is used only at this boundary: values come out typed and parsed (``Source``
values, sizes as ints, durations as ``timedelta``, paths expanded). Cross-field rules that
need positions (undeclared models, store paths…) live in ``rules.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from mlxstate.hosts import GLOB_PATTERN
from mlxstate.mlxyaml.types import Duration, ExpandedPath, ScheduleField
from mlxstate.sources import SOURCE_FORMS, HfSource, Source, parse_source
from mlxstate.text import describe

__all__ = [
    "AppSpec",
    "BenchmarkSpec",
    "CleanupSettings",
    "DashboardSpec",
    "DiskSettings",
    "HuggingFaceSettings",
    "ModelSpec",
    "OllamaSettings",
    "SettingsSpec",
    "Spec",
    "WatchSettings",
    "WhenSpec",
]

# Checked with fullmatch: `re.match` with `$` also accepts a trailing "\n" ("llama\n").
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_NAME_RE = re.compile(NAME_PATTERN)
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# What a Hugging Face access token looks like; `match` on purpose: a pasted token with a
# trailing newline is still recognized (and never echoed).
_TOKEN_RE = re.compile(r"^hf_[A-Za-z0-9]{20,}$")
_REVISION_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}$")


def _check_name(value: object, kind: str) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"YAML reads the {kind} name {value} as a number; quote it: '{value}'")
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise ValueError(
            f"invalid {kind} name {value!r}; use 1-64 lowercase letters, digits, '.', '_' "
            "or '-', starting with a letter or digit"
        )
    return value


_NAME_SCHEMA = WithJsonSchema({"type": "string", "pattern": NAME_PATTERN})
WorkspaceName = Annotated[str, BeforeValidator(lambda v: _check_name(v, "workspace")), _NAME_SCHEMA]
ModelName = Annotated[str, BeforeValidator(lambda v: _check_name(v, "model")), _NAME_SCHEMA]
AppName = Annotated[str, BeforeValidator(lambda v: _check_name(v, "app")), _NAME_SCHEMA]
BenchmarkName = Annotated[str, BeforeValidator(lambda v: _check_name(v, "benchmark")), _NAME_SCHEMA]
Panel = Literal["models", "system", "disk", "benchmarks"]
PANELS: tuple[Panel, ...] = ("models", "system", "disk", "benchmarks")


def _source(value: object, info: ValidationInfo) -> Source:
    if not isinstance(value, str):
        raise ValueError(f"expected a source string: {SOURCE_FORMS}")
    base_dir = (info.context or {}).get("base_dir")
    return parse_source(value.strip(), Path(base_dir) if base_dir else None)


SourceField = Annotated[
    Any,  # a mlxstate.sources.Source; Any keeps pydantic from re-validating the dataclass
    BeforeValidator(_source),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^(hf|ollama|file)://.+$",
            "description": f"where the model comes from: {SOURCE_FORMS}",
            "examples": [
                "ollama://qwen2.5-coder:7b",
                "hf://mlx-community/Llama-3.2-1B-Instruct-4bit",
            ],
        }
    ),
]


def _revision(value: object) -> str:
    if not isinstance(value, str) or not _REVISION_RE.fullmatch(value) or ".." in value:
        raise ValueError(
            f"invalid revision {value!r}; expected a branch, a tag or a 40-hex commit "
            "(quote it if YAML reads it as a number)"
        )
    return value


def _size(value: object) -> object:
    if isinstance(value, bool) or value is None:
        raise ValueError(
            f"expected a size such as 10GB, 512MiB or a number of bytes, got {describe(value)}"
        )
    if isinstance(value, int | float) and value < 0:
        raise ValueError(f"size must not be negative, got {value!r}")
    return value


def _token_env(value: object) -> str:
    if value is None:
        return "HF_TOKEN"
    if not isinstance(value, str) or not _ENV_NAME_RE.fullmatch(value) or _TOKEN_RE.match(value):
        # The value is not echoed: it may be a pasted token, and CI logs are public.
        raise ValueError(
            "expected the NAME of an environment variable (like HF_TOKEN); "
            "never put the token itself in mlx.yaml"
        )
    return value


def _dedup(value: object) -> object:
    return "off" if value is False else value  # YAML 1.2 reads `off` as a string; accept false too


def _patterns(value: object) -> object:
    if isinstance(value, str):
        raise ValueError(f"expected a list of glob patterns, e.g. [{value!r}]")
    return value


Revision = Annotated[str, BeforeValidator(_revision), WithJsonSchema({"type": "string"})]
Size = Annotated[
    ByteSize,
    BeforeValidator(_size),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0}, {"type": "string"}]}),
]
Pattern = Annotated[str, Field(min_length=1)]
Patterns = Annotated[list[Pattern], BeforeValidator(_patterns)]


class _Section(BaseModel):
    """Base of every mapping in mlx.yaml: unknown keys are errors, `key:` alone means `{}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_is_empty(cls, data: Any) -> Any:
        return {} if data is None else data


class OllamaSettings(_Section):
    host: str | None = Field(
        None, description="Ollama API URL; default $OLLAMA_HOST, else http://127.0.0.1:11434"
    )
    models_dir: ExpandedPath | None = Field(
        None, description="default $OLLAMA_MODELS, else ~/.ollama/models"
    )
    registry: str | None = Field(
        None,
        description="the registry `mlx lock` resolves ollama:// tags at; "
        "default https://registry.ollama.ai",
    )

    @field_validator("registry")
    @classmethod
    def _check_registry(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from mlxstate.settings import normalize_registry

        return normalize_registry(value)

    @field_validator("host")
    @classmethod
    def _check_host(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from mlxstate.settings import normalize_ollama_host

        return normalize_ollama_host(value, strict=True)


class HuggingFaceSettings(_Section):
    cache_dir: ExpandedPath | None = Field(
        None, description="default $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub"
    )
    token_env: Annotated[
        str,
        BeforeValidator(_token_env),
        WithJsonSchema(
            {"anyOf": [{"type": "string", "pattern": _ENV_NAME_RE.pattern}, {"type": "null"}]}
        ),
    ] = Field(
        "HF_TOKEN",
        description="NAME of the environment variable that holds a token; never the token",
    )


class CleanupSettings(_Section):
    partials: StrictBool = Field(
        False, description="delete stale partial downloads (older than 1h)"
    )
    orphans: StrictBool = Field(False, description="delete blobs no manifest/snapshot references")
    detached_revisions: StrictBool = Field(
        False, description="delete HF snapshots no ref or model pins"
    )
    dangling_links: StrictBool = Field(
        True, description="remove links mlx made whose target is gone"
    )


class DiskSettings(_Section):
    min_free: Size = Field(
        ByteSize(10_000_000_000), description="refuse downloads that leave less free"
    )


def _min_interval(value: Any) -> Any:
    if value.total_seconds() < 60:
        raise ValueError("interval must be at least 1m")
    return value


class WatchSettings(_Section):
    interval: Annotated[Duration, AfterValidator(_min_interval)] = Field(
        default="10m",
        validate_default=True,
        description="full observe + reconcile even when the file did not change; >= 1m",
    )
    deletes: Literal["hold", "apply"] = Field(
        "hold",
        description="hold: unattended deletes (prune, ensure: absent, cleanups) are only "
        "reported; apply: the watch agent carries them out",
    )


class SettingsSpec(_Section):
    ollama: OllamaSettings = Field(default_factory=OllamaSettings)
    huggingface: HuggingFaceSettings = Field(default_factory=HuggingFaceSettings)
    state_dir: ExpandedPath | None = Field(None, description="registry, lock, journal, logs")
    workspace: WorkspaceName | None = Field(
        None,
        description="who owns what mlx installs from this file; default: from its real path",
    )
    prune: StrictBool = Field(
        False, description="delete MANAGED models that are no longer declared"
    )
    dedup: Annotated[
        Literal["off", "auto", "hardlink", "clone", "symlink"],
        BeforeValidator(_dedup),
        WithJsonSchema(
            {"anyOf": [{"enum": ["off", "auto", "hardlink", "clone", "symlink"]}, {"const": False}]}
        ),
    ] = "off"
    cleanup: CleanupSettings = Field(default_factory=CleanupSettings)
    disk: DiskSettings = Field(default_factory=DiskSettings)
    watch: WatchSettings = Field(default_factory=WatchSettings)


def _host_glob(value: str) -> str:
    from mlxstate.hosts import glob_problem

    if (problem := glob_problem(value)) is not None:
        raise ValueError(problem)
    return value


HostGlob = Annotated[
    str,
    AfterValidator(_host_glob),
    WithJsonSchema({"type": "string", "pattern": GLOB_PATTERN}),
]


class WhenSpec(_Section):
    """On which hosts a model or app applies; every condition given must hold
    (docs/mlx-yaml.md, "Hosts")."""

    hosts: list[HostGlob] | None = Field(
        None,
        min_length=1,
        description="glob patterns of host names ($MLX_HOST, else the short hostname)",
    )
    min_memory: Size | None = Field(None, description="the host's total memory at least this")
    os: list[Literal["macos", "linux"]] | None = Field(None, min_length=1)


class ModelSpec(_Section):
    source: SourceField
    revision: Revision | None = Field(
        None, description="hf only: branch, tag or commit; default main"
    )
    include: Patterns | None = Field(None, description="hf only: allow_patterns")
    exclude: Patterns | None = Field(None, description="hf only: ignore_patterns")
    ensure: Literal["present", "absent"] = "present"
    protect: StrictBool = Field(False, description="any plan that would delete it fails instead")
    when: WhenSpec | None = Field(None, description="only on the hosts this matches")

    @property
    def parsed_source(self) -> Source:
        src: Source = self.source
        return src

    @property
    def effective_revision(self) -> str | None:
        """The revision to fetch: ``main`` by default for hf://, ``None`` otherwise."""
        if isinstance(self.source, HfSource):
            return self.revision or "main"
        return None


class AppSpec(_Section):
    path: ExpandedPath
    layout: Literal["dir", "lmstudio"] = "dir"
    models: list[ModelName] = Field(default_factory=list)
    when: WhenSpec | None = Field(None, description="only on the hosts this matches")


def _prompts(value: object) -> object:
    if value == "standard":
        return value
    if not isinstance(value, list) or not value:
        raise ValueError("expected 'standard' or a non-empty list of prompt strings")
    return tuple(value)  # each item is checked in rules.py, which can point at it


Prompts = Annotated[
    Any,  # "standard" or a tuple of prompt strings
    BeforeValidator(_prompts),
    WithJsonSchema(
        {
            "anyOf": [
                {"const": "standard"},
                {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1},
            ]
        }
    ),
]


class BenchmarkSpec(_Section):
    models: list[ModelName] = Field(min_length=1)
    schedule: ScheduleField | None = Field(None, description="when to run; none: only on demand")
    prompts: Prompts = "standard"
    runs: StrictInt = Field(5, ge=1, le=1000)
    warmup: StrictInt = Field(1, ge=0, le=100)
    max_tokens: StrictInt = Field(128, ge=1, le=1_000_000)


def _min_refresh(value: Any) -> Any:
    if value.total_seconds() < 0.1:
        raise ValueError("refresh must be at least 100ms")
    return value


class DashboardSpec(_Section):
    refresh: Annotated[Duration, AfterValidator(_min_refresh)] = Field(
        default="1s", validate_default=True
    )
    panels: list[Panel] = Field(default_factory=lambda: list(PANELS))
    history: Duration = Field(default="7d", validate_default=True)


# Names not matching the key pattern are errors for editors too.
_CLOSED: dict[str, Any] = {"additionalProperties": False}


def _version(value: object) -> object:
    if isinstance(value, str) and value.strip() == "1":
        raise ValueError("version must be the number 1, not the string '1'; drop the quotes")
    if value is None:
        raise ValueError("expected 1, got nothing (null); write 'version: 1'")
    if isinstance(value, float):
        raise ValueError(f"expected the whole number 1, got {value!r}; write 'version: 1'")
    if isinstance(value, bool) or value != 1:
        raise ValueError(f"unsupported version {describe(value)}; this mlxstate reads version 1")
    return value


class Spec(_Section):
    """A whole ``mlx.yaml``."""

    model_config = ConfigDict(extra="forbid", frozen=True, title="mlx.yaml")

    version: Annotated[Literal[1], BeforeValidator(_version)] = Field(
        description="format version; 1 is the only accepted value"
    )
    settings: SettingsSpec = Field(default_factory=SettingsSpec, description="every key optional")
    models: dict[ModelName, ModelSpec] = Field(
        default_factory=dict, description="NAME -> model", json_schema_extra=_CLOSED
    )
    apps: dict[AppName, AppSpec] = Field(
        default_factory=dict,
        description="NAME -> app folder mlx keeps links in",
        json_schema_extra=_CLOSED,
    )
    benchmarks: dict[BenchmarkName, BenchmarkSpec] = Field(
        default_factory=dict, description="NAME -> benchmark schedule", json_schema_extra=_CLOSED
    )
    dashboard: DashboardSpec = Field(default_factory=DashboardSpec)

    @model_validator(mode="before")
    @classmethod
    def _sections_may_be_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: ({} if v is None and k in _NULLABLE else v) for k, v in data.items()}
        return data


_NULLABLE = frozenset({"models", "apps", "benchmarks"})
