"""Links into app folders (``apps:``), planned as a pure function like models.

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
knows has the same sha256), no second link is made, and a link mlx made earlier for it is
removed. A link mlx made where an older mlx put it is moved to where it goes now.

Links are absolute symlinks to the real file. A link mlx made (registry) that points
elsewhere is retargeted; one no longer wanted is removed; anything else already at a link's
path is a CONFLICT, shown and never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlxstate.match import hf_key, ollama_key
from mlxstate.plan.actions import Action, Kind, Op, ReasonCode
from mlxstate.plan.files import wanted_files
from mlxstate.plan.params import LinkParams
from mlxstate.registry import LinkRecord, RegistryFacts
from mlxstate.sources import FileSource, HfSource, OllamaSource
from mlxstate.spec.models import AppSpec, ModelSpec, Spec
from mlxstate.state import AppLink, HfRepo, Observed, OllamaModel, RemoteFile

__all__ = [
    "LinkPlan",
    "WantedLink",
    "owns_link",
    "plan_links",
    "wanted_links",
]


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


@dataclass(frozen=True)
class LinkPlan:
    actions: tuple[Action, ...]
    conflicts: tuple[str, ...]
    warnings: tuple[str, ...]


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


def _hf_links(app: AppSpec, name: str, m: ModelSpec, repo: HfRepo) -> list[_Pair] | None:
    want = m.revision or "main"
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
    spec: Spec, observed: Observed, pending: set[str], facts: RegistryFacts | None = None
) -> tuple[list[WantedLink], list[str]]:
    """Every link the spec asks for; ``pending`` names models whose install is planned.
    A link whose file the app folder already holds comes back with ``covered_by`` set."""
    ollama = {ollama_key(m): m for m in observed.ollama.models}
    fold = observed.hf.case_insensitive
    hf = {hf_key(r, fold): r for r in observed.hf.repos if r.repo_type == "model"}
    held = _Held(observed, facts or RegistryFacts())
    out: list[WantedLink] = []
    warnings: list[str] = []
    claimed: dict[Path, str] = {}
    for app_name, app in spec.apps.items():
        for name in app.models:
            m = spec.models.get(name)
            if m is None or m.ensure == "absent":
                continue  # validation reports it
            src = m.parsed_source
            if name in pending:  # which files is known after the install: one action per model
                out.append(WantedLink(app_name, name, app.path, None))
                continue
            pairs: list[_Pair] | None = None
            if isinstance(src, OllamaSource) and (model := ollama.get(ollama_key(src))):
                pairs = _ollama_links(app, name, src, model)
            elif isinstance(src, HfSource) and (repo := hf.get(hf_key(src, fold))):
                pairs = _hf_links(app, name, m, repo)
            elif isinstance(src, FileSource):
                if app.layout == "dir":
                    pairs = [_Pair(app.path / name, src.path)]
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
            # The weights decide for the whole model: a projector alone is no entry.
            cover = (
                held.find(app_name, pairs[0]) if pairs and isinstance(src, OllamaSource) else None
            )
            for pair in pairs:
                covered = cover or held.find(app_name, pair)
                if covered is None and claimed.setdefault(pair.path, name) != name:
                    warnings.append(
                        f"apps.{app_name}: {name} and {claimed[pair.path]} both want "
                        f"{pair.path}; linked for {claimed[pair.path]} only"
                    )
                    continue
                out.append(WantedLink(app_name, name, pair.path, pair.target, covered))
    return out, warnings


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


def plan_links(
    spec: Spec, observed: Observed, facts: RegistryFacts, model_actions: list[Action]
) -> LinkPlan:
    pending = {
        a.model for a in model_actions if a.model and a.op in ("create", "replace", "update")
    }
    wanted, warnings = wanted_links(spec, observed, pending, facts)
    covered = {(w.app, w.model): w.covered_by for w in wanted if w.covered_by is not None}
    wanted = [w for w in wanted if w.covered_by is None]
    moved = {(w.app, w.model, w.target): w.path for w in wanted if w.target is not None}
    # What could not be read in a declared app folder (a symlink loop, no permission): shown
    # with the plan, since the links planned there may fail.
    warnings = [
        w for app in observed.apps if app.name in spec.apps for w in app.warnings
    ] + warnings
    entries: dict[Path, AppLink] = {e.path: e for app in observed.apps for e in app.entries}
    # Only this workspace's links (and those from before workspaces): another file's links
    # are never retargeted or removed by this one.
    ours = {link.path: link for link in facts.links_of_mine() if owns_link(link, spec, facts)}
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
            actions.append(_link(ident, "create", w, reason, "link-after-install", depends))
            continue
        if here is None:
            actions.append(_link(ident, "create", w, f"→ {w.target}", "link-missing", depends))
        elif here.kind in ("link", "dangling") and here.target == w.target:
            continue  # already right
        elif (
            w.path in ours
            and here.kind in ("link", "dangling")
            and here.target == ours[w.path].target
        ):
            why = f"{here.target} → {w.target}"
            actions.append(_link(ident, "update", w, why, "link-retarget", depends, "link.update"))
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
        code: ReasonCode = "link-dangling" if here.kind == "dangling" else "link-unwanted"
        if (new := moved.get((link.app, link.model, link.target))) is not None:
            why, code = f"moved to {new}", "link-moved"
        elif (same := covered.get((link.app, link.model))) is not None:
            why, code = f"{same} is the same model: one entry per model", "link-covered"
        root = spec.apps[link.app].path if link.app in spec.apps else None
        # Below the app folder when it is still declared; its name when the app left mlx.yaml.
        rel = (
            path.relative_to(root) if root is not None and path.is_relative_to(root) else path.name
        )
        ident = f"link/{link.app}/{rel}"
        extra = LinkParams(target=str(link.target), app=link.app)
        actions.append(
            Action(ident, "delete", "link.delete", str(path), 0, 0, why, None, extra, code)
        )
    return LinkPlan(tuple(actions), tuple(conflicts), tuple(warnings))


def owns_link(link: LinkRecord, spec: Spec, facts: RegistryFacts) -> bool:
    """A link recorded before workspaces existed is this file's only when this file declares
    its app at a folder that holds it; otherwise another mlx.yaml may have made it."""
    if link.workspace == facts.workspace:
        return True
    app = spec.apps.get(link.app)
    return app is not None and link.path.is_relative_to(app.path)


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
    code: ReasonCode,
    depends: list[str] | None,
    kind: Kind = "link.create",
) -> Action:
    target = str(w.target) if w.target is not None else None
    extra = LinkParams(app=w.app, depends_on=tuple(depends) if depends else None, target=target)
    return Action(ident, op, kind, str(w.path), 0, 0, reason, w.model, extra, code)
