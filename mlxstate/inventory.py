"""``mlx init``: an mlx.yaml that declares exactly what is installed now.

Like ``brew bundle dump``: Ollama models as ``ollama://``, Hugging Face model repos as
``hf://`` pinned to the commit their ``main`` ref points to, so that ``mlx plan`` on the
result says "No changes". The text is generated (with comments), then validated before
anyone writes it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlxstate.edit import yaml_key
from mlxstate.facts import AppState, HfRepo, HfRevision, Observed
from mlxstate.naming import derive_name
from mlxstate.sources import HfSource, OllamaSource

__all__ = ["REPOSITORY", "SCHEMA_URL", "DumpResult", "dump_spec"]

# The project's repository, as pyproject.toml's [project.urls] names it (a test keeps the two
# equal); editors fetch the schema from its main branch.
REPOSITORY = "https://github.com/mlxstate/mlxstate"
SCHEMA_URL = (
    REPOSITORY.replace("https://github.com/", "https://raw.githubusercontent.com/", 1)
    + "/main/schemas/mlx.schema.json"
)
_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class DumpResult:
    text: str
    ollama: int
    hf: int
    skipped: tuple[str, ...]
    apps: tuple[str, ...] = ()


def _q(text: str) -> str:
    """A YAML scalar that reads back as ``text`` (JSON strings are valid YAML)."""
    return json.dumps(text)


def pinned_revision(repo: HfRepo) -> HfRevision | None:
    """The revision ``main`` points to, else another ref's, else the newest snapshot."""
    for ref in ("main", *(name for name, _ in repo.refs)):
        commit = repo.ref(ref)
        if commit and (rev := repo.revision(commit)):
            return rev
    return max(repo.revisions, key=lambda r: r.last_modified, default=None)


def _include(rev: HfRevision) -> list[str] | None:
    """Exact file names when the snapshot holds only part of the commit (trees/ known)."""
    if rev.remote is None:
        return None
    # Every file of the snapshot, present or not: a file whose blob went missing is still
    # wanted (plan will repair it), not silently dropped from the declaration.
    present = sorted(f.path for f in rev.files)
    if set(present) >= {r.path for r in rev.remote}:
        return None
    # A literal path is a valid fnmatch pattern once its glob characters are bracketed.
    return ["".join(f"[{c}]" if c in _GLOB_CHARS else c for c in p) for p in present]


def dump_spec(observed: Observed, header_note: str = "") -> DumpResult:
    """The text of an mlx.yaml declaring what ``observed`` holds (validated by the caller)."""
    taken: set[str] = set()
    lines = [
        f"# yaml-language-server: $schema={SCHEMA_URL}",
        "#",
        f"# Written by `mlx init` on {time.strftime('%Y-%m-%d')} from what is installed now.",
        '# `mlx plan` on it says "No changes". Edit it to declare what this machine should',
        "# have, then `mlx plan` / `mlx apply`. Reference: docs/mlx-yaml.md",
    ]
    if header_note:
        lines += [f"# {line}" for line in header_note.splitlines()]
    lines += ["version: 1", ""]
    body: list[str] = []
    declared: dict[str, dict[str, Any]] = {}
    ollama_models = [m for m in observed.ollama.models]
    if ollama_models:
        body.append(f"  # Ollama ({observed.ollama.root})")
    for m in ollama_models:
        src = OllamaSource(m.host, m.namespace, m.model, m.tag)
        name = derive_name(src, taken)
        taken.add(name)
        declared[name] = {"source": str(src)}
        body += [f"  {yaml_key(name)}:", f"    source: {_q(str(src))}"]
    skipped: list[str] = []
    repos = [r for r in observed.hf.repos if r.repo_type == "model"]
    skipped += [f"{r.repo_type}/{r.repo_id}" for r in observed.hf.repos if r.repo_type != "model"]
    hf_count = 0
    for repo in repos:
        rev = pinned_revision(repo)
        if rev is None:
            skipped.append(f"model/{repo.repo_id} (no snapshot)")
            continue
        if hf_count == 0:
            body.append(f"  # Hugging Face ({observed.hf.root})")
        hf_count += 1
        hf_src = HfSource(repo.repo_id)
        name = derive_name(hf_src, taken)
        taken.add(name)
        refs = ", ".join(rev.refs) or "no ref"
        declared[name] = {"source": str(hf_src), "revision": rev.commit}
        body += [
            f"  {yaml_key(name)}:",
            f"    source: {_q(str(hf_src))}",
            f"    revision: {_q(rev.commit)}  # {refs}",
        ]
        include = _include(rev)
        if include:
            declared[name]["include"] = include
            body.append(f"    include: [{', '.join(_q(p) for p in include)}]  # what is downloaded")
    lines += ["models:" + ("" if body else " {}"), *body]
    app_lines, apps = _apps(observed, declared)
    lines += app_lines
    if skipped:
        lines += ["", "# Not declared (mlx manages model repos only):"]
        lines += [f"#   {item}" for item in skipped]
    text = "\n".join(lines) + "\n"
    return DumpResult(text, len(ollama_models), hf_count, tuple(skipped), apps)


def _apps(
    observed: Observed, declared: dict[str, dict[str, Any]]
) -> tuple[list[str], tuple[str, ...]]:
    """``apps:`` lines for LM Studio's folder when it was found (as ``mlx status`` shows it),
    listing the declared models whose every link there is already in place."""
    stores = (observed.ollama.root, observed.hf.root)
    found = [
        a
        for a in observed.apps
        if not a.declared
        and a.exists
        and a.layout == "lmstudio"
        # An app folder in or around a store is invalid (and cannot be LM Studio's own).
        and not any(a.path.is_relative_to(s) or s.is_relative_to(a.path) for s in stores)
    ]
    if not found:
        return [], ()
    lines = ["", "apps:"]
    for app in found:
        linked = _linked_models(app, observed, declared)
        lines += [
            f"  {yaml_key(app.name)}:  # found by `mlx status`",
            f"    path: {_q(_home_relative(app.path))}",
            "    layout: lmstudio",
            f"    models: [{', '.join(yaml_key(n) for n in linked)}]",
        ]
    return lines, tuple(a.name for a in found)


def _linked_models(
    app: AppState, observed: Observed, declared: dict[str, dict[str, Any]]
) -> list[str]:
    """Declared models with at least one link in ``app`` and every wanted link already
    there, pointing where mlx would point it: listing them changes nothing on disk."""
    from mlxstate.mlxyaml.models import Spec
    from mlxstate.plan.link_targets import wanted_links

    if not declared:
        return []
    entry = {"path": str(app.path), "layout": app.layout, "models": [*declared]}
    spec = Spec.model_validate({"version": 1, "models": declared, "apps": {app.name: entry}})
    wanted, _ = wanted_links(spec, observed, set())
    entries = {e.path: e for e in app.entries}
    ok: dict[str, bool] = {}
    for w in wanted:
        here = entries.get(w.path)
        in_place = here is not None and here.kind == "link" and here.target == w.target
        # The folder already holds that file at another path (the user's own copy or link):
        # the plan adds no second entry, so listing the model changes nothing either.
        ok[w.model] = ok.get(w.model, True) and (in_place or w.covered_by is not None)
    return [name for name in declared if ok.get(name)]


def _home_relative(path: Path) -> str:
    """``~/.lmstudio/models`` rather than this machine's home folder: the file is meant to
    be shared between machines (a dotfiles repo)."""
    home = Path.home()
    if path != home and path.is_relative_to(home):
        return f"~/{path.relative_to(home)}"
    return str(path)
