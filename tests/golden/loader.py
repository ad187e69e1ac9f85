"""Read a golden planner case (``tests/golden/plan/*.yaml``) into planner inputs.

A case file is plain YAML data; nothing here touches the disk except reading the case.
Every mapping is checked for unknown keys so a typo in a case fails loudly instead of
being silently ignored. The format (see any case file for examples)::

    description: what the case shows            # required
    known_bug: why the planner is wrong here    # optional: the case is a strict xfail
    spec: {version: 1, models: {...}}           # mlx.yaml content
    observed:
      ollama:                                   # omitted: the Ollama store does not exist
        - name: llama3:8b                       # any ollama:// name; parsed like a source
          digest: m1                            # manifest digest (default derived from name)
          config: {digest: c1, size: 500}       # optional config layer
          layers:
            - {kind: model, size: 4GB, digest: aa11}             # intact
            - {kind: params, size: 100, present: false}         # blob missing
            - {kind: template, size: 1000, on_disk: 400}        # blob short
      hf:                                       # omitted: the HF cache does not exist
        - id: org/repo
          type: model                           # model (default) | dataset | space
          refs: {main: <commit>}
          revisions:
            <commit>:
              files:                            # path: size | {size, blob, present}
                config.json: 500
                model.safetensors: {size: 4GB, blob: b1}
                tokenizer.json: {size: 2000, present: false}   # dangling link
              remote: {path: size | {size, blob}}              # trees/<commit>.json
      files: [/abs/path]                        # file:// sources that exist
      disk:                                     # free space per store root
        ollama: {device: 1, free: 50GB}
        hf: {device: 1, free: 50GB}
      now: 1000000                              # Observed.now, POSIX seconds (default 0)
      ollama_files:                             # what Ollama's blobs/ holds besides layers
        orphans_known: false                    # a manifest was unparseable (default true)
        partials: [{name: sha256-<hex>-partial, size: 10, age: 2h}]   # or mtime: <seconds>
        orphans: [{name: sha256-<hex>, size: 10, age: 59m}]
      apps:                                     # app folder -> what is in it
        /apps/lms:                              # an absolute folder; layout from the spec
          - {path: org/repo/x.gguf, kind: link, target: /abs}   # path relative to the folder
          - {path: lib/x/x.gguf, kind: dangling, target: /abs}  # link whose target is gone
          - {path: notes.txt, kind: file, size: 10}             # or kind: dir
    (an hf repo also takes ``incomplete:`` and ``orphans:`` lists of {name, size, age|mtime},
    files in its blobs/ folder)
    registry: [{source: ollama://x:latest, name: x, revision: null}]   # managed models
    (each owned by the case's workspace "golden" unless ``owners: [ws, ...]`` says; "" is
    the owner of rows recorded before workspaces existed)
    registry:                                   # or, with the links mlx made:
      models: [{source: ..., name: ...}]
      links: [{path: /apps/x/y, target: /abs, app: x, model: y}]
    targets: [name]                             # --target
    host: {name: laptop, memory: 16GiB, os: macos}   # the host planned for (`when:`);
                                                # memory/os left out: unknown
    remote:                                     # what `--refresh` asked the hub
      - {repo: org/repo, revision: main, commit: <commit>, files: {path: size} | null}
    expected:                                   # omitted only when expected_problems is set
      actions:                                  # exact list, in plan order
        - {id, op, kind, subject, download_bytes, free_bytes,
           reason_contains: str | [str], params: {name: value},   # params: a subset
           reason_code: str}                                     # optional
      warnings: [str | [str]]                   # exact count; phrases per warning, in order
                                                # (left out: none; null: not checked)
      conflicts: [str | [str]]                  # the same, for links' conflicts (left out: none)
    expected_problems: [str | [str] | {contains, model, key}]     # exact count, in order

Sizes are integers or strings such as ``4GB`` (decimal) or ``512MiB`` (binary); ages are
seconds or durations such as ``2h``, ``59m`` (the file's mtime is ``now`` minus the age). A blob not
given is derived from the file's path and size, so the same path and size in a snapshot and
in a hub listing name the same blob.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from mlxstate.facts import (
    OLLAMA_CONFIG_TYPE,
    OLLAMA_MEDIA_PREFIX,
    AppLink,
    AppState,
    DiskSpace,
    FileFact,
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
from mlxstate.hosts import Host
from mlxstate.mlxyaml.models import Spec
from mlxstate.mlxyaml.types import parse_duration
from mlxstate.registry import LinkRecord, ManagedModel, RegistryFacts
from mlxstate.sources import OllamaSource, parse_source

__all__ = [
    "BASE_DIR",
    "CASES_DIR",
    "HF_ROOT",
    "OLLAMA_ROOT",
    "Case",
    "CaseError",
    "ExpectedAction",
    "ExpectedProblem",
    "case_files",
    "load_case",
    "parse_size",
]

CASES_DIR = Path(__file__).resolve().parent / "plan"
BASE_DIR = Path("/golden")  # the folder mlx.yaml is in: relative file:// paths resolve here
OLLAMA_ROOT = Path("/stores/ollama/models")
HF_ROOT = Path("/stores/hf/hub")

_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


class CaseError(ValueError):
    """The case file itself is malformed."""


@dataclass(frozen=True)
class ExpectedAction:
    id: str
    op: str
    kind: str
    subject: str
    download_bytes: int | None
    free_bytes: int | None
    reason_contains: tuple[str, ...]
    params: Mapping[str, Any] = field(default_factory=dict)
    reason_code: str | None = None  # checked when given


@dataclass(frozen=True)
class ExpectedProblem:
    contains: tuple[str, ...]
    model: str | None = None
    key: str | None = None
    check_model: bool = False  # model/key given in the case: compare them too


@dataclass(frozen=True)
class Case:
    name: str
    path: Path
    description: str
    known_bug: str | None
    spec_data: Mapping[str, Any]
    spec: Spec
    observed: Observed
    facts: RegistryFacts
    targets: tuple[str, ...]
    remote: dict[tuple[str, str], RemoteRepo] | None
    actions: tuple[ExpectedAction, ...] | None  # None: not checked (a problem-only case)
    warnings: tuple[tuple[str, ...], ...] | None
    problems: tuple[ExpectedProblem, ...]
    conflicts: tuple[tuple[str, ...], ...] | None = ()  # None: not checked
    host: Host | None = None  # None: not given (a `when:` then fails closed)
    skipped: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (id, phrases of its reason)


def case_files() -> list[Path]:
    return sorted(CASES_DIR.glob("*.yaml"))


def _read_yaml(path: Path) -> Any:
    yaml = YAML(typ="safe", pure=True)
    return yaml.load(path.read_text(encoding="utf-8"))


# -- small checked readers -----------------------------------------------------------------


def _mapping(
    value: Any, where: str, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise CaseError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = set(value) - allowed
    if unknown:
        raise CaseError(f"{where}: unknown keys {sorted(map(str, unknown))}")
    missing = required - set(value)
    if missing:
        raise CaseError(f"{where}: missing keys {sorted(missing)}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CaseError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _phrases(value: Any, where: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(x, str) and x for x in items):
        raise CaseError(f"{where}: expected a phrase or a list of phrases")
    return tuple(items)


def parse_size(value: Any, where: str = "size") -> int:
    """``4GB`` → 4_000_000_000, ``512MiB`` → 536_870_912, ints as they are."""
    if isinstance(value, bool):
        raise CaseError(f"{where}: expected a size, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match and match.group(2).lower() in _UNITS:
            number = float(match.group(1)) * _UNITS[match.group(2).lower()]
            if number.is_integer():
                return int(number)
    raise CaseError(f"{where}: expected a size such as 4GB or 512MiB, got {value!r}")


def _optional_size(value: Any, where: str) -> int | None:
    return None if value is None else parse_size(value, where)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def _commit(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise CaseError(f"{where}: quote commits (YAML may read digits as a number)")
    return value


# -- observed --------------------------------------------------------------------------------


def _layer(raw: Any, where: str, model: str, media_type: str | None = None) -> Layer:
    data = _mapping(raw, where, {"kind", "size", "digest", "present", "on_disk"}, {"size"})
    kind = data.get("kind", "config" if media_type else None)
    if media_type is None:
        if not isinstance(kind, str):
            raise CaseError(f"{where}: a layer needs a kind (model, params, template, ...)")
        media_type = OLLAMA_MEDIA_PREFIX + kind
    size = parse_size(data["size"], f"{where}.size")
    digest = str(data.get("digest") or _digest("layer", model, str(kind), str(size)))
    if data.get("present", True) is False:
        on_disk: int | None = None
    elif "on_disk" in data:
        on_disk = parse_size(data["on_disk"], f"{where}.on_disk")
    else:
        on_disk = size
    return Layer(media_type, digest, size, on_disk)


def _ollama_model(raw: Any, where: str) -> OllamaModel:
    data = _mapping(raw, where, {"name", "digest", "config", "layers"}, {"name"})
    source = parse_source(f"ollama://{data['name']}")
    assert isinstance(source, OllamaSource)
    config = (
        _layer(data["config"], f"{where}.config", data["name"], OLLAMA_CONFIG_TYPE)
        if data.get("config") is not None
        else None
    )
    layers = tuple(
        _layer(x, f"{where}.layers[{i}]", data["name"])
        for i, x in enumerate(_list(data.get("layers"), f"{where}.layers"))
    )
    return OllamaModel(
        host=source.host,
        namespace=source.namespace,
        model=source.model,
        tag=source.tag,
        manifest_path=OLLAMA_ROOT / source.manifest_relpath,
        manifest_digest=str(data.get("digest") or _digest("manifest", str(data["name"]))),
        config=config,
        layers=layers,
        mtime=0.0,
    )


def _file_entry(path: str, raw: Any, where: str) -> tuple[int, str, bool]:
    """(size, blob, present) of a snapshot file or a listed file."""
    if not isinstance(raw, dict):
        size = parse_size(raw, where)
        return size, _digest("blob", path, str(size)), True
    data = _mapping(raw, where, {"size", "blob", "present"}, {"size"})
    size = parse_size(data["size"], f"{where}.size")
    blob = str(data.get("blob") or _digest("blob", path, str(size)))
    return size, blob, bool(data.get("present", True))


def _remote_files(raw: Any, where: str) -> tuple[RemoteFile, ...]:
    files = _mapping(raw, where, set(_mapping_keys(raw)))
    out = []
    for path, entry in files.items():
        size, blob, present = _file_entry(str(path), entry, f"{where}.{path}")
        if not present:
            raise CaseError(f"{where}.{path}: a hub listing has no 'present'")
        out.append(RemoteFile(str(path), size, blob))
    return tuple(out)


def _mapping_keys(raw: Any) -> list[str]:
    return [str(k) for k in raw] if isinstance(raw, dict) else []


def _hf_repo(raw: Any, where: str, now: float = 0.0) -> HfRepo:
    data = _mapping(
        raw, where, {"id", "type", "refs", "revisions", "incomplete", "orphans"}, {"id"}
    )
    repo_id = str(data["id"])
    repo_type = data.get("type", "model")
    if repo_type not in ("model", "dataset", "space"):
        raise CaseError(f"{where}.type: expected model, dataset or space")
    folder = HF_ROOT / f"{repo_type}s--{repo_id.replace('/', '--')}"
    refs_raw = _mapping(data.get("refs"), f"{where}.refs", set(_mapping_keys(data.get("refs"))))
    refs = tuple(sorted((str(k), _commit(v, f"{where}.refs.{k}")) for k, v in refs_raw.items()))
    revisions_raw = data.get("revisions") or {}
    revisions = []
    for commit, rev_raw in _mapping(
        revisions_raw, f"{where}.revisions", set(_mapping_keys(revisions_raw))
    ).items():
        commit = _commit(commit, f"{where}.revisions")
        rw = f"{where}.revisions.{commit[:8]}"
        rev = _mapping(rev_raw, rw, {"files", "remote"})
        files_raw = rev.get("files") or {}
        files = []
        for path, entry in _mapping(
            files_raw, f"{rw}.files", set(_mapping_keys(files_raw))
        ).items():
            size, blob, present = _file_entry(str(path), entry, f"{rw}.files.{path}")
            files.append(
                HfFile(
                    str(path),
                    blob,
                    size if present else 0,  # the observer records 0 for a dangling link
                    present,
                    str(folder / "blobs" / blob),
                )
            )
        listed = _remote_files(rev["remote"], f"{rw}.remote") if "remote" in rev else None
        revisions.append(
            HfRevision(
                commit=commit,
                refs=tuple(name for name, c in refs if c == commit),
                files=tuple(sorted(files)),
                snapshot_path=folder / "snapshots" / commit,
                last_modified=0.0,
                listed=listed,
            )
        )
    blobs = folder / "blobs"
    return HfRepo(
        repo_type=repo_type,
        repo_id=repo_id,
        path=folder,
        refs=refs,
        revisions=tuple(sorted(revisions, key=lambda r: r.commit)),
        orphans=_file_facts(data.get("orphans"), f"{where}.orphans", blobs, "orphan", now),
        incomplete=_file_facts(
            data.get("incomplete"), f"{where}.incomplete", blobs, "incomplete", now
        ),
    )


def _age(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise CaseError(f"{where}: expected seconds or a duration such as 2h, got {value!r}")
    if isinstance(value, int | float):
        return float(value)
    try:
        return parse_duration(value).total_seconds()
    except (TypeError, ValueError):
        raise CaseError(
            f"{where}: expected seconds or a duration such as 2h, got {value!r}"
        ) from None


def _file_facts(raw: Any, where: str, folder: Path, kind: Any, now: float) -> tuple[FileFact, ...]:
    """Loose files in a blobs/ folder: ``{name, size, age | mtime}``."""
    out = []
    for i, entry in enumerate(_list(raw, where)):
        w = f"{where}[{i}]"
        data = _mapping(entry, w, {"name", "size", "age", "mtime"}, {"name", "size"})
        if ("age" in data) == ("mtime" in data):
            raise CaseError(f"{w}: give exactly one of age and mtime")
        mtime = float(data["mtime"]) if "mtime" in data else now - _age(data["age"], f"{w}.age")
        name = str(data["name"])
        match = re.match(r"^sha256[-:]([0-9a-f]{64})", name)
        digest = match.group(1) if match else None
        size = parse_size(data["size"], f"{w}.size")
        out.append(FileFact(folder / name, size, mtime, kind, digest))
    return tuple(out)


def _ollama_files(raw: Any, where: str, now: float) -> dict[str, Any]:
    data = _mapping(raw, where, {"orphans_known", "partials", "orphans"})
    blobs = OLLAMA_ROOT / "blobs"
    known = data.get("orphans_known", True)
    if not isinstance(known, bool):
        raise CaseError(f"{where}.orphans_known: expected true or false")
    return {
        "orphans_known": known,
        "partials": _file_facts(data.get("partials"), f"{where}.partials", blobs, "partial", now),
        "orphans": _file_facts(data.get("orphans"), f"{where}.orphans", blobs, "orphan", now),
    }


_APP_KINDS = ("link", "dangling", "file", "dir")


def _apps(raw: Any, where: str, spec: Spec | None) -> tuple[AppState, ...]:
    folders = _mapping(raw, where, set(_mapping_keys(raw)))
    declared = {app.path: (name, app.layout) for name, app in (spec.apps if spec else {}).items()}
    out = []
    for folder_text, entries_raw in folders.items():
        folder = _file_path(folder_text, f"{where} key")
        name, layout = declared.get(folder, (folder.name, "dir"))
        entries = []
        for i, entry in enumerate(_list(entries_raw, f"{where}.{folder_text}")):
            w = f"{where}.{folder_text}[{i}]"
            data = _mapping(entry, w, {"path", "kind", "target", "size"}, {"path", "kind"})
            kind = data["kind"]
            if kind not in _APP_KINDS:
                raise CaseError(f"{w}.kind: expected one of {', '.join(_APP_KINDS)}")
            is_link = kind in ("link", "dangling")
            if is_link != ("target" in data):
                raise CaseError(f"{w}: links and dangling links (only) need a target")
            target = _file_path(data["target"], f"{w}.target") if is_link else None
            path = Path(os.path.normpath(folder / str(data["path"])))
            size = parse_size(data.get("size", 0), f"{w}.size")
            entries.append(AppLink(path, kind, target, size))
        out.append(
            AppState(
                name,
                folder,
                layout,
                True,
                tuple(sorted(entries, key=lambda e: e.path)),
                declared=folder in declared,
            )
        )
    return tuple(out)


def _disk(raw: Any, where: str) -> tuple[DiskSpace, ...]:
    data = _mapping(raw, where, {"ollama", "hf"})
    out = []
    for store, root in (("ollama", OLLAMA_ROOT), ("hf", HF_ROOT)):
        if store in data:
            entry = _mapping(
                data[store], f"{where}.{store}", {"device", "free"}, {"device", "free"}
            )
            out.append(DiskSpace(root, int(entry["device"]), parse_size(entry["free"])))
    return tuple(out)


def _file_path(text: Any, where: str) -> Path:
    if not isinstance(text, str) or not text:
        raise CaseError(f"{where}: expected a path")
    path = Path(text)
    return Path(os.path.normpath(path if path.is_absolute() else BASE_DIR / path))


def build_observed(raw: Any, where: str = "observed", spec: Spec | None = None) -> Observed:
    data = _mapping(
        raw,
        where,
        {"ollama", "hf", "files", "disk", "now", "ollama_files", "apps", "hf_case_insensitive"},
    )
    now = data.get("now", 0)
    if isinstance(now, bool) or not isinstance(now, int | float):
        raise CaseError(f"{where}.now: expected POSIX seconds")
    now = float(now)
    ollama_raw = data.get("ollama")
    hf_raw = data.get("hf")
    models = tuple(
        _ollama_model(m, f"{where}.ollama[{i}]")
        for i, m in enumerate(_list(ollama_raw, f"{where}.ollama"))
    )
    repos = tuple(
        _hf_repo(r, f"{where}.hf[{i}]", now) for i, r in enumerate(_list(hf_raw, f"{where}.hf"))
    )
    files_raw = data.get("ollama_files")
    extra = _ollama_files(files_raw, f"{where}.ollama_files", now) if files_raw is not None else {}
    return Observed(
        ollama=OllamaStore(
            OLLAMA_ROOT,
            exists=ollama_raw is not None or files_raw is not None,
            models=models,
            **extra,
        ),
        hf=HfCache(
            HF_ROOT,
            exists=hf_raw is not None,
            repos=repos,
            case_insensitive=data.get("hf_case_insensitive") is True,
        ),
        daemon=None,
        apps=_apps(data.get("apps"), f"{where}.apps", spec),
        now=now,
        existing_files=frozenset(
            _file_path(p, f"{where}.files[{i}]")
            for i, p in enumerate(_list(data.get("files"), f"{where}.files"))
        ),
        disk=_disk(data.get("disk"), f"{where}.disk"),
    )


# -- registry, remote, spec --------------------------------------------------------------------


WORKSPACE = "golden"  # the workspace every case plans as


def build_facts(raw: Any, where: str = "registry") -> RegistryFacts:
    links_raw: Any = None
    if isinstance(raw, dict):
        top = _mapping(raw, where, {"models", "links"})
        raw, links_raw = top.get("models"), top.get("links")
        where_models = f"{where}.models"
    else:
        where_models = where
    models = []
    for i, entry in enumerate(_list(raw, where_models)):
        data = _mapping(
            entry,
            f"{where_models}[{i}]",
            {"source", "name", "revision", "owners"},
            {"source", "name"},
        )
        # Owned by this case's workspace unless ``owners`` says (``""``: before workspaces).
        owners = tuple(str(w) for w in _list(data.get("owners", [WORKSPACE]), "owners"))
        models.append(
            ManagedModel(
                str(data["source"]),
                str(data["name"]),
                data.get("revision"),
                0.0,
                tuple(sorted((w, str(data["name"])) for w in owners)),
            )
        )
    links = []
    for i, entry in enumerate(_list(links_raw, f"{where}.links")):
        w = f"{where}.links[{i}]"
        data = _mapping(
            entry, w, {"path", "target", "app", "model", "workspace"}, {"path", "target", "app"}
        )
        links.append(
            LinkRecord(
                _file_path(data["path"], f"{w}.path"),
                _file_path(data["target"], f"{w}.target"),
                str(data["app"]),
                str(data.get("model", "")),
                str(data.get("workspace", WORKSPACE)),
            )
        )
    return RegistryFacts(
        tuple(sorted(models, key=lambda m: m.source)),
        tuple(sorted(links, key=lambda x: x.path)),
        workspace=WORKSPACE,
    )


def build_remote(raw: Any, where: str = "remote") -> dict[tuple[str, str], RemoteRepo] | None:
    if raw is None:
        return None
    out: dict[tuple[str, str], RemoteRepo] = {}
    for i, entry in enumerate(_list(raw, where)):
        w = f"{where}[{i}]"
        data = _mapping(entry, w, {"repo", "revision", "commit", "files"}, {"repo", "commit"})
        revision = str(data.get("revision", "main"))
        files = (
            _remote_files(data["files"], f"{w}.files") if data.get("files") is not None else None
        )
        repo = str(data["repo"])
        out[(repo.lower(), revision)] = RemoteRepo(
            repo, revision, _commit(data["commit"], f"{w}.commit"), files
        )
    return out


def build_spec(raw: Any) -> Spec:
    return Spec.model_validate(raw, context={"base_dir": BASE_DIR})


def _expected_action(raw: Any, where: str) -> ExpectedAction:
    keys = {"id", "op", "kind", "subject", "download_bytes", "free_bytes", "reason_contains"}
    data = _mapping(raw, where, keys | {"params", "reason_code"}, keys)
    return ExpectedAction(
        id=str(data["id"]),
        op=str(data["op"]),
        kind=str(data["kind"]),
        subject=str(data["subject"]),
        download_bytes=_optional_size(data["download_bytes"], f"{where}.download_bytes"),
        free_bytes=_optional_size(data["free_bytes"], f"{where}.free_bytes"),
        reason_contains=_phrases(data["reason_contains"], f"{where}.reason_contains"),
        params=dict(_mapping(data.get("params"), f"{where}.params", _PARAM_KEYS)),
        reason_code=None if data.get("reason_code") is None else str(data["reason_code"]),
    )


_PARAM_KEYS = {
    "revision",
    "include",
    "exclude",
    "commit",
    "replaces",
    # links and cleanups
    "target",
    "app",
    "depends_on",
    "size",
    "mtime",
    "repo",
    "repo_type",
}


def _expected_problem(raw: Any, where: str) -> ExpectedProblem:
    if not isinstance(raw, dict):
        return ExpectedProblem(_phrases(raw, where))
    data = _mapping(raw, where, {"contains", "model", "key"}, {"contains"})
    return ExpectedProblem(
        _phrases(data["contains"], f"{where}.contains"),
        data.get("model"),
        data.get("key"),
        check_model=True,
    )


def load_case(path: Path) -> Case:
    raw = _read_yaml(path)
    top = {
        "description",
        "known_bug",
        "spec",
        "observed",
        "registry",
        "targets",
        "remote",
        "expected",
        "expected_problems",
        "host",
    }
    data = _mapping(raw, path.name, top, {"description", "spec"})
    if not isinstance(data["description"], str) or not data["description"].strip():
        raise CaseError(f"{path.name}: description must be a non-empty string")
    if "expected" not in data and "expected_problems" not in data:
        raise CaseError(f"{path.name}: give expected, expected_problems or both")
    actions: tuple[ExpectedAction, ...] | None = None
    warnings: tuple[tuple[str, ...], ...] | None = None
    conflicts: tuple[tuple[str, ...], ...] | None = ()
    if "expected" in data:
        expected = _mapping(
            data["expected"],
            "expected",
            {"actions", "warnings", "conflicts", "skipped"},
            {"actions"},
        )
        actions = tuple(
            _expected_action(a, f"expected.actions[{i}]")
            for i, a in enumerate(_list(expected["actions"], "expected.actions"))
        )
        if "warnings" in expected and expected["warnings"] is None:
            warnings = None  # `warnings: null`: not checked
        else:
            warnings = tuple(
                _phrases(w, f"expected.warnings[{i}]")
                for i, w in enumerate(_list(expected.get("warnings"), "expected.warnings"))
            )
        if "conflicts" in expected and expected["conflicts"] is None:
            conflicts = None
        else:
            conflicts = tuple(
                _phrases(c, f"expected.conflicts[{i}]")
                for i, c in enumerate(_list(expected.get("conflicts"), "expected.conflicts"))
            )
    skipped = tuple(
        _expected_skip(x, f"expected.skipped[{i}]")
        for i, x in enumerate(_list(_mapping_get(data.get("expected"), "skipped"), "skipped"))
    )
    problems = tuple(
        _expected_problem(p, f"expected_problems[{i}]")
        for i, p in enumerate(_list(data.get("expected_problems"), "expected_problems"))
    )
    targets = tuple(str(t) for t in _list(data.get("targets"), "targets"))
    known_bug = data.get("known_bug")
    if known_bug is not None and (not isinstance(known_bug, str) or not known_bug.strip()):
        raise CaseError(f"{path.name}: known_bug must say what is wrong")
    spec = build_spec(data["spec"])
    return Case(
        name=path.stem,
        path=path,
        description=data["description"].strip(),
        known_bug=known_bug,
        spec_data=data["spec"],
        spec=spec,
        observed=build_observed(data.get("observed"), spec=spec),
        facts=build_facts(data.get("registry")),
        targets=targets,
        remote=build_remote(data.get("remote")),
        actions=actions,
        warnings=warnings,
        problems=problems,
        conflicts=conflicts,
        host=_host(data.get("host")),
        skipped=skipped,
    )


def _mapping_get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def _expected_skip(raw: Any, where: str) -> tuple[str, tuple[str, ...]]:
    data = _mapping(raw, where, {"id", "reason_contains"}, {"id", "reason_contains"})
    return str(data["id"]), _phrases(data["reason_contains"], f"{where}.reason_contains")


def _host(raw: Any) -> Host | None:
    if raw is None:
        return None
    data = _mapping(raw, "host", {"name", "memory", "os"}, {"name"})
    os_name = data.get("os")
    if os_name not in (None, "macos", "linux"):
        raise CaseError(f"host.os: expected macos or linux, got {os_name!r}")
    memory = _optional_size(data.get("memory"), "host.memory")
    return Host(str(data["name"]), memory, os_name)
