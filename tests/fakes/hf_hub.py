"""A fake Hugging Face Hub on 127.0.0.1, good enough for the real ``snapshot_download``.

Serves in-memory repos (model, dataset, space) with the endpoints huggingface_hub 2.4.0
calls (checked by running it, see ``tests/test_fakes.py``)::

    GET  /api/{type}s/{repo}[/revision/{rev}]         info: {"id","sha","siblings",...}
                                                      ?blobs=true (files_metadata): per
                                                      sibling size, blobId, lfs.sha256
    GET  /api/{type}s/{repo}/auth-check               200, or 401/403 GatedRepo
    GET  /api/{type}s/{repo}/tree/{rev}[/{path}]      ?recursive=&expand= (snapshot_download)
    POST /api/{type}s/{repo}/paths-info/{rev}         form: paths=..., expand=
    HEAD /[{type}s/]{repo}/resolve/{rev}/{path}       X-Repo-Commit, ETag, Content-Length
    GET  same                                         the bytes; honours Range (206)

``snapshot_download(repo_id, revision="main")`` makes: one revision call (skipped when the
revision is a 40-hex commit), one tree call, then per file one HEAD and one GET (a file
already in the cache costs nothing). LFS files are listed with ``lfs.oid`` = sha256 and
served with ``ETag: "<sha256>"``; small files with their git blob sha1. There is never an
``X-Xet-Hash`` header nor an ``xetHash`` field, so the library (even with hf_xet installed)
always downloads over plain HTTP. 404s carry ``X-Error-Code`` RepoNotFound,
RevisionNotFound or EntryNotFound (with ``X-Repo-Commit``), as the Hub does.

Pointing the library at the fake: huggingface_hub reads ``HF_ENDPOINT`` once, when
``huggingface_hub.constants`` is first imported, so setting the variable later has no
effect on it. Pass ``endpoint=hub.url`` explicitly (``snapshot_download``,
``hf_hub_download``, ``HfApi(endpoint=...)`` all take it); that is what the tests do.
The ``fake_hub`` fixture also sets ``HF_ENDPOINT`` for code that reads it itself.
Set ``HF_HUB_DISABLE_TELEMETRY=1`` (the test conftest does).

Switches for a hostile or unusual hub (each off by default):

- ``plain_404s = True``: unknown repos answer a bare 404 without ``X-Error-Code`` (as a
  mirror or a proxy does), which the library reports as a plain ``HfHubHTTPError``;
- ``gate(repo_id)``: the repo's info and listing are public (info says ``"gated":
  "manual"``), but its files and ``/api/models/{repo}/auth-check`` answer 401 (403 with a
  token) with ``X-Error-Code: GatedRepo``, as the Hub does for gated repos;
- ``require_token(token)``: every request must carry ``Authorization: Bearer <token>``;
  a wrong one gets 401 "Invalid credentials in Authorization header";
- ``truncate_bodies = True``: every file GET announces its full ``Content-Length`` but
  sends only half of the bytes, then closes the connection;
- ``tamper[path] = bytes``: the file at ``path`` (any repo) is served with those bytes
  instead, under its true ETag (a corrupting mirror: the listing and the ETag still name
  the real sha256; give bytes of the same length to get past the library's size check).

How the library reacts to the fault knobs (observed with 2.4.0):

- ``fail(".*/resolve/.*", 500, method="GET")``: not retried; ``HfHubHTTPError`` at once,
  no blob and no ``.incomplete`` left.
- a 5xx on HEAD or on ``/api/.../tree`` IS retried with backoff (1+2+4+8+8 s, ~23 s) before
  ``LocalEntryNotFoundError``: use ``times=1`` (a transient error, then success) or a 4xx
  such as 403 (``LocalEntryNotFoundError`` at once) to keep tests fast.
- ``drop(..., method="GET")``: the library sleeps 1 s and retries. It reads 10 MB chunks,
  so below 10 MB it restarts from byte 0 (no ``Range``); past a chunk it resumes with
  ``Range: bytes=N-`` (answered 206 here).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from tests.builders.common import git_blob_sha1
from tests.builders.hf_cache import REPO_TYPES, FileFacts, describe_files
from tests.fakes._server import Exchange, Fault, LoopbackServer

_API_ACTIONS = ("revision", "tree", "paths-info", "auth-check")
_LAST_MODIFIED = "2024-01-01T00:00:00.000Z"


@dataclass
class HubRepo:
    repo_id: str
    repo_type: str
    commits: dict[str, dict[str, FileFacts]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit

    def resolve(self, revision: str) -> str | None:
        """Commit of a branch, tag or full commit hash; None if unknown."""
        if revision in self.refs:
            return self.refs[revision]
        return revision if revision in self.commits else None


class _NotFound(Exception):
    def __init__(self, code: str, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.commit = commit


class FakeHfHub(LoopbackServer):
    """In-memory Hub. Add content with :meth:`add_repo` / :meth:`push`, then point at ``url``."""

    def __init__(self) -> None:
        super().__init__()
        self._repos: dict[tuple[str, str], HubRepo] = {}
        self._state = threading.Lock()
        self.plain_404s = False
        self.truncate_bodies = False
        self.tamper: dict[str, bytes] = {}
        self._gated: set[str] = set()
        self._token: str | None = None

    # --- switches -----------------------------------------------------------------------------

    def gate(self, repo_id: str) -> None:
        """Make the repo's files need a token and accepted terms (401/403 ``GatedRepo``)."""
        with self._state:
            self._gated.add(repo_id)

    def require_token(self, token: str) -> None:
        """Refuse every request without ``Authorization: Bearer <token>``."""
        self._token = token

    # --- content ------------------------------------------------------------------------------

    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        *,
        repo_type: str = "model",
        branch: str = "main",
        lfs: Collection[str] | None = None,
    ) -> str:
        """Create (or replace) a repo with one commit on ``branch``; returns the commit."""
        if repo_type not in REPO_TYPES:
            raise ValueError(f"unknown repo type {repo_type!r}")
        with self._state:
            self._repos[(repo_type, repo_id)] = HubRepo(repo_id, repo_type)
        return self.push(repo_id, files, repo_type=repo_type, branch=branch, lfs=lfs)

    def push(
        self,
        repo_id: str,
        files: Mapping[str, bytes],
        *,
        repo_type: str = "model",
        branch: str = "main",
        lfs: Collection[str] | None = None,
    ) -> str:
        """Add a commit whose tree is exactly ``files`` and move ``branch`` to it."""
        facts = describe_files(files, lfs=lfs)
        with self._state:
            repo = self._repos[(repo_type, repo_id)]
            seed = f"{repo_type}/{repo_id}#{len(repo.commits)}:" + ",".join(
                f"{p}={f.etag}" for p, f in sorted(facts.items())
            )
            commit = git_blob_sha1(seed.encode())
            repo.commits[commit] = facts
            repo.refs[branch] = commit
        return commit

    def set_ref(self, repo_id: str, ref: str, commit: str, *, repo_type: str = "model") -> None:
        """Point a branch or tag at an existing commit."""
        with self._state:
            repo = self._repos[(repo_type, repo_id)]
            if commit not in repo.commits:
                raise KeyError(commit)
            repo.refs[ref] = commit

    def delete_ref(self, repo_id: str, ref: str, *, repo_type: str = "model") -> None:
        with self._state:
            del self._repos[(repo_type, repo_id)].refs[ref]

    def delete_repo(self, repo_id: str, *, repo_type: str = "model") -> None:
        with self._state:
            del self._repos[(repo_type, repo_id)]

    def repo(self, repo_id: str, *, repo_type: str = "model") -> HubRepo:
        with self._state:
            return self._repos[(repo_type, repo_id)]

    def files(
        self, repo_id: str, revision: str = "main", *, repo_type: str = "model"
    ) -> dict[str, FileFacts]:
        """The files of a repo at a revision (branch, tag or commit)."""
        repo = self.repo(repo_id, repo_type=repo_type)
        commit = repo.resolve(revision)
        if commit is None:
            raise KeyError(revision)
        return dict(repo.commits[commit])

    # --- HTTP ---------------------------------------------------------------------------------

    def send_fault(self, exchange: Exchange, fault: Fault) -> None:
        assert fault.status is not None
        exchange.send_json(
            fault.status, {"error": fault.message}, {"X-Error-Message": fault.message}
        )

    def handle(self, exchange: Exchange) -> None:
        parts = exchange.request.parts
        if self._token is not None and not self._authorized(exchange):
            return
        try:
            if (
                len(parts) >= 3
                and parts[0] == "api"
                and parts[1] in ("models", "datasets", "spaces")
            ):
                self._api(exchange, parts[1][:-1], parts[2:])
            elif "resolve" in parts and exchange.method in ("GET", "HEAD"):
                self._resolve(exchange, parts)
            else:
                exchange.send_json(404, {"error": "Not Found"})
        except _NotFound as e:
            if self.plain_404s and e.code == "RepoNotFound":
                exchange.send_json(404, {"error": "Not Found"})
                return
            headers = {"X-Error-Code": e.code, "X-Error-Message": e.message}
            if e.commit is not None:
                headers["X-Repo-Commit"] = e.commit
            exchange.send_json(404, {"error": e.message}, headers)

    def _authorized(self, exchange: Exchange) -> bool:
        sent = exchange.request.headers.get("authorization")
        if sent == f"Bearer {self._token}":
            return True
        message = "Invalid credentials in Authorization header"
        exchange.send_json(401, {"error": message}, {"X-Error-Message": message})
        return False

    def _lookup(
        self, repo_type: str, repo_id: str, revision: str
    ) -> tuple[str, dict[str, FileFacts]]:
        with self._state:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                raise _NotFound("RepoNotFound", "Repository not found")
            commit = repo.resolve(revision)
            if commit is None:
                raise _NotFound("RevisionNotFound", f"Invalid rev id: {revision}")
            return commit, repo.commits[commit]

    @staticmethod
    def _split_repo(rest: list[str]) -> tuple[str, list[str]]:
        """``org/name/<action>...`` or legacy ``name/<action>...`` -> (repo_id, tail)."""
        if len(rest) >= 2 and rest[1] not in _API_ACTIONS:
            return f"{rest[0]}/{rest[1]}", rest[2:]
        return rest[0], rest[1:]

    def _api(self, ex: Exchange, repo_type: str, rest: list[str]) -> None:
        repo_id, tail = self._split_repo(rest)
        action = tail[0] if tail else "revision"
        revision = tail[1] if len(tail) >= 2 else "main"
        if action == "revision" and ex.method == "GET" and len(tail) in (0, 2):
            commit, files = self._lookup(repo_type, repo_id, revision)
            info = self._info(repo_type, repo_id, commit, files, ex)
            info["gated"] = "manual" if repo_id in self._gated else False
            ex.send_json(200, info)
        elif action == "auth-check" and ex.method == "GET" and len(tail) == 1:
            self._lookup(repo_type, repo_id, "main")
            if repo_id in self._gated:
                self._refuse_gated(ex, repo_id)
            else:
                ex.send_json(200, {})
        elif action == "tree" and ex.method == "GET" and len(tail) >= 2:
            commit, files = self._lookup(repo_type, repo_id, revision)
            recursive = ex.request.query.get("recursive", ["false"])[0].lower() == "true"
            listing = _tree(files, "/".join(tail[2:]), recursive=recursive)
            if listing is None:
                raise _NotFound("EntryNotFound", f"{'/'.join(tail[2:])} does not exist", commit)
            ex.send_json(200, listing)
        elif action == "paths-info" and ex.method == "POST" and len(tail) >= 2:
            commit, files = self._lookup(repo_type, repo_id, revision)
            form = parse_qs(ex.request.body.decode(), keep_blank_values=True)
            ex.send_json(200, _paths_info(files, form.get("paths", [])))
        else:
            ex.send_json(404, {"error": "Not Found"})

    @staticmethod
    def _info(
        repo_type: str, repo_id: str, commit: str, files: Mapping[str, FileFacts], ex: Exchange
    ) -> dict[str, object]:
        with_blobs = ex.request.query.get("blobs", ["false"])[0].lower() == "true"
        siblings: list[dict[str, object]] = []
        for path, fact in sorted(files.items()):
            sibling: dict[str, object] = {"rfilename": path}
            if with_blobs:
                sibling.update(size=fact.size, blobId=fact.blob_id)
                if fact.lfs and fact.pointer is not None:
                    lfs = {
                        "sha256": fact.sha256,
                        "size": fact.size,
                        "pointerSize": len(fact.pointer),
                    }
                    sibling["lfs"] = lfs
            siblings.append(sibling)
        info: dict[str, object] = {
            "_id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
            "id": repo_id,
            "author": repo_id.split("/")[0] if "/" in repo_id else None,
            "sha": commit,
            "lastModified": _LAST_MODIFIED,
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if repo_type == "model":
            info["modelId"] = repo_id
        return info

    def _resolve(self, ex: Exchange, parts: list[str]) -> None:
        repo_type = "model"
        if parts[0] in ("datasets", "spaces"):
            repo_type, parts = parts[0][:-1], parts[1:]
        at = parts.index("resolve")
        if at not in (1, 2) or len(parts) < at + 3:
            ex.send_json(404, {"error": "Not Found"})
            return
        repo_id, revision, path = "/".join(parts[:at]), parts[at + 1], "/".join(parts[at + 2 :])
        commit, files = self._lookup(repo_type, repo_id, revision)
        fact = files.get(path)
        if fact is None:
            raise _NotFound("EntryNotFound", f"{path} does not exist", commit)
        if repo_id in self._gated:
            self._refuse_gated(ex, repo_id)
            return
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{fact.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
        }
        if self.truncate_bodies and ex.method == "GET":
            # The announced length is the whole file; half of it comes, then the connection ends.
            ex.start(200, headers, content_length=len(fact.data))
            ex.write(fact.data[: len(fact.data) // 2])
            ex.drop()
        self._send_range(ex, self.tamper.get(path, fact.data), headers)

    @staticmethod
    def _refuse_gated(ex: Exchange, repo_id: str) -> None:
        status = 403 if "authorization" in ex.request.headers else 401
        message = (
            f"Access to model {repo_id} is restricted. You must have access to it and be "
            "authenticated to access it. Please log in."
        )
        ex.send_json(
            status, {"error": message}, {"X-Error-Code": "GatedRepo", "X-Error-Message": message}
        )

    @staticmethod
    def _send_range(ex: Exchange, data: bytes, headers: dict[str, str]) -> None:
        spec = ex.request.headers.get("range")
        if spec is None or ex.method == "HEAD":
            ex.send(200, data, headers)
            return
        span = _parse_range(spec, len(data))
        if span is None:
            ex.send(416, b"", {**headers, "Content-Range": f"bytes */{len(data)}"})
            return
        start, end = span
        ex.send(
            206,
            data[start : end + 1],
            {**headers, "Content-Range": f"bytes {start}-{end}/{len(data)}"},
        )


def _parse_range(spec: str, total: int) -> tuple[int, int] | None:
    """``bytes=START-[END]`` or ``bytes=-N`` -> inclusive (start, end); None: unsatisfiable."""
    unit, _, value = spec.partition("=")
    first, _, last = value.split(",")[0].strip().partition("-")
    if unit.strip() != "bytes":
        return None
    if first == "":
        start, end = max(total - int(last or 0), 0), total - 1
    else:
        start, end = int(first), min(int(last), total - 1) if last else total - 1
    return (start, end) if start <= end and start < total else None


def _folders(files: Collection[str]) -> set[str]:
    return {"/".join(p.split("/")[:i]) for p in files for i in range(1, p.count("/") + 1)}


def _folder_entry(path: str, files: Mapping[str, FileFacts]) -> dict[str, object]:
    content = ",".join(
        f"{p}={f.blob_id}" for p, f in sorted(files.items()) if p.startswith(path + "/")
    )
    return {"type": "directory", "oid": git_blob_sha1(content.encode()), "size": 0, "path": path}


def _tree(
    files: Mapping[str, FileFacts], under: str, *, recursive: bool
) -> list[dict[str, object]] | None:
    """The ``/tree`` listing below ``under`` ("" = root); None if ``under`` is not a folder."""
    folders = _folders(files)
    if under and under not in folders:
        return None
    prefix = under + "/" if under else ""

    def wanted(path: str) -> bool:
        return path.startswith(prefix) and (recursive or "/" not in path[len(prefix) :])

    entries = [_folder_entry(d, files) for d in sorted(folders) if wanted(d)]
    entries += [f.tree_entry() for p, f in sorted(files.items()) if wanted(p)]
    return entries


def _paths_info(files: Mapping[str, FileFacts], paths: list[str]) -> list[dict[str, object]]:
    folders = _folders(files)
    found: list[dict[str, object]] = []
    for path in paths:
        if path in files:
            found.append(files[path].tree_entry())
        elif path in folders:
            found.append(_folder_entry(path, files))
    return found
