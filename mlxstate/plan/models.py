"""The per-model diff: each declared model against what its store holds.

- declared and absent → create (``ollama.pull`` / ``hf.download``); ``file://`` sources are
  only checked: a missing path is a plan problem, never an action;
- present but broken (missing or short blob, dangling snapshot link, files the hub listing
  and include/exclude say should be there) → update (repair);
- an HF revision that is not cached (a pinned commit, a branch not fetched, or — with remote
  facts from ``--refresh`` — a branch whose hub head moved) → update, old → new in the reason;
- with mlx.lock pins: the locked HF commit (its file list from the lock) and the locked
  Ollama manifest are the target; installed but different → update, "observed differs from
  the lock" (docs/lock.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from mlxstate.facts import HfFile, HfRepo, HfRevision, OllamaModel, RemoteFile, RemoteRepo
from mlxstate.keys import ollama_key
from mlxstate.lock.model import HfLock, OllamaLock
from mlxstate.lock.use import same_manifest
from mlxstate.mlxyaml.models import ModelSpec
from mlxstate.plan.actions import Action, PlanProblem, ReasonCode
from mlxstate.plan.context import Context, Draft
from mlxstate.plan.files import wanted_files
from mlxstate.plan.ownership import claim, delete, source_change
from mlxstate.plan.params import DownloadParams, PullParams
from mlxstate.sources import FileSource, HfSource, OllamaSource
from mlxstate.text import human_bytes

__all__ = ["plan_model"]

_COMMIT = re.compile(r"[0-9a-f]{40}")


def plan_model(cx: Context, out: Draft, name: str, m: ModelSpec) -> None:
    src = m.parsed_source
    if isinstance(src, FileSource):
        if src.path not in cx.observed.existing_files:
            out.problems.append(
                PlanProblem(
                    f"models.{name}: {src} does not exist (file:// sources are never downloaded)",
                    name,
                    "source",
                )
            )
        return
    if m.ensure == "absent":
        delete(cx, out, name, src, "ensure: absent", "ensure-absent")
        return
    pin = cx.pins.get(name)
    if isinstance(src, OllamaSource):
        action = _ollama(cx, name, src, cx.ollama.get(ollama_key(src)))
        if pin is not None and pin.ollama is not None:
            action = _ollama_locked(name, src, cx.ollama.get(ollama_key(src)), action, pin.ollama)
    elif pin is not None and pin.hf is not None:
        action = _hf_locked(name, m, src, cx.hf.get(cx.key(src)), pin.hf)
    else:
        assert isinstance(src, HfSource)
        action = _hf(cx, name, m, src, cx.hf.get(cx.key(src)))
    action = source_change(cx, out, name, m, src, action)
    if action is not None:
        out.actions.append(action)
    if action is None or action.op == "update":
        claim(cx, out, name, src)


def _ollama(cx: Context, name: str, src: OllamaSource, model: OllamaModel | None) -> Action | None:
    if model is None:
        return _ollama_pull(name, src, _hf_gguf_for(cx, src))
    if model.status == "broken":
        missing = sum(x.size for x in model.all_layers if not x.ok)
        reason = "repair: " + "; ".join(model.problems)
        return Action(
            f"model/{name}",
            "update",
            "ollama.pull",
            str(src),
            missing,
            0,
            reason,
            name,
            reason_code="repair",
        )
    return None


def _ollama_locked(
    name: str, src: OllamaSource, model: OllamaModel | None, action: Action | None, lock: OllamaLock
) -> Action | None:
    """The pull (if any) carries the locked digest; an intact model whose manifest is not
    the locked one is updated to it."""
    if action is None and model is not None and not same_manifest(model, lock):
        installed = f"sha256:{model.manifest_digest[:12]}"
        action = Action(
            f"model/{name}",
            "update",
            "ollama.pull",
            str(src),
            sum(x.size for x in lock.layers),
            0,
            f"observed differs from the lock: installed {installed}, locked {lock.digest[:19]}",
            name,
            reason_code="lock-differs",
        )
    if action is None:
        return None
    return replace(action, params=replace(action.params_as(PullParams), locked_digest=lock.digest))


def _ollama_pull(name: str, src: OllamaSource, local: HfFile | None) -> Action:
    if local is None:
        return Action(
            f"model/{name}",
            "create",
            "ollama.pull",
            str(src),
            None,
            0,
            "declared, not present",
            name,
            reason_code="declared-not-present",
        )
    reason = (
        f"declared, not present; its GGUF ({human_bytes(local.size)}) is in the HF "
        "cache and will be linked, not downloaded"
    )
    extra = PullParams(seed_blob=local.blob_file, seed_sha256=local.blob, seed_size=local.size)
    return Action(
        f"model/{name}",
        "create",
        "ollama.pull",
        str(src),
        None,
        0,
        reason,
        name,
        extra,
        "declared-not-present",
    )


def _hf_gguf_for(cx: Context, src: OllamaSource) -> HfFile | None:
    """For ``ollama://hf.co/ORG/REPO:QUANT``: the cached LFS GGUF of that repo whose name
    carries the quant (its blob name is the sha256 Ollama will ask for)."""
    if not src.is_huggingface:
        return None
    # Ollama lowercases hf.co names: the repo it pulls is the cached one of any case.
    wanted = f"{src.namespace}/{src.model}".lower()
    repo = next((r for r in cx.hf.values() if r.repo_id.lower() == wanted), None)
    if repo is None:
        return None
    quant = src.tag.lower()
    files = [
        f
        for rev in repo.revisions
        for f in rev.files
        if f.present and f.is_lfs and f.path.lower().endswith(".gguf") and quant in f.path.lower()
    ]
    return min(files, key=lambda f: f.path) if len(files) >= 1 and quant != "latest" else None


@dataclass(frozen=True)
class _Want:
    """The revision a declared HF model wants: cached locally and (``--refresh``) on the hub."""

    name: str
    pinned: bool
    local: str | None
    remote: RemoteRepo | None

    @property
    def target(self) -> str | None:
        return self.remote.commit if self.remote is not None and not self.pinned else self.local

    @property
    def listing(self) -> tuple[RemoteFile, ...] | None:
        remote = self.remote
        return remote.files if remote is not None and remote.commit == self.target else None


def _hf(cx: Context, name: str, m: ModelSpec, src: HfSource, repo: HfRepo | None) -> Action | None:
    want = m.revision or "main"
    pinned = bool(_COMMIT.fullmatch(want))
    local = want if pinned else (repo.ref(want) if repo else None)
    wanted = _Want(want, pinned, local, cx.remote.get((src.repo_id.lower(), want)))
    opts = DownloadParams(
        revision=want,
        include=None if m.include is None else tuple(m.include),
        exclude=None if m.exclude is None else tuple(m.exclude),
    )
    target = wanted.target
    rev = repo.revision(target) if repo is not None and target else None
    if rev is None:
        return _hf_not_cached(name, m, src, repo, wanted, opts)
    return _hf_repair(name, m, src, repo, rev, wanted.listing, opts)


def _hf_locked(
    name: str, m: ModelSpec, src: HfSource, repo: HfRepo | None, lock: HfLock
) -> Action | None:
    """The locked commit is the target, and the lock's file list says what it holds."""
    want = m.revision or "main"
    listing = tuple(RemoteFile(f.path, f.size, f.sha256 or f.blob_id or "") for f in lock.files)
    opts = DownloadParams(
        revision=want,
        include=None if m.include is None else tuple(m.include),
        exclude=None if m.exclude is None else tuple(m.exclude),
        commit=lock.commit,
    )
    rev = repo.revision(lock.commit) if repo is not None else None
    if rev is not None:
        return _hf_repair(name, m, src, repo, rev, listing, opts)
    size = _download_size(listing, m, repo)
    if repo is None:
        reason = f"declared, not present; locked at {lock.commit[:12]}"
        return Action(
            f"model/{name}",
            "create",
            "hf.download",
            str(src),
            size,
            0,
            reason,
            name,
            opts,
            "declared-not-present",
        )
    local = repo.ref(want)
    here = f"{want} is {local[:12]} here" if local else f"{want} is not cached"
    reason = f"observed differs from the lock: {here}, the lock pins {lock.commit[:12]}"
    return _hf_update(name, src, size, reason, opts, "lock-differs")


def _hf_not_cached(
    name: str, m: ModelSpec, src: HfSource, repo: HfRepo | None, wanted: _Want, opts: DownloadParams
) -> Action:
    listing = wanted.listing
    size = _download_size(listing, m, repo) if listing is not None else None
    if repo is None:
        return Action(
            f"model/{name}",
            "create",
            "hf.download",
            str(src),
            size,
            0,
            "declared, not present",
            name,
            opts,
            "declared-not-present",
        )
    reason, code = _revision_reason(wanted)
    return _hf_update(name, src, size, reason, replace(opts, commit=wanted.target), code)


def _hf_repair(
    name: str,
    m: ModelSpec,
    src: HfSource,
    repo: HfRepo | None,
    rev: HfRevision,
    listing: Iterable[RemoteFile] | None,
    opts: DownloadParams,
) -> Action | None:
    expected = listing if listing is not None else rev.remote
    # A dangling file the patterns exclude is never fetched by apply: not a repair.
    dangling = {f.path for f in wanted_files(_as_listing(rev), m.include, m.exclude)}
    absent = (set(rev.dangling) & dangling) | _missing_files(rev, expected, m)
    missing = sorted(absent)
    if not missing:
        return None
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    size = (
        _download_size([f for f in expected or () if f.path in absent], m, repo)
        if expected
        else None
    )
    reason = f"repair: {len(missing)} file{'s' if len(missing) != 1 else ''} missing ({shown})"
    return _hf_update(name, src, size, reason, replace(opts, commit=rev.commit), "repair")


def _hf_update(
    name: str, src: HfSource, size: int | None, reason: str, opts: DownloadParams, code: ReasonCode
) -> Action:
    return Action(
        f"model/{name}", "update", "hf.download", str(src), size, 0, reason, name, opts, code
    )


def _as_listing(rev: HfRevision) -> list[RemoteFile]:
    return [RemoteFile(f.path, f.size, f.blob) for f in rev.files]


def _missing_files(
    rev: HfRevision, expected: Iterable[RemoteFile] | None, m: ModelSpec
) -> set[str]:
    if expected is None:
        return set()
    return {
        f.path for f in wanted_files(expected, m.include, m.exclude) if not rev.has_file(f.path)
    }


def _download_size(files: Iterable[RemoteFile], m: ModelSpec, repo: HfRepo | None) -> int:
    """Bytes to fetch: wanted files whose blob the repo does not hold yet (blobs are shared
    across revisions, so a new revision only costs its new blobs)."""
    have = {f.blob for r in repo.revisions for f in r.files if f.present} if repo else set()
    blobs = {f.blob: f.size for f in wanted_files(files, m.include, m.exclude)}
    return sum(size for blob, size in blobs.items() if blob not in have)


def _revision_reason(wanted: _Want) -> tuple[str, ReasonCode]:
    want, local, remote = wanted.name, wanted.local, wanted.remote
    if wanted.pinned:
        return f"pinned commit {want[:12]} is not cached", "revision-not-cached"
    if remote is not None and local and remote.commit != local:
        return f"{want}: {local[:12]} → {remote.commit[:12]} (new on the hub)", "revision-moved"
    if local:
        return f"{want} points to {local[:12]}, which is not cached", "revision-not-cached"
    return f"revision {want!r} is not cached", "revision-not-cached"
