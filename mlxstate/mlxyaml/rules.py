"""Semantic rules that a per-field schema cannot express (docs/mlx-yaml.md, "Rules checked
by mlx validate").

They run on the plain (not yet validated) document so that they report problems even
when other parts of the file are invalid: every error in a file is shown at once. Each
rule skips what it cannot read; the schema reports those parts.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mlxstate.hosts import never_together
from mlxstate.paths import expand_path_text
from mlxstate.settings import Environment
from mlxstate.sources import FileSource, HfSource, Source, parse_source

__all__ = ["Problem", "check"]

_HF_ONLY = ("revision", "include", "exclude")


@dataclass(frozen=True, slots=True)
class Problem:
    path: tuple[Any, ...]
    message: str
    where: Literal["key", "value"] = "value"


def check(data: dict[str, Any], env: Environment, base_dir: Path) -> list[Problem]:
    """All semantic problems of a plain mlx.yaml mapping."""
    models = _mapping(data.get("models"))
    problems = list(_model_rules(models, base_dir))
    present = {n for n, m in models.items() if isinstance(m, dict) and m.get("ensure") != "absent"}
    hints = _Hints(models)
    for section in ("apps", "benchmarks"):
        for name, entry in _mapping(data.get(section)).items():
            if isinstance(entry, dict):
                problems += _references(section, name, entry.get("models"), models, present, hints)
    for name, app in _mapping(data.get("apps")).items():
        problems += _app_hosts(name, _mapping(app), models)
    problems += _app_paths(data, env, base_dir)
    problems += _unique_items(
        ("dashboard", "panels"), _mapping(data.get("dashboard")).get("panels")
    )
    for name, bench in _mapping(data.get("benchmarks")).items():
        problems += _prompt_items(name, _mapping(bench).get("prompts"))
        problems += _benchmark_sources(name, _mapping(bench).get("models"), models, base_dir)
    return problems


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _source(entry: dict[str, Any], base_dir: Path) -> Source | None:
    raw = entry.get("source")
    try:
        return parse_source(raw.strip(), base_dir) if isinstance(raw, str) else None
    except ValueError:
        return None


def _model_rules(models: dict[Any, Any], base_dir: Path) -> Iterator[Problem]:
    seen: dict[tuple[str, str | None], Any] = {}
    seen_absent: dict[tuple[str, str | None], bool] = {}
    for name, entry in models.items():
        if not isinstance(entry, dict):
            continue
        source = _source(entry, base_dir)
        if source is not None and not isinstance(source, HfSource):
            for key in _HF_ONLY:
                if key in entry:
                    yield Problem(
                        ("models", name, key),
                        f"'{key}' only applies to hf:// sources; this source is {source.scheme}://",
                        "key",
                    )
        absent = entry.get("ensure") == "absent"
        if absent and entry.get("protect") is True:
            yield Problem(
                ("models", name, "protect"),
                "'protect: true' contradicts 'ensure: absent'; remove one of them",
                "key",
            )
        if absent and isinstance(source, FileSource):
            yield Problem(
                ("models", name, "ensure"),
                "file:// sources are never deleted by mlx; 'ensure: absent' is not allowed here",
            )
        if source is not None:
            # Two entries for one source would fight (present vs absent) or double-manage it.
            # `ensure: absent` deletes the whole repo, every revision: it conflicts with any
            # other declaration of that repo, whatever its revision.
            revision = (
                entry.get("revision") if isinstance(source, HfSource) and not absent else None
            )
            ident = (
                str(source).lower(),
                str(revision or "main") if isinstance(source, HfSource) else None,
            )
            if isinstance(source, HfSource):
                repo_ident = (str(source).lower(), "*")
                if repo_ident in seen and (absent or seen_absent.get(repo_ident)):
                    ident = repo_ident
                else:
                    seen.setdefault(repo_ident, name)
                    seen_absent[repo_ident] = seen_absent.get(repo_ident, False) or absent
            if ident in seen:
                yield Problem(
                    ("models", name, "source"),
                    f"{source} is already declared as models.{seen[ident]}; "
                    "declare each source once",
                )
            else:
                seen[ident] = name


class _Hints:
    """ "Did you mean" for the first few unknown names only: each lookup compares against
    every declared model, so a hint per error would make a large file quadratic."""

    def __init__(self, models: dict[Any, Any], budget: int = 20) -> None:
        self.models = models
        self.left = budget

    def suffix(self, name: str) -> str:
        if self.left <= 0:
            return ""
        self.left -= 1
        hint = difflib.get_close_matches(name, [str(m) for m in self.models], n=1)
        return f"; did you mean {hint[0]!r}?" if hint else ""


def _references(
    section: str,
    owner: Any,
    names: Any,
    models: dict[Any, Any],
    present: set[Any],
    hints: _Hints,
) -> Iterator[Problem]:
    if not isinstance(names, list):
        return
    kind = "an app" if section == "apps" else "a benchmark"
    seen: set[Any] = set()
    for i, name in enumerate(names):
        path = (section, owner, "models", i)
        if not isinstance(name, str):
            continue
        if name in seen:
            yield Problem(path, f"model {name!r} is listed twice")
        elif name not in models:
            also = hints.suffix(name)
            yield Problem(path, f"model {name!r} is not declared under 'models:'{also}")
        elif name not in present:
            yield Problem(path, f"model {name!r} has 'ensure: absent'; {kind} cannot use it")
        seen.add(name)


def _app_hosts(app: Any, entry: dict[Any, Any], models: dict[Any, Any]) -> Iterator[Problem]:
    """A model the app links that no host the app is on may have (``when:`` of both)."""
    names = entry.get("models")
    app_when = _mapping(entry.get("when"))
    for i, name in enumerate(names if isinstance(names, list) else []):
        model = models.get(name) if isinstance(name, str) else None
        if not isinstance(model, dict) or not isinstance(model.get("when"), dict):
            continue
        reason = never_together(app_when, model["when"])
        if reason is not None:
            yield Problem(
                ("apps", app, "models", i),
                f"model {name!r} is excluded on every host this app is on: {reason}",
            )


def _app_paths(data: dict[str, Any], env: Environment, base_dir: Path) -> Iterator[Problem]:
    stores = _store_dirs(_mapping(data.get("settings")), env, base_dir)
    claimed: dict[Path, Any] = {}
    # Every proper ancestor of a claimed path -> (owner, path): finding a nested pair is a
    # few dict lookups per app, not a comparison with every other app (quadratic).
    ancestors: dict[Path, tuple[Any, Path]] = {}
    for name, app in _mapping(data.get("apps")).items():
        if not isinstance(app, dict) or not isinstance(app.get("path"), str):
            continue
        try:
            path = expand_path_text(app["path"], base_dir)
        except ValueError:
            continue
        where = ("apps", name, "path")
        for label, store in stores:
            if path == store or path.is_relative_to(store):
                yield Problem(
                    where, f"{path} is inside the {label} ({store}); mlx must not put links there"
                )
        if path in claimed:
            yield Problem(where, f"{path} is already the path of apps.{claimed[path]}")
        nested = _nested(path, claimed, ancestors)
        if nested is not None:
            # Links of one app would show up as foreign files in the other.
            owner, other = nested
            yield Problem(
                where, f"{path} and apps.{owner} ({other}) are nested; use separate folders"
            )
        claimed.setdefault(path, name)
        for parent in path.parents:
            ancestors.setdefault(parent, (claimed[path], path))


def _nested(
    path: Path, claimed: dict[Path, Any], ancestors: dict[Path, tuple[Any, Path]]
) -> tuple[Any, Path] | None:
    """An app (owner, path) whose folder is inside ``path`` or contains it."""
    for parent in path.parents:
        if parent in claimed:
            return claimed[parent], parent
    return ancestors.get(path)


def _store_dirs(
    settings: dict[Any, Any], env: Environment, base_dir: Path
) -> list[tuple[str, Path]]:
    ollama = _configured(_mapping(settings.get("ollama")).get("models_dir"), base_dir)
    hf = _configured(_mapping(settings.get("huggingface")).get("cache_dir"), base_dir)
    return [
        ("Ollama models dir", ollama or env.ollama_models_dir()),
        ("Hugging Face cache", hf or env.hf_cache_dir()),
    ]


def _configured(value: Any, base_dir: Path) -> Path | None:
    try:
        return expand_path_text(value, base_dir) if isinstance(value, str) else None
    except ValueError:
        return None


def _benchmark_sources(
    bench: Any, names: Any, models: dict[Any, Any], base_dir: Path
) -> Iterator[Problem]:
    """Benchmarks run through an engine: Ollama for ollama://, mlx-lm for hf://. A file://
    model has neither (docs/benchmarks.md)."""
    for i, name in enumerate(names if isinstance(names, list) else []):
        entry = models.get(name) if isinstance(name, str) else None
        source = _source(entry, base_dir) if isinstance(entry, dict) else None
        if isinstance(source, FileSource):
            yield Problem(
                ("benchmarks", bench, "models", i),
                f"model {name!r} is {source.scheme}://; a benchmark model must be "
                "ollama:// or hf://",
            )


def _prompt_items(bench: Any, prompts: Any) -> Iterator[Problem]:
    if not isinstance(prompts, list):
        return
    for i, item in enumerate(prompts):
        if not isinstance(item, str) or not item.strip():
            yield Problem(
                ("benchmarks", bench, "prompts", i), "a prompt must be a non-empty string"
            )


def _unique_items(path: tuple[str, ...], items: Any) -> Iterator[Problem]:
    if not isinstance(items, list):
        return
    seen: set[Any] = set()
    for i, item in enumerate(items):
        if isinstance(item, str) and item in seen:
            yield Problem((*path, i), f"{item!r} is listed twice")
        if isinstance(item, str):
            seen.add(item)
