"""What one declared model resolves to on this machine (``mlx which``, ``mlxstate.api``).

Offline and narrow: it reads the one Ollama manifest (and stats its blobs) or the one
Hugging Face repo folder the model lives in, never the whole stores, so an app can call it
on every start (docs/api.md). Paths are only built from validated names and digests.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlxstate.errors import NotDeclared
from mlxstate.sources import FileSource, HfSource, OllamaSource

if TYPE_CHECKING:
    from mlxstate.facts import HfRevision, OllamaModel
    from mlxstate.mlxyaml.load import LoadedSpec
    from mlxstate.mlxyaml.models import ModelSpec, Spec
    from mlxstate.settings import Settings

__all__ = ["ModelFile", "ResolvedModel", "declared_name", "resolve_declared"]

Kind = Literal["ollama", "hf", "file"]
_PROJECTOR = "projector"  # application/vnd.ollama.image.projector: a vision model's mmproj
_MAX_FOLDER_FILES = 10_000  # a file:// folder is listed, never walked without end


@dataclass(frozen=True, slots=True)
class ModelFile:
    """One file of a resolved model: its name in the model (a snapshot path for HF, the layer
    kind for Ollama: ``model``, ``projector``, ``template``, ``params``, ``config``…), where
    its bytes are, its size and whether it is on disk."""

    name: str
    path: Path
    size: int
    present: bool = True

    def document(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "size": self.size,
            "present": self.present,
        }


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A model declared in mlx.yaml and what is on disk for it (docs/api.md)."""

    name: str  # as declared in mlx.yaml
    source: str  # the source as written: ollama://…, hf://…, file://…
    kind: Kind
    present: bool  # every file it needs is on disk
    ollama_name: str | None = None  # the name to pass to Ollama (ollama:// only)
    hf_repo: str | None = None  # ORG/REPO (hf:// only)
    revision: str | None = None  # the declared revision (hf:// only; default main)
    commit: str | None = None  # HF: the snapshot's commit; Ollama: the manifest's digest
    path: Path | None = None  # HF: the snapshot folder; Ollama: the manifest; file://: itself
    files: tuple[ModelFile, ...] = ()
    gguf: Path | None = None  # the GGUF weights to hand to llama.cpp, when there is one
    mmproj: Path | None = None  # the vision projector (mmproj) of a vision model

    def document(self) -> dict[str, Any]:
        """The ``mlx which --json`` document."""
        return {
            "name": self.name,
            "source": self.source,
            "kind": self.kind,
            "present": self.present,
            "ollama_name": self.ollama_name,
            "hf_repo": self.hf_repo,
            "revision": self.revision,
            "commit": self.commit,
            "path": _text(self.path),
            "files": [f.document() for f in self.files],
            "gguf": _text(self.gguf),
            "mmproj": _text(self.mmproj),
        }


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


def declared_name(spec: Spec, name: str) -> str:
    """The mlx.yaml name of ``name``: a declared name, or a source a model declares
    (``ollama://qwen2.5:7b``, ``hf://ORG/REPO``); else :class:`NotDeclared`."""
    if name in spec.models:
        return name
    if "://" in name:
        from mlxstate.keys import declared_by_key, source_key

        found = declared_by_key(spec).get(source_key(name))
        if found is not None:
            return found
    from mlxstate.text import printable

    close = difflib.get_close_matches(name, list(spec.models), n=1)
    raise NotDeclared(
        f"{printable(name)!r} is not declared in mlx.yaml",
        hint=f"did you mean {close[0]!r}?" if close else "declare it with `mlx add SOURCE`",
    )


def resolve_declared(loaded: LoadedSpec, settings: Settings, name: str) -> ResolvedModel:
    """Resolve a declared model (by name or source) against the stores, reading only it."""
    name = declared_name(loaded.spec, name)
    model = loaded.spec.models[name]
    src = model.parsed_source
    if isinstance(src, OllamaSource):
        return _ollama(name, src, settings.ollama_models_dir)
    if isinstance(src, HfSource):
        return _hf(name, model, src, settings.hf_cache_dir)
    return _file(name, src)


# -- Ollama --------------------------------------------------------------------------------


def _ollama(name: str, src: OllamaSource, root: Path) -> ResolvedModel:
    from mlxstate.observe.ollama_store import read_one_model

    model = read_one_model(root, (src.host, src.namespace, src.model, src.tag))
    base = ResolvedModel(name, str(src), "ollama", False, ollama_name=src.name)
    if model is None:
        return base
    files = _ollama_files(root, model)
    return ResolvedModel(
        name,
        str(src),
        "ollama",
        model.status == "ok",
        ollama_name=src.name,
        commit=model.manifest_digest,
        path=model.manifest_path,
        files=files,
        gguf=_first(files, "model"),
        mmproj=_first(files, _PROJECTOR),
    )


def _ollama_files(root: Path, model: OllamaModel) -> tuple[ModelFile, ...]:
    from mlxstate.observe.ollama_manifest import blob_file

    # Digests were validated when the manifest was read: safe to build paths from.
    return tuple(
        ModelFile(layer.kind, blob_file(root, layer.digest), layer.size, layer.ok)
        for layer in model.all_layers
    )


def _first(files: tuple[ModelFile, ...], kind: str) -> Path | None:
    return next((f.path for f in files if f.name == kind and f.present), None)


# -- Hugging Face --------------------------------------------------------------------------


def _hf(name: str, model: ModelSpec, src: HfSource, root: Path) -> ResolvedModel:
    from mlxstate.observe.hf_cache import scan_hf_repo

    want = model.revision or "main"
    base = ResolvedModel(name, str(src), "hf", False, hf_repo=src.repo_id, revision=want)
    repo, _why = scan_hf_repo(root, src.repo_id)
    if repo is None:
        return base
    # A 40-hex revision is a commit; anything else a ref (branch or tag) of this cache.
    commit = want if _is_commit(want) else repo.ref(want)
    rev = repo.revision(commit) if commit else None
    if rev is None:
        return base
    files, missing = _hf_files(rev, model, _cache_roots(root))
    weights = [f for f in files if f.present and f.name.lower().endswith(".gguf")]
    return ResolvedModel(
        name,
        str(src),
        "hf",
        bool(files) and not missing,
        hf_repo=src.repo_id,
        revision=want,
        commit=rev.commit,
        path=rev.snapshot_path,
        files=files,
        gguf=_pick_gguf([f for f in weights if "mmproj" not in _base(f.name)]),
        mmproj=_only([f for f in weights if "mmproj" in _base(f.name)]),
    )


def _is_commit(text: str) -> bool:
    return len(text) == 40 and all(c in "0123456789abcdef" for c in text)


def _cache_roots(root: Path) -> tuple[str, ...]:
    """The cache folder as configured and as resolved (it may live behind a link)."""
    return tuple({os.path.normpath(os.path.abspath(root)), os.path.realpath(root)})


def _in_cache(blob_file: str, roots: tuple[str, ...]) -> bool:
    path = os.path.normpath(blob_file)
    return any(path.startswith(r + os.sep) for r in roots)


def _hf_files(
    rev: HfRevision, model: ModelSpec, roots: tuple[str, ...]
) -> tuple[tuple[ModelFile, ...], bool]:
    """The snapshot files ``include``/``exclude`` select, and whether any the hub listed for
    this commit (``trees/<commit>.json``, when recorded) or the snapshot links to is missing:
    the same test ``mlx plan`` repairs by. A snapshot link pointing out of the cache (to
    ``/etc/passwd``) is no file of the model: not present, never handed out as its GGUF."""
    from mlxstate.facts import RemoteFile
    from mlxstate.plan.files import wanted_files

    listing = [RemoteFile(f.path, f.size, f.blob) for f in rev.files]
    wanted = {f.path for f in wanted_files(listing, model.include, model.exclude)}
    files = tuple(
        ModelFile(
            f.path, rev.snapshot_path / f.path, f.size, f.present and _in_cache(f.blob_file, roots)
        )
        for f in sorted(rev.files, key=lambda f: f.path)
        if f.path in wanted
    )
    missing = any(not f.present for f in files)
    if rev.remote is not None:
        expected = wanted_files(rev.remote, model.include, model.exclude)
        missing = missing or any(not rev.has_file(f.path) for f in expected)
    return files, missing


def _base(path: str) -> str:
    return path.rsplit("/", 1)[-1].lower()


def _pick_gguf(files: list[ModelFile]) -> Path | None:
    """The one GGUF of the snapshot; of a split one (``-00001-of-00003.gguf``), its first
    part, which llama.cpp is given; None when several quantizations are there (narrow them
    with ``include:``)."""
    if len(files) == 1:
        return files[0].path
    firsts = [f for f in files if "-00001-of-" in _base(f.name)]
    return firsts[0].path if len(firsts) == 1 else None


def _only(files: list[ModelFile]) -> Path | None:
    return files[0].path if len(files) == 1 else None


# -- file:// -------------------------------------------------------------------------------


def _file(name: str, src: FileSource) -> ResolvedModel:
    path = src.path
    files = _folder_files(path) if path.is_dir() else ()
    if path.is_file():
        files = (ModelFile(path.name, path, path.stat().st_size),)
    weights = [f for f in files if f.name.lower().endswith(".gguf")]
    return ResolvedModel(
        name,
        str(src),
        "file",
        bool(files),
        path=path,
        files=files,
        gguf=_pick_gguf([f for f in weights if "mmproj" not in _base(f.name)]),
        mmproj=_only([f for f in weights if "mmproj" in _base(f.name)]),
    )


def _folder_files(folder: Path) -> tuple[ModelFile, ...]:
    """The regular files directly in ``folder`` (sorted; links followed, as apps read them)."""
    out: list[ModelFile] = []
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return ()
    for entry in entries[:_MAX_FOLDER_FILES]:
        try:
            if entry.is_file():
                out.append(ModelFile(entry.name, Path(entry.path), entry.stat().st_size))
        except OSError:
            continue
    return tuple(out)
