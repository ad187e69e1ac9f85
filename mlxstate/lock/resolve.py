"""What a declared model resolves to upstream right now: the network half of ``mlx lock``
(docs/lock.md, "What is locked").

- ``hf://`` through huggingface_hub: ``HfApi.model_info(repo, revision=...,
  files_metadata=True)`` gives the commit and, per file, its size and either the LFS sha256
  or the git blob id. ``include``/``exclude`` select files exactly as downloads do.
- ``ollama://`` through the registry's distribution API: ``GET /v2/<namespace>/<model>/
  manifests/<tag>``; the digest is the sha256 of the manifest bytes as served, which is what
  Ollama stores and lists as the model's digest.

Every failure is a :class:`ResolveError`: one line naming the model and what to do.
Nothing here writes anything.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlxstate.errors import MlxError
from mlxstate.facts import RemoteFile
from mlxstate.hf_errors import TOKEN_HINT, describe_hf_error, hub_endpoint
from mlxstate.lock.model import HfFile, HfLock, LockEntry, OllamaLayer, OllamaLock, input_hash
from mlxstate.plan.files import wanted_files
from mlxstate.sources import OLLAMA_DEFAULT_HOST, FileSource, HfSource, OllamaSource

if TYPE_CHECKING:
    import httpx

    from mlxstate.mlxyaml.models import ModelSpec
    from mlxstate.settings import Settings

__all__ = [
    "MANIFEST_MEDIA_TYPE",
    "ResolveError",
    "manifest_url",
    "registry_base",
    "resolve_hf",
    "resolve_model",
    "resolve_ollama",
]

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
# A manifest lists a handful of blobs; anything this big is not one (and is not read whole).
MAX_MANIFEST_BYTES = 1 << 20
_DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")


class ResolveError(MlxError):
    """A model that could not be resolved upstream. ``reason`` is the line without the
    ``models.NAME:`` prefix (for output placed at the model's line)."""

    def __init__(self, name: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"models.{name}: {reason}", hint=hint)
        self.name = name
        self.reason = reason


# --- Hugging Face -----------------------------------------------------------------------------


def resolve_hf(
    name: str,
    source: HfSource,
    revision: str,
    include: Sequence[str] | None,
    exclude: Sequence[str] | None,
    settings: Settings,
    *,
    api: Any = None,
) -> HfLock:
    """The commit ``revision`` names now and the files a download of it would fetch."""
    if api is None:
        from huggingface_hub import HfApi

        # The endpoint is passed explicitly: huggingface_hub reads HF_ENDPOINT once, at import.
        api = HfApi(endpoint=settings.hf_endpoint, token=settings.hf_token or False)
    info = _model_info(api, name, source, revision, settings)
    commit = str(getattr(info, "sha", "") or "")
    if not _COMMIT_RE.fullmatch(commit):
        where = hub_endpoint(settings.hf_endpoint)
        raise ResolveError(name, f"the hub at {where} gave no commit for {source}@{revision}")
    try:
        files = {f.path: f for f in (_hf_file(s) for s in getattr(info, "siblings", None) or ())}
    except (TypeError, ValueError, OverflowError):
        where = hub_endpoint(settings.hf_endpoint)
        raise ResolveError(name, f"the hub at {where} sent a bad file list for {source}") from None
    listing = [RemoteFile(f.path, f.size, f.sha256 or f.blob_id or "") for f in files.values()]
    wanted = wanted_files(listing, include, exclude)
    if include is not None and not wanted:
        patterns = ", ".join(include)
        raise ResolveError(
            name,
            f"include [{patterns}] matches no file of {source}@{revision} "
            f"({len(files)} files at {commit[:12]})",
            hint="check the patterns against the repo's file list on the hub",
        )
    return HfLock(revision, commit, tuple(files[f.path] for f in wanted))


def _model_info(api: Any, name: str, source: HfSource, revision: str, settings: Settings) -> Any:
    token_hint = f"${settings.hf_token_env} (settings.huggingface.token_env)"
    try:
        info = api.model_info(source.repo_id, revision=revision, files_metadata=True)
        if getattr(info, "gated", False):
            # A gated repo's listing is public; its files are not. Without a token the
            # download would fail later, so say it now; with one, ask the hub if it may read.
            if not settings.hf_token:
                raise ResolveError(
                    name,
                    f"{source} is gated: accept its terms on the hub and put a token of that "
                    f"account in {token_hint}",
                )
            api.auth_check(source.repo_id)
    except ResolveError:
        raise
    except Exception as exc:  # any failure of the library: one line, see hf_errors
        endpoint = getattr(api, "endpoint", None) or settings.hf_endpoint
        line = describe_hf_error(exc, source.repo_id, revision, endpoint, "lookup")
        # Name the variable this mlx.yaml really reads the token from.
        raise ResolveError(name, line.replace(TOKEN_HINT, token_hint)) from None
    return info


def _hf_file(sibling: Any) -> HfFile:
    lfs = getattr(sibling, "lfs", None)
    sha256 = _field(lfs, "sha256") if lfs is not None else None
    if sha256:
        size = _field(lfs, "size")
        return HfFile(
            str(sibling.rfilename),
            int(size if size is not None else sibling.size or 0),
            sha256=str(sha256),
        )
    blob_id = getattr(sibling, "blob_id", None)
    return HfFile(
        str(sibling.rfilename),
        int(getattr(sibling, "size", None) or 0),
        blob_id=str(blob_id) if blob_id else None,
    )


def _field(value: Any, key: str) -> Any:
    """``BlobLfsInfo`` is a dict with attributes in some versions of the library, and a
    plain dict in others."""
    found = getattr(value, key, None)
    if found is None and isinstance(value, dict):
        found = value.get(key)
    return found


# --- Ollama -----------------------------------------------------------------------------------


def registry_base(source: OllamaSource, settings: Settings) -> str:
    """Where ``source`` is pulled from: Ollama's own registry at ``settings.ollama.registry``;
    any other host (``hf.co``, a private registry) at its own address over HTTPS."""
    if source.host.lower() == OLLAMA_DEFAULT_HOST:
        return settings.ollama_registry.rstrip("/")
    return f"https://{source.host}"


def manifest_url(source: OllamaSource, settings: Settings) -> str:
    base = registry_base(source, settings)
    return f"{base}/v2/{source.namespace}/{source.model}/manifests/{source.tag}"


def resolve_ollama(
    name: str,
    source: OllamaSource,
    settings: Settings,
    *,
    client: httpx.Client | None = None,
) -> OllamaLock:
    """The manifest the registry serves for the tag now: its digest and blobs."""
    import httpx

    url = manifest_url(source, settings)
    where = registry_base(source, settings)
    http = client or httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0), follow_redirects=True)
    try:
        with http.stream("GET", url, headers={"Accept": MANIFEST_MEDIA_TYPE}) as response:
            _check_status(name, source, where, response.status_code)
            raw = _read_capped(response)
    except httpx.HTTPError as exc:
        raise ResolveError(
            name,
            f"cannot reach the registry at {where} for {source}: {type(exc).__name__}",
            hint="check the network, or settings.ollama.registry",
        ) from None
    finally:
        if client is None:
            http.close()
    if raw is None:
        raise ResolveError(name, f"the registry at {where} sent an oversized manifest for {source}")
    layers = _manifest_blobs(name, source, where, raw)
    full = f"{source.host}/{source.namespace}/{source.model}:{source.tag}"
    return OllamaLock(full, "sha256:" + hashlib.sha256(raw).hexdigest(), layers)


def _check_status(name: str, source: OllamaSource, where: str, status: int) -> None:
    if status == 200:
        return
    if status == 404:
        reason = f"{source} not found at the registry {where} (check the model name and tag)"
    elif status in (401, 403):
        reason = f"the registry at {where} refused {source} (HTTP {status}): is it private?"
    elif status == 429:
        reason = f"the registry at {where} is rate-limiting requests (HTTP 429): try later"
    elif status >= 500:
        reason = f"the registry at {where} failed with HTTP {status} for {source}: try later"
    else:
        reason = f"the registry at {where} answered HTTP {status} for {source}"
    raise ResolveError(name, reason)


def _read_capped(response: httpx.Response) -> bytes | None:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_MANIFEST_BYTES:
            return None
    return bytes(body)


def _manifest_blobs(
    name: str, source: OllamaSource, where: str, raw: bytes
) -> tuple[OllamaLayer, ...]:
    """The config blob, then the layers in manifest order; anything else is not a manifest."""
    try:
        doc = json.loads(raw)
        entries = [doc["config"], *doc["layers"]]
        return tuple(_layer(entry) for entry in entries)
    except (ValueError, KeyError, TypeError, RecursionError):
        raise ResolveError(
            name, f"the registry at {where} sent something that is not a manifest for {source}"
        ) from None


def _layer(entry: Any) -> OllamaLayer:
    digest, size, media_type = entry["digest"], entry["size"], entry["mediaType"]
    if not isinstance(digest, str) or not _DIGEST_RE.fullmatch(digest):
        raise ValueError("bad digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError("bad size")
    if not isinstance(media_type, str):
        raise ValueError("bad media type")
    return OllamaLayer(digest, size, media_type)


# --- any model --------------------------------------------------------------------------------


def resolve_model(
    name: str,
    spec: ModelSpec,
    settings: Settings,
    *,
    hf_api: Any = None,
    client: httpx.Client | None = None,
) -> LockEntry:
    """The lock entry of one declared model (hf:// or ollama://; see ``lockable``)."""
    src = spec.parsed_source
    digest = input_hash(spec)
    if isinstance(src, HfSource):
        hf = resolve_hf(
            name,
            src,
            spec.effective_revision or "main",
            spec.include,
            spec.exclude,
            settings,
            api=hf_api,
        )
        return _checked(name, LockEntry(str(src), digest, hf=hf))
    if isinstance(src, OllamaSource):
        ollama = resolve_ollama(name, src, settings, client=client)
        return _checked(name, LockEntry(str(src), digest, ollama=ollama))
    assert isinstance(src, FileSource)
    raise ResolveError(name, f"{src} is on disk already; there is nothing upstream to lock")


def _checked(name: str, entry: LockEntry) -> LockEntry:
    """What upstream answered, refused when plan and apply would refuse it in the lock (a file
    path outside the repo, a sha256 that is not one): never written to mlx.lock."""
    from mlxstate.lock.use import entry_problem

    bad = entry_problem(entry)
    if bad is not None:
        raise ResolveError(name, f"upstream answered an unusable value for {entry.source}: {bad}")
    return entry
