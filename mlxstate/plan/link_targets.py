"""Where links into app folders (``apps:``) go, planned as a pure function like models.

Where links go (docs/mlx-yaml.md, ``apps``):

- ``layout: dir`` — ``<path>/<model-name>``: an HF model's snapshot folder, a ``file://``
  path, or for Ollama ``<path>/<model-name>.gguf`` → the model blob;
- ``layout: lmstudio`` — exactly two folders deep, ``<publisher>/<model>/<file>.gguf`` like
  the models LM Studio downloads itself: HF GGUF repos as ``<org>/<repo>/<file>.gguf`` for
  each cached ``.gguf`` the include selects; ``ollama://hf.co/ORG/REPO:Q`` as
  ``ORG/REPO/<REPO without -GGUF>-Q.gguf``; other Ollama models as
  ``ollama/<name[-tag]>-GGUF/<name[-tag]>.gguf`` (a namespace other than ``library`` is the
  publisher), plus ``mmproj-<file>`` → the projector blob in the same folder.

One entry per model: when the app folder already holds the same GGUF elsewhere (a link to
the same file, a file of the same name and size, or one the dedup search or the registry
knows has the same sha256), no second link is made (``covered_by``; ``links.py`` removes a
link mlx made earlier for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlxstate.facts import AppLink, HfRepo, Observed, OllamaModel, RemoteFile
from mlxstate.keys import hf_key, ollama_key
from mlxstate.mlxyaml.models import AppSpec, ModelSpec, Spec
from mlxstate.plan.files import wanted_files
from mlxstate.registry import RegistryFacts
from mlxstate.sources import FileSource, HfSource, OllamaSource

__all__ = ["WantedLink", "lmstudio_place", "wanted_links"]


@dataclass(frozen=True)
class WantedLink:
    app: str
    model: str
    path: Path
    target: Path | None  # None: known only once the model is installed (apply resolves it)
    covered_by: Path | None = None  # the app already has this file there: no link


@dataclass(frozen=True)
class _Pair:
    path: Path
    target: Path
    digest: str | None = None  # sha256 of the target's bytes, when its name says it
    size: int = -1


def _ollama_name(src: OllamaSource) -> str:
    return src.model if src.tag == "latest" else f"{src.model}-{src.tag}"


def lmstudio_place(src: OllamaSource) -> tuple[str, str, str]:
    """(publisher, model folder, file stem) of an Ollama model in LM Studio's layout.

    Never ``library`` or a host name as the publisher: an Ollama pull from Hugging Face is
    filed under the repo's org and name, as LM Studio files that repo; a library model
    under ``ollama``, with the ``-GGUF`` model folder LM Studio's own downloads use."""
    if src.is_huggingface:
        base = src.model[:-5] if src.model.lower().endswith("-gguf") else src.model
        stem = base if src.tag.lower() == "latest" else f"{base}-{src.tag}"
        return src.namespace, src.model, stem
    stem = _ollama_name(src)
    publisher = "ollama" if src.namespace.lower() == "library" else src.namespace
    return publisher, f"{stem}-GGUF", stem


def _ollama_links(app: AppSpec, name: str, src: OllamaSource, model: OllamaModel) -> list[_Pair]:
    blobs = model.manifest_path.parents[4] / "blobs"
    weights, projector = model.layer("model"), model.layer("projector")
    if weights is None:
        return []

    def pair(path: Path, digest: str, size: int) -> _Pair:
        return _Pair(path, blobs / f"sha256-{digest}", digest, size)

    if app.layout == "dir":
        return [pair(app.path / f"{name}.gguf", weights.digest, weights.size)]
    publisher, model_folder, stem = lmstudio_place(src)
    folder = app.path / publisher / model_folder
    out = [pair(folder / f"{stem}.gguf", weights.digest, weights.size)]
    if projector is not None:
        out.append(pair(folder / f"mmproj-{stem}.gguf", projector.digest, projector.size))
    return out


def _hf_links(
    app: AppSpec, name: str, m: ModelSpec, repo: HfRepo, locked: str | None
) -> list[_Pair] | None:
    # Under mlx.lock the snapshot is the locked commit, which no ref may name.
    want = locked or m.revision or "main"
    commit = want if len(want) == 40 else repo.ref(want)
    rev = repo.revision(commit) if commit else None
    if rev is None:
        return None
    if app.layout == "dir":
        return [_Pair(app.path / name, rev.snapshot_path)]
    org, repo_name = repo.repo_id.split("/", 1)
    listing = [RemoteFile(f.path, f.size, f.blob) for f in rev.files if f.present]
    selected = {f.path for f in wanted_files(listing, m.include, m.exclude)}
    return [
        _Pair(
            app.path / org / repo_name / Path(f.path).name,
            Path(f.real_file or f.blob_file),
            f.blob if f.is_lfs else None,
            f.size,
        )
        for f in rev.files
        if f.present and f.path.lower().endswith(".gguf") and f.path in selected
    ]


def wanted_links(
    spec: Spec,
    observed: Observed,
    pending: set[str],
    facts: RegistryFacts | None = None,
    off_host: frozenset[str] = frozenset(),
    locked: Mapping[str, str] | None = None,
) -> tuple[list[WantedLink], list[str]]:
    """Every link the spec asks for; ``pending`` names models whose install is planned;
    ``off_host`` the ids (``model/NAME``, ``app/NAME``) whose ``when:`` skips them here.
    ``locked``: model name -> the HF commit mlx.lock pins (links go to that snapshot).
    A link whose file the app folder already holds comes back with ``covered_by`` set."""
    found = _Collector(observed, facts or RegistryFacts(), locked or {})
    for app_name, app in spec.apps.items():
        if f"app/{app_name}" in off_host:
            continue
        for name in app.models:
            m = spec.models.get(name)
            if m is None or m.ensure == "absent" or f"model/{name}" in off_host:
                continue  # validation reports it; or not for this host
            if name in pending:  # which files is known after the install: one action per model
                found.out.append(WantedLink(app_name, name, app.path, None))
                continue
            pairs = found.pairs(app_name, app, name, m)
            if pairs is None:
                continue  # not installed and not planned: the model plan says why
            found.add(app_name, name, m, pairs)
    return found.out, found.warnings


class _Collector:
    """The wanted links found so far, and which model each link path went to."""

    def __init__(self, observed: Observed, facts: RegistryFacts, locked: Mapping[str, str]) -> None:
        self.locked = locked
        self.ollama = {ollama_key(m): m for m in observed.ollama.models}
        self.fold = observed.hf.case_insensitive
        self.hf = {hf_key(r, self.fold): r for r in observed.hf.repos if r.repo_type == "model"}
        self.held = _Held(observed, facts)
        self.out: list[WantedLink] = []
        self.warnings: list[str] = []
        self.claimed: dict[Path, str] = {}

    def pairs(self, app_name: str, app: AppSpec, name: str, m: ModelSpec) -> list[_Pair] | None:
        """The (path, target) pairs of an installed model; None when it is not installed."""
        src = m.parsed_source
        if isinstance(src, OllamaSource) and (model := self.ollama.get(ollama_key(src))):
            return _ollama_links(app, name, src, model)
        if isinstance(src, HfSource) and (repo := self.hf.get(hf_key(src, self.fold))):
            return _hf_links(app, name, m, repo, self.locked.get(name))
        if isinstance(src, FileSource):
            if app.layout == "dir":
                return [_Pair(app.path / name, src.path)]
            self.warnings.append(
                f"apps.{app_name}: {name} is a file:// source; only layout: dir links those"
            )
        return None

    def add(self, app_name: str, name: str, m: ModelSpec, pairs: list[_Pair]) -> None:
        if not pairs:
            self.warnings.append(
                f"apps.{app_name}: {name} has nothing LM Studio can load (no .gguf file)"
            )
        # The weights decide for the whole model: a projector alone is no entry.
        cover = (
            self.held.find(app_name, pairs[0])
            if pairs and isinstance(m.parsed_source, OllamaSource)
            else None
        )
        for pair in pairs:
            covered = cover or self.held.find(app_name, pair)
            if covered is None and self.claimed.setdefault(pair.path, name) != name:
                self.warnings.append(
                    f"apps.{app_name}: {name} and {self.claimed[pair.path]} both want "
                    f"{pair.path}; linked for {self.claimed[pair.path]} only"
                )
                continue
            self.out.append(WantedLink(app_name, name, pair.path, pair.target, covered))


class _Held:
    """What each app folder already holds, to find the same GGUF at another path."""

    def __init__(self, observed: Observed, facts: RegistryFacts) -> None:
        ours = {link.path for link in facts.links}  # mlx's own links may move: never "held"
        self.entries = {
            app.name: [e for e in app.entries if e.path not in ours and e.kind in ("file", "link")]
            for app in observed.apps
        }
        self.digests: dict[Path, str] = {d.path: d.sha256 for d in facts.dedups}
        for group in observed.duplicates:
            self.digests.update(dict.fromkeys(group.paths, group.digest))

    def find(self, app: str, pair: _Pair) -> Path | None:
        if pair.digest is None and pair.size < 0:
            return None  # a folder or a file:// path: nothing to compare
        for entry in self.entries.get(app, ()):
            if entry.path != pair.path and self._same(entry, pair):
                return entry.path
        return None

    def _same(self, entry: AppLink, pair: _Pair) -> bool:
        if entry.kind == "link" and entry.target is not None:
            if entry.target == pair.target:
                return True
            if pair.digest is not None and entry.target.name in (
                f"sha256-{pair.digest}",
                pair.digest,
            ):
                return True  # a link to another copy named by the same sha256
        if pair.digest is not None and self.digests.get(entry.path) == pair.digest:
            return True
        return entry.path.name == pair.path.name and entry.size == pair.size
