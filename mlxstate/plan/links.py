"""Links into app folders (``apps:``), planned as a pure function like models.

Where links go (docs/mlx-yaml.md, ``apps``):

- ``layout: dir`` — ``<path>/<model-name>``: an HF model's snapshot folder, a ``file://``
  path, or for Ollama ``<path>/<model-name>.gguf`` → the model blob;
- ``layout: lmstudio`` — exactly two folders deep: HF GGUF repos as
  ``<org>/<repo>/<file>.gguf`` for each cached ``.gguf`` the include selects; Ollama models as
  ``<namespace-or-host>/<name[-tag]>/<name[-tag]>.gguf`` → the model blob, plus
  ``mmproj-<name[-tag]>.gguf`` → the projector blob in the same folder.

Links are absolute symlinks to the real file. A link mlx made (registry) that points
elsewhere is retargeted; one no longer wanted is removed; anything else already at a link's
path is a CONFLICT, shown and never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlxstate.match import hf_key, ollama_key
from mlxstate.plan.actions import Action, Op, params
from mlxstate.registry import RegistryFacts
from mlxstate.sources import FileSource, HfSource, OllamaSource
from mlxstate.spec.models import AppSpec, ModelSpec, Spec
from mlxstate.state import AppLink, HfRepo, Observed, OllamaModel, RemoteFile

__all__ = ["LinkPlan", "WantedLink", "plan_links", "wanted_links"]


@dataclass(frozen=True)
class WantedLink:
    app: str
    model: str
    path: Path
    target: Path | None  # None: known only once the model is installed (apply resolves it)


@dataclass(frozen=True)
class LinkPlan:
    actions: tuple[Action, ...]
    conflicts: tuple[str, ...]
    warnings: tuple[str, ...]


def _ollama_name(src: OllamaSource) -> str:
    return src.model if src.tag == "latest" else f"{src.model}-{src.tag}"


def _ollama_links(
    app: AppSpec, name: str, src: OllamaSource, model: OllamaModel
) -> list[tuple[Path, Path]]:
    blobs = model.manifest_path.parents[4] / "blobs"
    weights, projector = model.layer("model"), model.layer("projector")
    if weights is None:
        return []
    if app.layout == "dir":
        return [(app.path / f"{name}.gguf", blobs / f"sha256-{weights.digest}")]
    folder_name = _ollama_name(src)
    owner = src.namespace if src.host == "registry.ollama.ai" else src.host
    folder = app.path / owner / folder_name
    out = [(folder / f"{folder_name}.gguf", blobs / f"sha256-{weights.digest}")]
    if projector is not None:
        out.append((folder / f"mmproj-{folder_name}.gguf", blobs / f"sha256-{projector.digest}"))
    return out


def _hf_links(
    app: AppSpec, name: str, m: ModelSpec, repo: HfRepo
) -> list[tuple[Path, Path]] | None:
    want = m.revision or "main"
    commit = want if len(want) == 40 else repo.ref(want)
    rev = repo.revision(commit) if commit else None
    if rev is None:
        return None
    if app.layout == "dir":
        return [(app.path / name, rev.snapshot_path)]
    from mlxstate.plan.planner import wanted_files

    org, repo_name = repo.repo_id.split("/", 1)
    listing = [RemoteFile(f.path, f.size, f.blob) for f in rev.files if f.present]
    selected = {f.path for f in wanted_files(listing, m.include, m.exclude)}
    return [
        (app.path / org / repo_name / Path(f.path).name, Path(f.real_file or f.blob_file))
        for f in rev.files
        if f.present and f.path.lower().endswith(".gguf") and f.path in selected
    ]


def wanted_links(
    spec: Spec, observed: Observed, pending: set[str]
) -> tuple[list[WantedLink], list[str]]:
    """Every link the spec asks for; ``pending`` names models whose install is planned."""
    ollama = {ollama_key(m): m for m in observed.ollama.models}
    hf = {hf_key(r): r for r in observed.hf.repos if r.repo_type == "model"}
    out: list[WantedLink] = []
    warnings: list[str] = []
    for app_name, app in spec.apps.items():
        for name in app.models:
            m = spec.models.get(name)
            if m is None or m.ensure == "absent":
                continue  # validation reports it
            src = m.parsed_source
            if name in pending:  # which files is known after the install: one action per model
                out.append(WantedLink(app_name, name, app.path, None))
                continue
            pairs: list[tuple[Path, Path]] | None = None
            if isinstance(src, OllamaSource) and (model := ollama.get(ollama_key(src))):
                pairs = _ollama_links(app, name, src, model)
            elif isinstance(src, HfSource) and (repo := hf.get(hf_key(src))):
                pairs = _hf_links(app, name, m, repo)
            elif isinstance(src, FileSource):
                if app.layout == "dir":
                    pairs = [(app.path / name, src.path)]
                else:
                    warnings.append(
                        f"apps.{app_name}: {name} is a file:// source; only layout: dir links those"
                    )
                    continue
            if pairs is None:
                continue  # not installed and not planned: the model plan says why
            if not pairs:
                warnings.append(
                    f"apps.{app_name}: {name} has nothing LM Studio can load (no .gguf file)"
                )
            out += [WantedLink(app_name, name, p, t) for p, t in pairs]
    return out, warnings


def plan_links(
    spec: Spec, observed: Observed, facts: RegistryFacts, model_actions: list[Action]
) -> LinkPlan:
    pending = {
        a.model for a in model_actions if a.model and a.op in ("create", "replace", "update")
    }
    wanted, warnings = wanted_links(spec, observed, pending)
    entries: dict[Path, AppLink] = {e.path: e for app in observed.apps for e in app.entries}
    ours = {link.path: link for link in facts.links}
    actions: list[Action] = []
    conflicts: list[str] = []
    wanted_paths = set()
    for w in wanted:
        wanted_paths.add(w.path)
        relative = w.path.relative_to(spec.apps[w.app].path)
        ident = f"link/{w.app}/{relative}" if w.target is not None else f"link/{w.app}/{w.model}"
        depends = [f"model/{w.model}"] if w.model in pending else None
        here = entries.get(w.path)
        blocker = _blocking_parent(w.path, spec.apps[w.app].path, entries)
        if blocker is not None:
            conflicts.append(
                f"{blocker}: a {_what(entries[blocker])} is where mlx needs a folder for {w.path}"
            )
            continue
        if w.target is None:
            reason = f"links to {w.model} once it is installed"
            actions.append(_link(ident, "create", w, reason, depends))
            continue
        if here is None:
            actions.append(_link(ident, "create", w, f"→ {w.target}", depends))
        elif here.kind in ("link", "dangling") and here.target == w.target:
            continue  # already right
        elif (
            w.path in ours
            and here.kind in ("link", "dangling")
            and here.target == ours[w.path].target
        ):
            actions.append(
                _link(ident, "update", w, f"{here.target} → {w.target}", depends, "link.update")
            )
        else:
            conflicts.append(
                f"{w.path}: a {_what(here)} mlx did not make is in the way "
                f"of the link to {w.target}"
            )
    syncing = {(w.app, w.model) for w in wanted if w.target is None}
    for path, link in sorted(ours.items()):
        here = entries.get(path)
        if path in wanted_paths or here is None or here.target != link.target:
            continue  # still wanted, already gone, or no longer ours (then it is never touched)
        if (link.app, link.model) in syncing:
            continue  # its model is being installed or updated: the link sync after it decides
        if here.kind == "dangling" and not spec.settings.cleanup.dangling_links:
            warnings.append(f"{path}: mlx's link is dangling (cleanup.dangling_links is off)")
            continue
        why = "its target is gone" if here.kind == "dangling" else "no longer in mlx.yaml"
        root = spec.apps[link.app].path if link.app in spec.apps else None
        # Below the app folder when it is still declared; its name when the app left mlx.yaml.
        rel = (
            path.relative_to(root) if root is not None and path.is_relative_to(root) else path.name
        )
        ident = f"link/{link.app}/{rel}"
        extra = params(target=str(link.target), app=link.app)
        actions.append(Action(ident, "delete", "link.delete", str(path), 0, 0, why, None, extra))
    return LinkPlan(tuple(actions), tuple(conflicts), tuple(warnings))


def _blocking_parent(path: Path, root: Path, entries: dict[Path, AppLink]) -> Path | None:
    """A file (or link) observed where one of the folders above ``path`` must be."""
    for parent in path.parents:
        if parent == root or not parent.is_relative_to(root):
            return None
        entry = entries.get(parent)
        if entry is not None and entry.kind != "dir":
            return parent
    return None


def _what(entry: AppLink) -> str:
    return {"file": "file", "dir": "folder", "link": "link", "dangling": "dangling link"}[
        entry.kind
    ]


def _link(
    ident: str,
    op: Op,
    w: WantedLink,
    reason: str,
    depends: list[str] | None,
    kind: str = "link.create",
) -> Action:
    target = str(w.target) if w.target is not None else None
    extra = params(target=target, app=w.app, depends_on=depends)
    return Action(ident, op, kind, str(w.path), 0, 0, reason, w.model, extra)
