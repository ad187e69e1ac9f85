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

from mlxstate.edit import yaml_key
from mlxstate.naming import derive_name
from mlxstate.sources import HfSource, OllamaSource
from mlxstate.state import HfRepo, HfRevision, Observed

__all__ = ["SCHEMA_URL", "DumpResult", "dump_spec"]

SCHEMA_URL = "https://raw.githubusercontent.com/mlxstate/mlxstate/main/schemas/mlx.schema.json"
_GLOB_CHARS = "*?["


@dataclass(frozen=True)
class DumpResult:
    text: str
    ollama: int
    hf: int
    skipped: tuple[str, ...]


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
    ollama_models = [m for m in observed.ollama.models]
    if ollama_models:
        body.append(f"  # Ollama ({observed.ollama.root})")
    for m in ollama_models:
        src = OllamaSource(m.host, m.namespace, m.model, m.tag)
        name = derive_name(src, taken)
        taken.add(name)
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
        body += [
            f"  {yaml_key(name)}:",
            f"    source: {_q(str(hf_src))}",
            f"    revision: {_q(rev.commit)}  # {refs}",
        ]
        include = _include(rev)
        if include:
            body.append(f"    include: [{', '.join(_q(p) for p in include)}]  # what is downloaded")
    lines += ["models:" + ("" if body else " {}"), *body]
    if skipped:
        lines += ["", "# Not declared (mlx manages model repos only):"]
        lines += [f"#   {item}" for item in skipped]
    return DumpResult("\n".join(lines) + "\n", len(ollama_models), hf_count, tuple(skipped))
