"""Property tests of the planner (issue 4).

(a) For any valid spec, the state ``apply`` would leave behind plans to no changes.
(b) Planning twice — or with the stores listed in another order — gives equal plans.
(c) ``prune: true`` never deletes an unmanaged model.
(d) Every delete comes before every create (ops in delete, replace, update, create order).
(e) ``fingerprint`` is stable for equal inputs, changes with a declared model's manifest,
    and ignores repos that are neither declared nor managed.

Inputs are drawn from a small universe of Ollama names, HF repos and file paths, so the
examples collide often (same model declared and managed, present and broken…). Which files
an HF snapshot must hold comes from huggingface_hub's own ``filter_repo_objects`` — what
``snapshot_download`` fetches — not from the planner's ``wanted_files``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import pytest
from huggingface_hub.utils import filter_repo_objects  # type: ignore[attr-defined]
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from mlxstate.facts import (
    DiskSpace,
    HfCache,
    HfFile,
    HfRepo,
    HfRevision,
    Layer,
    Observed,
    OllamaModel,
    OllamaStore,
    RemoteFile,
    RemoteRepo,
)
from mlxstate.keys import hf_key, ollama_key
from mlxstate.mlxyaml.models import Spec
from mlxstate.plan.actions import OP_ORDER, Plan
from mlxstate.plan.fingerprint import fingerprint
from mlxstate.plan.planner import make_plan
from mlxstate.registry import ManagedModel, RegistryFacts
from mlxstate.sources import (
    OLLAMA_DEFAULT_HOST,
    OLLAMA_DEFAULT_NAMESPACE,
    FileSource,
    HfSource,
    OllamaSource,
    Source,
    parse_source,
)

PROPS = settings(
    max_examples=100,
    deadline=None,
    database=None,  # never write .hypothesis/ into the repo
    derandomize=True,  # the same examples on every run
    suppress_health_check=[HealthCheck.too_slow],
)

pytestmark = pytest.mark.slow  # properties over many generated worlds

BASE_DIR = Path("/golden")
OLLAMA_ROOT = Path("/stores/ollama/models")
HF_ROOT = Path("/stores/hf/hub")

OLLAMA_NAMES = (
    "llama3:8b",
    "llama3:latest",
    "qwen2.5:7b",
    "someuser/tool:v1",
    "hf.co/bartowski/Llama-3.2-1B-GGUF:Q4_K_M",
    "phi3:mini",
)
HF_REPOS = ("org/alpha", "org/Beta-Model", "mlx-community/Llama-3.2-1B-4bit", "meta/llama-8b")
FILE_PATHS = ("/data/models/lora", "/data/models/x.gguf")
PINNED = ("a" * 40, "0123456789abcdef0123456789abcdef01234567")
REVISIONS: tuple[str | None, ...] = (None, "main", "v1.0", "dev", *PINNED)
PATTERNS = (
    "*.json",
    "*.safetensors",
    "onnx/",
    "*.md",
    "original/",
    "*.bin",
    "*",
    "*.JSON",
    "sub/*",
    "model*",
    "tokenizer.*",
)
# Pattern sets that tell the filtering rules apart (case, `*` across `/`, trailing `/`).
INCLUDES: tuple[tuple[str, ...], ...] = (
    ("*.json",),
    ("*.JSON",),
    ("*.safetensors", "*.json"),
    ("onnx/",),
    ("sub/*",),
    ("model*",),
    ("tokenizer.*", "*.JSON"),
    ("original/", "config.json"),
    ("onnx",),
)
EXCLUDES: tuple[tuple[str, ...], ...] = (
    (),
    ("*.md",),
    ("*.bin", "original/"),
    ("onnx/",),
    ("*.JSON",),
    ("*.json",),
    ("sub/",),
    ("*/*",),
)
_LISTED = (
    ("config.json", 1000),
    ("tokenizer.json", 2000),
    ("model.safetensors", 5_000_000),
    ("README.md", 300),
    ("onnx/model.onnx", 4000),
    ("onnx/fp16/model.onnx", 2000),
    ("original/consolidated.pth", 9000),
    ("pytorch_model.bin", 8000),
    ("sub/Config.JSON", 50),
)


def _hex(*parts: str, n: int = 64) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:n]


def listing(repo_id: str) -> tuple[RemoteFile, ...]:
    """What the hub lists for any commit of ``repo_id`` (the same files for every commit)."""
    return tuple(RemoteFile(p, s, _hex(repo_id.lower(), p)) for p, s in _LISTED)


def fetched(files: Iterable[RemoteFile], include: Any, exclude: Any) -> list[RemoteFile]:
    """The files snapshot_download(allow_patterns=include, ignore_patterns=exclude) fetches."""
    return list(
        filter_repo_objects(
            list(files),
            allow_patterns=list(include) if include is not None else None,
            ignore_patterns=list(exclude) if exclude is not None else None,
            key=lambda f: f.path,
        )
    )


def branch_commit(repo_id: str, revision: str) -> str:
    return _hex("commit", repo_id.lower(), revision, n=40)


# -- specs --------------------------------------------------------------------------------------


def _ollama_spelling(base: str, variant: int, upper: bool) -> str:
    """One of the spellings Ollama treats as ``base`` (defaults written out or left out).

    Only the model and tag change case here: a default host or namespace in another case is
    a known mismatch, covered by the golden case ollama-name-default-parts-any-case.
    """
    src = parse_source(f"ollama://{base}")
    assert isinstance(src, OllamaSource)
    model, tag = (src.model.upper(), src.tag.upper()) if upper else (src.model, src.tag)
    default_host = src.host == OLLAMA_DEFAULT_HOST
    library = default_host and src.namespace == OLLAMA_DEFAULT_NAMESPACE
    forms = [f"{src.host}/{src.namespace}/{model}:{tag}"]
    if default_host:
        forms.append(f"{src.namespace}/{model}:{tag}")
    if library:
        forms.append(f"{model}:{tag}")
        if src.tag == "latest":
            forms.append(model)
    return forms[variant % len(forms)]


@st.composite
def model_entries(draw: st.DrawFn, kind: str, base: str) -> dict[str, Any]:
    ensure = draw(st.sampled_from(("present", "present", "absent")))
    entry: dict[str, Any] = {}
    if kind == "ollama":
        spelled = _ollama_spelling(base, draw(st.integers(0, 3)), draw(st.booleans()))
        entry["source"] = f"ollama://{spelled}"
    elif kind == "hf":
        entry["source"] = f"hf://{base.swapcase() if draw(st.booleans()) else base}"
        revision = draw(st.sampled_from(REVISIONS))
        if revision is not None:
            entry["revision"] = revision
        for key, curated in (("include", INCLUDES), ("exclude", EXCLUDES)):
            patterns = draw(
                st.one_of(
                    st.none(),
                    st.sampled_from(curated),
                    st.lists(st.sampled_from(PATTERNS), max_size=3, unique=True),
                )
            )
            if patterns is not None:
                entry[key] = list(patterns)
    else:
        entry["source"] = f"file://{base}"
        ensure = "present"  # file:// with ensure: absent is invalid
    if ensure == "absent":
        entry["ensure"] = "absent"
    elif draw(st.booleans()):
        entry["protect"] = draw(st.booleans())
    return entry


@st.composite
def spec_data(draw: st.DrawFn, prune: bool | None = None) -> dict[str, Any]:
    """A valid mlx.yaml mapping: each source declared at most once."""
    chosen = [
        *(("ollama", b) for b in draw(st.lists(st.sampled_from(OLLAMA_NAMES), unique=True))),
        *(("hf", b) for b in draw(st.lists(st.sampled_from(HF_REPOS), unique=True))),
        *(("file", b) for b in draw(st.lists(st.sampled_from(FILE_PATHS), unique=True))),
    ]
    chosen = draw(st.permutations(chosen))
    models = {f"m{i}": draw(model_entries(kind, base)) for i, (kind, base) in enumerate(chosen)}
    data: dict[str, Any] = {"version": 1, "models": models}
    data["settings"] = {"prune": draw(st.booleans()) if prune is None else prune}
    return data


def build_spec(data: Mapping[str, Any]) -> Spec:
    return Spec.model_validate(dict(data), context={"base_dir": BASE_DIR})


# -- observed states ----------------------------------------------------------------------------


def ollama_model(src: OllamaSource, *, broken: str = "", digest_salt: str = "") -> OllamaModel:
    """An Ollama model as its manifest spells it; ``broken``: "" | "missing" | "short"."""
    name = ollama_key(src)
    size = 4_000_000 + len(name)
    on_disk = {"": size, "missing": None, "short": size // 2}[broken]
    return OllamaModel(
        host=src.host,
        namespace=src.namespace,
        model=src.model,
        tag=src.tag,
        manifest_path=OLLAMA_ROOT / src.manifest_relpath,
        manifest_digest=_hex("manifest", name, digest_salt),
        config=Layer("application/vnd.docker.container.image.v1+json", _hex("cfg", name), 485, 485),
        layers=(
            Layer("application/vnd.ollama.image.model", _hex("model", name), size, on_disk),
            Layer("application/vnd.ollama.image.template", _hex("tpl", name), 1400, 1400),
        ),
        mtime=0.0,
    )


def hf_revision(
    repo_id: str, commit: str, files: Iterable[RemoteFile], *, dangling: Iterable[str] = ()
) -> HfRevision:
    folder = HF_ROOT / f"models--{repo_id.replace('/', '--')}"
    gone = set(dangling)
    return HfRevision(
        commit=commit,
        refs=(),
        files=tuple(
            HfFile(
                f.path,
                f.blob,
                0 if f.path in gone else f.size,
                f.path not in gone,
                str(folder / "blobs" / f.blob),
            )
            for f in files
        ),
        snapshot_path=folder / "snapshots" / commit,
        last_modified=0.0,
        listed=listing(repo_id),
    )


def hf_repo(
    repo_id: str,
    revisions: Iterable[HfRevision],
    refs: Mapping[str, str],
    kind: Literal["model", "dataset", "space"] = "model",
) -> HfRepo:
    ref_items = tuple(sorted(refs.items()))
    revs = tuple(
        replace(r, refs=tuple(n for n, c in ref_items if c == r.commit))
        for r in sorted(revisions, key=lambda r: r.commit)
    )
    return HfRepo(
        repo_type=kind,
        repo_id=repo_id,
        path=HF_ROOT / f"{kind}s--{repo_id.replace('/', '--')}",
        refs=ref_items,
        revisions=revs,
    )


def plenty_of_disk() -> tuple[DiskSpace, ...]:
    return (DiskSpace(OLLAMA_ROOT, 1, 10**15), DiskSpace(HF_ROOT, 1, 10**15))


def satisfied_state(spec: Spec) -> Observed:
    """The stores as a successful ``apply`` of ``spec`` leaves them: every present model
    intact (HF: the wanted revision cached with exactly what snapshot_download fetches, and
    the commit's hub listing recorded; a branch has its ref, a pinned commit needs none),
    every absent model gone, every file:// source on disk."""
    models: list[OllamaModel] = []
    repos: list[HfRepo] = []
    files: set[Path] = set()
    for m in spec.models.values():
        src = m.parsed_source
        if isinstance(src, FileSource):
            files.add(src.path)
        elif m.ensure == "absent":
            continue
        elif isinstance(src, OllamaSource):
            models.append(ollama_model(src))
        elif isinstance(src, HfSource):
            revision = m.revision or "main"
            pinned = revision in PINNED
            commit = revision if pinned else branch_commit(src.repo_id, revision)
            wanted = fetched(listing(src.repo_id), m.include, m.exclude)
            rev = hf_revision(src.repo_id, commit, wanted)
            repos.append(hf_repo(src.repo_id, [rev], {} if pinned else {revision: commit}))
    return Observed(
        ollama=OllamaStore(OLLAMA_ROOT, True, tuple(models)),
        hf=HfCache(HF_ROOT, True, tuple(repos)),
        daemon=None,
        existing_files=frozenset(files),
        disk=plenty_of_disk(),
    )


def satisfied_remote(spec: Spec) -> dict[tuple[str, str], RemoteRepo]:
    """What ``--refresh`` would say right after that apply: every head where it was."""
    out = {}
    for m in spec.models.values():
        src = m.parsed_source
        if isinstance(src, HfSource) and m.ensure == "present":
            revision = m.revision or "main"
            commit = revision if revision in PINNED else branch_commit(src.repo_id, revision)
            out[(src.repo_id.lower(), revision)] = RemoteRepo(
                src.repo_id, revision, commit, listing(src.repo_id)
            )
    return out


def _canonical(source: str, upper: bool) -> str:
    """How apply records a source in the registry (``str(parse_source(...))``), maybe in
    another case."""
    text = str(parse_source(source, BASE_DIR))
    return (
        text.upper().replace("OLLAMA://", "ollama://").replace("HF://", "hf://") if upper else text
    )


# -- random worlds ------------------------------------------------------------------------------


@dataclass(frozen=True)
class World:
    spec: Spec
    observed: Observed
    facts: RegistryFacts
    remote: dict[tuple[str, str], RemoteRepo] | None
    targets: tuple[str, ...]


OLLAMA_STATES = ("gone", "ok", "ok", "missing", "short")
HF_STATES = ("gone", "ok", "ok", "dangling", "partial", "dataset", "other-commit")
DISKS = (
    plenty_of_disk(),
    (),
    (DiskSpace(OLLAMA_ROOT, 1, 3 * 10**9), DiskSpace(HF_ROOT, 2, 20 * 10**9)),
)


@dataclass(frozen=True)
class Recipe:
    spec: dict[str, Any]
    ollama: tuple[str, ...]  # state per OLLAMA_NAMES entry
    hf: tuple[str, ...]  # state per HF_REPOS entry
    remote: tuple[tuple[str, str, str, bool], ...]  # (repo, revision, head, with files)
    files: tuple[str, ...]
    managed: tuple[tuple[str, bool, str], ...]  # (source, recorded upper-case, name)
    targets: tuple[str, ...]
    disk: int


@st.composite
def recipes(draw: st.DrawFn, prune: bool | None = None, with_targets: bool = True) -> Recipe:
    """Plain data describing a random world: a spec against random stores, registry,
    hub facts and targets. ``build_world`` turns it into (fresh) planner inputs."""
    data = draw(spec_data(prune))
    remote = []
    for repo_id in HF_REPOS:
        if draw(st.booleans()):
            head = draw(st.sampled_from(("local", "moved", "pinned")))
            revision = draw(st.sampled_from(("main", "v1.0", PINNED[1])))
            remote.append((repo_id, revision, head, draw(st.booleans())))
    universe = [f"ollama://{b}" for b in OLLAMA_NAMES] + [f"hf://{r}" for r in HF_REPOS]
    names = [*data["models"], "old", "gone"]
    managed = [
        (source, draw(st.booleans()), draw(st.sampled_from(names)))
        for source in draw(st.lists(st.sampled_from(universe), unique=True))
    ]
    targets: list[str] = []
    if with_targets and data["models"] and draw(st.integers(0, 3)) == 0:
        targets = draw(st.lists(st.sampled_from(sorted(data["models"])), unique=True))
    return Recipe(
        spec=data,
        ollama=tuple(draw(st.sampled_from(OLLAMA_STATES)) for _ in OLLAMA_NAMES),
        hf=tuple(draw(st.sampled_from(HF_STATES)) for _ in HF_REPOS),
        remote=tuple(remote),
        files=tuple(p for p in FILE_PATHS if draw(st.booleans())),
        managed=tuple(managed),
        targets=tuple(targets),
        disk=draw(st.integers(0, len(DISKS) - 1)),
    )


def build_world(recipe: Recipe) -> World:
    models = []
    for base, state in zip(OLLAMA_NAMES, recipe.ollama, strict=True):
        src = parse_source(f"ollama://{base}")
        assert isinstance(src, OllamaSource)
        if state != "gone":
            models.append(ollama_model(src, broken="" if state == "ok" else state))
    repos = []
    for repo_id, state in zip(HF_REPOS, recipe.hf, strict=True):
        commit = branch_commit(repo_id, "main")
        files = listing(repo_id)
        if state == "dataset":
            repos.append(hf_repo(repo_id, [hf_revision(repo_id, commit, files)], {}, "dataset"))
        elif state != "gone":
            if state == "other-commit":
                commit = PINNED[0]
            kept = files[:4] if state == "partial" else files
            dangling = [files[2].path] if state == "dangling" else []
            rev = hf_revision(repo_id, commit, kept, dangling=dangling)
            repos.append(hf_repo(repo_id, [rev], {"main": commit}))
    remote = {}
    for repo_id, revision, head, with_files in recipe.remote:
        commit = {
            "local": branch_commit(repo_id, "main"),
            "moved": branch_commit(repo_id, "moved"),
            "pinned": PINNED[1],
        }[head]
        remote[(repo_id.lower(), revision)] = RemoteRepo(
            repo_id, revision, commit, listing(repo_id) if with_files else None
        )
    facts = RegistryFacts(
        tuple(
            sorted(
                (
                    ManagedModel(_canonical(s, upper), name, None, 0.0)
                    for s, upper, name in recipe.managed
                ),
                key=lambda m: m.source,
            )
        )
    )
    observed = Observed(
        ollama=OllamaStore(OLLAMA_ROOT, True, tuple(models)),
        hf=HfCache(HF_ROOT, True, tuple(repos)),
        daemon=None,
        existing_files=frozenset(Path(p) for p in recipe.files),
        disk=DISKS[recipe.disk],
    )
    return World(build_spec(recipe.spec), observed, facts, remote or None, recipe.targets)


def worlds(prune: bool | None = None, with_targets: bool = True) -> st.SearchStrategy[World]:
    return recipes(prune, with_targets).map(build_world)


def plan_of(world: World) -> Plan:
    return make_plan(
        world.spec, world.observed, world.facts, targets=world.targets, remote=world.remote
    )


def _describe(plan: Plan) -> str:
    return "\n".join(
        [f"{a.op} {a.id} {a.subject}: {a.reason}" for a in plan.actions]
        + [f"warning: {w}" for w in plan.warnings]
        + [f"problem: {p.message}" for p in plan.problems]
    )


def _key(src: Source) -> str:
    if isinstance(src, OllamaSource):
        return ollama_key(src)
    if isinstance(src, HfSource):
        return hf_key(src)
    return str(src)


# -- (a) apply's result plans to no changes ------------------------------------------------------


# One example always runs that tells the filtering rules apart: exclude "*/*" and "sub/"
# reach into nested folders, "*.JSON" is case-sensitive, "onnx/" is a whole folder.
_FILTERS_EXAMPLE: dict[str, Any] = {
    "version": 1,
    "settings": {"prune": True},
    "models": {
        "a": {"source": "hf://org/alpha", "exclude": ["*/*"]},
        "b": {"source": "hf://org/Beta-Model", "include": ["*.JSON", "onnx/"]},
        "c": {"source": "hf://meta/llama-8b", "revision": PINNED[0], "exclude": ["sub/", "*.md"]},
        "d": {"source": "ollama://LLAMA3", "protect": True},
        "e": {"source": "ollama://qwen2.5:7b", "ensure": "absent"},
    },
}


@PROPS
@example(data=_FILTERS_EXAMPLE, managed_share=1, refresh=False)
@example(data=_FILTERS_EXAMPLE, managed_share=2, refresh=True)
@given(data=spec_data(), managed_share=st.integers(0, 2), refresh=st.booleans())
def test_the_state_apply_would_produce_plans_to_no_changes(
    data: dict[str, Any], managed_share: int, refresh: bool
) -> None:
    spec = build_spec(data)
    observed = satisfied_state(spec)
    # What apply recorded: the models it installed (some or all of the present ones), plus
    # managed models that are gone already (pruned or removed by hand earlier).
    present = [
        (name, m)
        for name, m in spec.models.items()
        if m.ensure == "present" and not isinstance(m.parsed_source, FileSource)
    ]
    installed = [
        ManagedModel(str(m.parsed_source), name, None, 0.0)
        for i, (name, m) in enumerate(present)
        if i % 3 < managed_share
    ]
    gone = ManagedModel("ollama://long-gone:latest", "long-gone", None, 0.0)
    facts = RegistryFacts((*installed, gone))
    remote = satisfied_remote(spec) if refresh else None
    plan = make_plan(spec, observed, facts, remote=remote)
    assert plan.actions == (), _describe(plan)
    assert plan.problems == (), _describe(plan)
    assert plan.warnings == (), _describe(plan)


def test_satisfied_state_can_fail() -> None:
    """The helper is not vacuous: drop one file from a snapshot and the plan repairs it."""
    spec = build_spec({"version": 1, "models": {"m": {"source": "hf://org/alpha"}}})
    observed = satisfied_state(spec)
    repo = observed.hf.repos[0]
    rev = repo.revisions[0]
    broken = replace(rev, files=rev.files[1:])
    observed = replace(
        observed, hf=replace(observed.hf, repos=(replace(repo, revisions=(broken,)),))
    )
    plan = make_plan(spec, observed, RegistryFacts())
    assert [a.op for a in plan.actions] == ["update"]


# -- (b) deterministic --------------------------------------------------------------------------


@PROPS
@given(world=worlds())
def test_planning_twice_gives_equal_plans(world: World) -> None:
    first = plan_of(world)
    assert plan_of(world) == first
    # The order the observers listed the stores in does not matter either.
    shuffled = replace(
        world.observed,
        ollama=replace(world.observed.ollama, models=world.observed.ollama.models[::-1]),
        hf=replace(world.observed.hf, repos=world.observed.hf.repos[::-1]),
    )
    assert plan_of(replace(world, observed=shuffled)) == first


# -- (c) prune never deletes unmanaged models ----------------------------------------------


@PROPS
@given(world=worlds(prune=True))
def test_prune_never_deletes_an_unmanaged_model(world: World) -> None:
    plan = plan_of(world)
    managed = set()
    for m in world.facts.models:
        src = parse_source(m.source)
        managed.add(_key(src))
    for action in plan.actions:
        if action.op == "delete":
            src = parse_source(action.subject)
            if action.model is not None:
                # Deleting a declared model needs the user's ensure: absent.
                assert world.spec.models[action.model].ensure == "absent", _describe(plan)
            else:
                assert _key(src) in managed, f"{action.subject} is not managed\n{_describe(plan)}"
        elif action.op == "replace":
            old = parse_source(str(action.replaces))
            assert _key(old) in managed, f"replaced {old} is not managed\n{_describe(plan)}"


@PROPS
@given(world=worlds(prune=False))
def test_without_prune_only_ensure_absent_deletes(world: World) -> None:
    plan = plan_of(world)
    for action in plan.actions:
        assert action.op != "replace", _describe(plan)
        if action.op == "delete":
            assert action.model is not None, _describe(plan)
            assert world.spec.models[action.model].ensure == "absent", _describe(plan)


# -- (d) order ----------------------------------------------------------------------------------


@PROPS
@given(world=worlds())
def test_deletes_come_before_creates(world: World) -> None:
    plan = plan_of(world)
    ops = [a.op for a in plan.actions]
    deletes = [i for i, op in enumerate(ops) if op == "delete"]
    creates = [i for i, op in enumerate(ops) if op == "create"]
    if deletes and creates:
        assert max(deletes) < min(creates), ops
    order = [(OP_ORDER[a.op], a.id) for a in plan.actions]
    assert order == sorted(order), ops
    assert len({a.id for a in plan.actions}) == len(plan.actions), "duplicate action ids"


# -- (e) fingerprint ----------------------------------------------------------------------------


@PROPS
@given(recipe=recipes(with_targets=False))
def test_fingerprint_is_equal_for_equal_inputs(recipe: Recipe) -> None:
    one, two = build_world(recipe), build_world(recipe)  # equal, separately built
    assert one.observed is not two.observed
    assert fingerprint(one.spec, one.observed, one.facts) == fingerprint(
        two.spec, two.observed, two.facts
    )


def _declared_present_ollama(world: World) -> list[OllamaModel]:
    keys = {
        ollama_key(m.parsed_source)
        for m in world.spec.models.values()
        if isinstance(m.parsed_source, OllamaSource)
    }
    return [m for m in world.observed.ollama.models if ollama_key(m) in keys]


@PROPS
@given(recipe=recipes(with_targets=False), pick=st.integers(0, 10))
def test_fingerprint_changes_with_a_declared_models_manifest(recipe: Recipe, pick: int) -> None:
    world = build_world(recipe)
    candidates = _declared_present_ollama(world)
    assume(candidates)
    target = candidates[pick % len(candidates)]
    changed = replace(target, manifest_digest=_hex("another manifest", target.manifest_digest))
    models = tuple(changed if m is target else m for m in world.observed.ollama.models)
    observed = replace(world.observed, ollama=replace(world.observed.ollama, models=models))
    assert fingerprint(world.spec, world.observed, world.facts) != fingerprint(
        world.spec, observed, world.facts
    )


@PROPS
@given(recipe=recipes(with_targets=False), kind=st.sampled_from(("model", "dataset")))
def test_fingerprint_ignores_an_unrelated_unmanaged_repo(
    recipe: Recipe, kind: Literal["model", "dataset"]
) -> None:
    world = build_world(recipe)
    stranger = hf_repo(
        "someone/unrelated",
        [hf_revision("someone/unrelated", "f" * 40, listing("someone/unrelated"))],
        {"main": "f" * 40},
        kind,
    )
    more = replace(
        world.observed, hf=replace(world.observed.hf, repos=(*world.observed.hf.repos, stranger))
    )
    assert fingerprint(world.spec, world.observed, world.facts) == fingerprint(
        world.spec, more, world.facts
    )
    # ... and an unrelated unmanaged Ollama model neither.
    extra = ollama_model(OllamaSource("registry.ollama.ai", "library", "unrelated", "latest"))
    more_ollama = replace(
        world.observed,
        ollama=replace(world.observed.ollama, models=(*world.observed.ollama.models, extra)),
    )
    assert fingerprint(world.spec, world.observed, world.facts) == fingerprint(
        world.spec, more_ollama, world.facts
    )
