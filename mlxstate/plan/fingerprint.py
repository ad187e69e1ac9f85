"""A digest of the facts a plan depends on, to tell whether a saved plan is still fresh."""

from __future__ import annotations

import hashlib
import json

from mlxstate.facts import Observed
from mlxstate.keys import hf_key, ollama_key
from mlxstate.mlxyaml.models import Spec
from mlxstate.plan.context import key_of, managed_key
from mlxstate.registry import RegistryFacts

__all__ = ["fingerprint"]


def fingerprint(spec: Spec, observed: Observed, facts: RegistryFacts) -> str:
    """sha256 over the observed facts a plan depends on: the declared and managed models'
    store entries, the registry's managed set, and which file:// sources exist. Times and
    free space are left out (free space is re-checked right before each download)."""
    fold = observed.hf.case_insensitive
    keys = {key_of(m.parsed_source, fold) for m in spec.models.values()} | {
        managed_key(m, fold) for m in facts.models
    }
    digest = hashlib.sha256()

    def feed(item: object) -> None:
        digest.update(json.dumps(item, sort_keys=True, default=str).encode())
        digest.update(b"\n")

    for model in observed.ollama.models:
        if ollama_key(model) in keys:
            feed(["ollama", model.name, model.manifest_digest, model.problems])
    for repo in observed.hf.repos:
        if repo.repo_type == "model" and hf_key(repo, fold) in keys:
            feed(["hf", repo.repo_id, repo.refs])
            for rev in repo.revisions:
                feed([rev.commit, [(f.path, f.blob, f.present) for f in rev.files]])
                # The hub listing decides repairs, so it is a fact the plan depends on.
                feed([(f.path, f.blob, f.size) for f in rev.remote or ()])
    feed(sorted((m.source, m.name, m.owners) for m in facts.models))
    feed(facts.workspace)
    feed(sorted(str(p) for p in observed.existing_files))
    return digest.hexdigest()
