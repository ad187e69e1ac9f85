"""Model sources: the three ``source:`` schemes of ``mlx.yaml``, parsed once.

``parse_source`` turns ``hf://…``, ``ollama://…`` and ``file://…`` strings into frozen
values so no later code re-parses a string. Errors are ``ValueError`` with a message a
user can act on (the spec loader adds file:line:col).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlxstate.paths import expand_path_text

__all__ = [
    "FileSource",
    "HfSource",
    "OllamaSource",
    "Source",
    "parse_source",
    "suggest_source",
]

OLLAMA_DEFAULT_HOST = "registry.ollama.ai"
OLLAMA_DEFAULT_NAMESPACE = "library"
OLLAMA_DEFAULT_TAG = "latest"

# All patterns are used with fullmatch: `$` would also match before a trailing "\n", letting
# "org/repo\n" through to paths and registry rows.
# Repo ids (docs/mlx-yaml.md, "source"); `..` and `--` are rejected separately (they break
# the cache folder name).
_HF_REPO_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+")
# Ollama's name parts (types/model/name.go): host may carry a port; the tag may start with `_`.
_OLLAMA_HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}")
_OLLAMA_PART_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
_OLLAMA_TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}")
# A model page on the Hub, as copied from a browser: https://huggingface.co/ORG/REPO[/...].
_HUB_URL_RE = re.compile(r"(?:https?://)?(?:www\.)?(?:huggingface\.co|hf\.co)/(.*)", re.IGNORECASE)

SOURCE_FORMS = "hf://ORG/REPO, ollama://[HOST/][NAMESPACE/]MODEL[:TAG] or file://PATH"


@dataclass(frozen=True, slots=True)
class HfSource:
    """A Hugging Face model repo (``models--ORG--REPO`` in the cache)."""

    repo_id: str
    scheme = "hf"

    @property
    def cache_folder(self) -> str:
        return "models--" + self.repo_id.replace("/", "--")

    def __str__(self) -> str:
        return f"hf://{self.repo_id}"


@dataclass(frozen=True, slots=True)
class OllamaSource:
    """An Ollama model name, with Ollama's defaults filled in."""

    host: str
    namespace: str
    model: str
    tag: str
    scheme = "ollama"

    @property
    def name(self) -> str:
        """The short name Ollama shows (``qwen2.5:7b``, ``ns/m:tag``, ``hf.co/o/r:q``)."""
        # Ollama compares names case-insensitively (types/model/name.go): so do the defaults.
        if self.host.lower() == OLLAMA_DEFAULT_HOST:
            if self.namespace.lower() == OLLAMA_DEFAULT_NAMESPACE:
                return f"{self.model}:{self.tag}"
            return f"{self.namespace}/{self.model}:{self.tag}"
        return f"{self.host}/{self.namespace}/{self.model}:{self.tag}"

    @property
    def manifest_relpath(self) -> Path:
        """``manifests/<host>/<namespace>/<model>/<tag>`` relative to the models dir."""
        return Path("manifests", self.host, self.namespace, self.model, self.tag)

    @property
    def is_huggingface(self) -> bool:
        return self.host in ("hf.co", "huggingface.co")

    def __str__(self) -> str:
        return f"ollama://{self.name}"


@dataclass(frozen=True, slots=True)
class FileSource:
    """A file or folder already on disk; mlx never downloads or deletes it."""

    path: Path
    scheme = "file"

    def __str__(self) -> str:
        return f"file://{self.path}"


Source = HfSource | OllamaSource | FileSource


def parse_source(text: str, base_dir: Path | None = None) -> Source:
    """Parse a ``source:`` string; relative ``file://`` paths resolve against ``base_dir``."""
    scheme, sep, rest = text.partition("://")
    if scheme == "hf":
        return _parse_hf(rest)
    if scheme == "ollama":
        return _parse_ollama(rest)
    if scheme == "file":
        return _parse_file(rest, base_dir)
    meant = suggest_source(text)
    hint = f"did you mean {meant!r}? " if meant else ""
    if not sep:
        raise ValueError(f"{text!r} has no scheme; {hint}expected {SOURCE_FORMS}")
    raise ValueError(f"unknown scheme {scheme + '://'!r}; {hint}expected {SOURCE_FORMS}")


def suggest_source(text: str) -> str | None:
    """The source a user probably meant: a Hub URL or a bare ``ORG/REPO`` → ``hf://``, a
    bare Ollama name (``qwen2.5:7b``) → ``ollama://``, a path → ``file://``."""
    url = _HUB_URL_RE.fullmatch(text)
    if url and not (text.lower().startswith("hf.co/") and ":" in text):
        parts = [p for p in url.group(1).split("/") if p]
        if len(parts) < 2 or parts[0] in ("datasets", "spaces"):
            return None  # mlx manages model repos only
        return _valid(f"hf://{parts[0]}/{parts[1]}")
    if "://" in text:
        return None
    if text.startswith(("/", "~", "./", "../")):
        return f"file://{text}"
    if text.count("/") == 1 and ":" not in text:
        return _valid(f"hf://{text}")
    return _valid(f"ollama://{text}")


def _valid(candidate: str) -> str | None:
    try:
        parse_source(candidate)
    except ValueError:
        return None
    return candidate


def _parse_hf(rest: str) -> HfSource:
    if not _HF_REPO_RE.fullmatch(rest):
        raise ValueError(
            f"invalid Hugging Face repo id {rest!r}; expected hf://ORG/REPO "
            "(letters, digits, '-', '_', '.')"
        )
    if ".." in rest or "--" in rest:
        raise ValueError(f"invalid Hugging Face repo id {rest!r}: '..' and '--' are not allowed")
    if rest.endswith(".git") or rest.endswith("."):
        raise ValueError(f"invalid Hugging Face repo id {rest!r}: cannot end with '.git' or '.'")
    return HfSource(repo_id=rest)


def _parse_ollama(rest: str) -> OllamaSource:
    # The tag is after the last ':' of the last path part; a ':' before it is a host port.
    head, slash, last = rest.rpartition("/")
    model, colon, tag = last.partition(":")
    if colon and not tag:
        raise ValueError(f"empty tag in 'ollama://{rest}'; write MODEL:TAG or leave out ':'")
    parts = [*head.split("/"), model] if slash else [model]
    if len(parts) > 3:
        raise ValueError(
            f"too many '/' in 'ollama://{rest}'; expected ollama://[HOST/][NAMESPACE/]MODEL[:TAG]"
        )
    host, namespace = OLLAMA_DEFAULT_HOST, OLLAMA_DEFAULT_NAMESPACE
    if len(parts) == 3:
        host, namespace = parts[0], parts[1]
    elif len(parts) == 2:
        namespace = parts[0]
    source = OllamaSource(host=host, namespace=namespace, model=parts[-1], tag=tag or "latest")
    _check_ollama_parts(source, rest)
    return source


def _check_ollama_parts(src: OllamaSource, rest: str) -> None:
    checks = (
        ("host", src.host, _OLLAMA_HOST_RE),
        ("namespace", src.namespace, _OLLAMA_PART_RE),
        ("model", src.model, _OLLAMA_PART_RE),
        ("tag", src.tag, _OLLAMA_TAG_RE),
    )
    for label, value, pattern in checks:
        if not pattern.fullmatch(value) or ".." in value:
            raise ValueError(
                f"invalid {label} {value!r} in 'ollama://{rest}'; use letters, digits, "
                "'_', '-' and '.' (at most 80 characters), as Ollama does"
            )


def _parse_file(rest: str, base_dir: Path | None) -> FileSource:
    if not rest:
        raise ValueError("empty path in 'file://'; expected file://PATH")
    return FileSource(path=expand_path_text(rest, base_dir))
