"""Self-tests of the test peers: store builders and loopback fakes.

Each builder is checked against the real reader (``huggingface_hub.scan_cache_dir``, the
library's own downloads) and each fake against the real client (``snapshot_download``) or
plain httpx, so later tests can trust them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import httpx
import huggingface_hub
import pytest
from huggingface_hub import (
    CachedRepoInfo,
    HfApi,
    hf_hub_download,
    scan_cache_dir,
    snapshot_download,
)
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.builders import hf_cache, ollama_store
from tests.builders.common import HOUR, git_blob_sha1, make_old, sha256_hex
from tests.fakes.hf_hub import FakeHfHub
from tests.fakes.ollama_server import FakeOllama, fake_tokens

GGUF = ollama_store.fake_gguf("weights", 300_000)
CONFIG = b'{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}\n'
MODEL_FILES = {
    "config.json": CONFIG,
    "model.Q4_K_M.gguf": GGUF,
    "tokenizer/tokenizer.json": b'{"version": "1.0"}',
    "README.md": b"# test model\n",
}


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree_listing(root: Path) -> dict[str, str]:
    """Every entry below ``root``: link target for symlinks, sha256 for files, "dir" for dirs."""
    listing: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                listing[rel] = "-> " + os.readlink(path)
            elif path.is_dir():
                listing[rel] = "dir"
            else:
                listing[rel] = _sha256_file(path)
    return listing


# --- Ollama store builder -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "parts", "display"),
    [
        ("qwen2.5:7b", ("registry.ollama.ai", "library", "qwen2.5", "7b"), "qwen2.5:7b"),
        ("llama3", ("registry.ollama.ai", "library", "llama3", "latest"), "llama3:latest"),
        ("ns/model:tag", ("registry.ollama.ai", "ns", "model", "tag"), "ns/model:tag"),
        (
            "hf.co/org/repo:Q4_K_M",
            ("hf.co", "org", "repo", "Q4_K_M"),
            "hf.co/org/repo:Q4_K_M",
        ),
    ],
)
def test_ollama_name_parsing(name: str, parts: tuple[str, ...], display: str) -> None:
    parsed = ollama_store.parse_name(name)
    assert (parsed.host, parsed.namespace, parsed.model, parsed.tag) == parts
    assert parsed.display == display
    assert parsed.manifest_relpath == Path("manifests", *parts)


@pytest.mark.parametrize("bad", ["", "a/b/c/d:e", "model:", "/model"])
def test_ollama_name_parsing_rejects_invalid(bad: str) -> None:
    with pytest.raises(ValueError):
        ollama_store.parse_name(bad)


def test_add_model_writes_exact_ollama_layout(tmp_path: Path) -> None:
    models = tmp_path / "models"
    info = ollama_store.add_model(
        models, "hf.co/org/repo:Q4_K_M", [("model", GGUF), ("params", b"{}")]
    )

    manifest = models / "manifests/hf.co/org/repo/Q4_K_M"
    assert info.path == manifest
    raw = manifest.read_bytes()
    assert info.digest == sha256_hex(raw)
    assert b" " not in raw and not raw.endswith(b"\n")  # compact, as the registry sends it
    data = json.loads(raw)
    assert list(data) == ["schemaVersion", "mediaType", "config", "layers"]
    assert data["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert data["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert [layer["mediaType"] for layer in data["layers"]] == [
        "application/vnd.ollama.image.model",
        "application/vnd.ollama.image.params",
    ]
    for entry in [data["config"], *data["layers"]]:
        blob = models / "blobs" / entry["digest"].replace("sha256:", "sha256-")
        assert entry["digest"] == "sha256:" + _sha256_file(blob)
        assert entry["size"] == blob.stat().st_size
    assert (models / "blobs" / f"sha256-{sha256_hex(GGUF)}").read_bytes() == GGUF
    config = json.loads(info.blob_path(info.config).read_bytes())
    assert config["model_format"] == "gguf" and config["file_type"] == "Q4_K_M"
    assert info.size == sum(e["size"] for e in [data["config"], *data["layers"]])
    assert sorted(p.name for p in (models / "blobs").iterdir()) == sorted(
        b.filename for b in info.blobs
    )


def test_ollama_default_models_share_nothing_but_identical_layers(tmp_path: Path) -> None:
    a = ollama_store.add_model(tmp_path, "a:1")
    b = ollama_store.add_model(tmp_path, "b:1")
    model_a, model_b = a.layer("model"), b.layer("model")
    assert model_a is not None and model_b is not None
    assert model_a.digest != model_b.digest
    assert a.layer("template") == b.layer("template")  # same bytes, one shared blob
    parsed, broken = ollama_store.read_manifests(tmp_path)
    assert {m.name.display for m in parsed} == {"a:1", "b:1"} and broken == []


def test_ollama_broken_state_helpers(tmp_path: Path) -> None:
    info = ollama_store.add_model(tmp_path, "m:1", [("model", GGUF), ("license", b"MIT")])
    model = info.layers[0]

    corrupted = ollama_store.corrupt_blob(tmp_path, model.digest)
    assert corrupted.stat().st_size == model.size and _sha256_file(corrupted) != model.hex
    truncated = ollama_store.truncate_blob(tmp_path, model.digest)
    assert truncated.stat().st_size == model.size // 2
    removed = ollama_store.remove_blob(tmp_path, info.layers[1].digest)
    assert not removed.exists()

    data = b"x" * 1000 + b"y" * 1000
    partial = ollama_store.write_partial(tmp_path, data, completed=1500, parts=2, age=2 * HOUR)
    assert partial.partial_path.name == f"sha256-{sha256_hex(data)}-partial"
    assert partial.partial_path.stat().st_size == len(data)  # pre-sized
    assert partial.partial_path.read_bytes()[:1500] == data[:1500]
    sidecars = [json.loads(p.read_text()) for p in partial.part_paths]
    assert [p.name[-10:] for p in partial.part_paths] == ["-partial-0", "-partial-1"]
    assert sidecars == [
        {"N": 0, "Offset": 0, "Size": 1000, "Completed": 1000},
        {"N": 1, "Offset": 1000, "Size": 1000, "Completed": 500},
    ]
    assert not partial.blob_path.exists()
    assert partial.partial_path.stat().st_mtime < info.path.stat().st_mtime - HOUR

    orphan = ollama_store.add_orphan_blob(tmp_path, b"orphan", age=3 * HOUR)
    assert orphan.name == f"sha256-{sha256_hex(b'orphan')}"
    assert ollama_store.add_junk_file(tmp_path, "COPY123").parent == tmp_path / "blobs"
    legacy = ollama_store.add_legacy_blob(tmp_path, b"old")
    assert legacy.name == f"sha256:{sha256_hex(b'old')}"

    bad = ollama_store.write_unparseable_manifest(tmp_path, "broken:1")
    parsed, broken = ollama_store.read_manifests(tmp_path)
    assert [m.name.full for m in parsed] == ["registry.ollama.ai/library/m:1"]
    assert broken == [bad]

    target = tmp_path / "elsewhere.gguf"
    target.write_bytes(GGUF)
    link = ollama_store.link_blob(tmp_path, model.digest, target)
    assert link.is_symlink() and _sha256_file(link) == model.hex
    hard = ollama_store.link_blob(tmp_path, model.digest, target, hard=True)
    assert not hard.is_symlink() and hard.stat().st_ino == target.stat().st_ino


# --- HF cache builder vs huggingface_hub ------------------------------------------------------


def test_hf_cache_builder_is_what_scan_cache_dir_sees(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    old = hf_cache.add_revision(cache, "org/model", {"config.json": b"{}", "w.gguf": GGUF})
    new = hf_cache.add_revision(cache, "org/model", MODEL_FILES, refs=("main", "v1.0"))
    pr = hf_cache.add_revision(cache, "org/model", {"config.json": b"{1}"}, refs=("refs/pr/1",))
    dataset = hf_cache.add_revision(
        cache, "org/data", {"train.parquet": b"PAR1" * 100}, repo_type="dataset"
    )
    space = hf_cache.add_revision(cache, "org/app", {"app.py": b"print(1)\n"}, repo_type="space")
    plain = hf_cache.add_revision(cache, "org/win", {"a/b.bin": b"\0\1"}, symlinks=False)
    built = [old, new, pr, dataset, space, plain]
    expected_refs = {rev.commit: set(rev.refs) for rev in built}
    expected_refs[old.commit] = set()  # "main" moved to the newer commit: detached

    info = scan_cache_dir(cache)

    assert info.warnings == []
    seen: dict[tuple[str, str], CachedRepoInfo] = {(r.repo_type, r.repo_id): r for r in info.repos}
    assert set(seen) == {(b.repo_type, b.repo_id) for b in built}
    for rev in built:
        repo = seen[(rev.repo_type, rev.repo_id)]
        scanned = {r.commit_hash: r for r in repo.revisions}[rev.commit]
        assert scanned.snapshot_path == rev.snapshot_dir
        assert set(scanned.refs) == expected_refs[rev.commit]
        files = {f.file_path.relative_to(rev.snapshot_dir).as_posix(): f for f in scanned.files}
        assert set(files) == set(rev.files)
        for path, cached in rev.files.items():
            assert files[path].size_on_disk == cached.size
            assert files[path].blob_path == cached.blob_path
            assert cached.snapshot_path.read_bytes() == cached.facts.data
        assert scanned.size_on_disk == rev.size_on_disk
    assert seen[("model", "org/model")].refs.keys() == {"main", "v1.0", "refs/pr/1"}
    gguf_blob = new.files["model.Q4_K_M.gguf"].blob_path
    assert gguf_blob.name == sha256_hex(GGUF)
    assert new.files["config.json"].blob_path.name == git_blob_sha1(CONFIG)
    assert os.readlink(new.files["tokenizer/tokenizer.json"].snapshot_path) == (
        "../../../blobs/" + git_blob_sha1(b'{"version": "1.0"}')
    )
    assert os.readlink(new.files["config.json"].snapshot_path) == (
        "../../blobs/" + git_blob_sha1(CONFIG)
    )
    assert (cache / "datasets--org--data" / "refs" / "main").read_text() == dataset.commit
    assert not (plain.repo_dir / "blobs").exists()


def test_hf_cache_detached_incomplete_orphan_and_broken(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    first = hf_cache.add_revision(cache, "org/m", {"w.gguf": GGUF})
    second = hf_cache.add_revision(cache, "org/m", {"w.gguf": GGUF + b"v2"})
    part = hf_cache.add_incomplete(cache, "org/m", GGUF[:1000], age=2 * HOUR)
    orphan = hf_cache.add_orphan_blob(cache, "org/m", b"lost")
    marker = hf_cache.add_no_exist(cache, "org/m", second.commit, "sub/missing.json")

    info = scan_cache_dir(cache)
    (repo,) = info.repos
    refs = {r.commit_hash: r.refs for r in repo.revisions}
    assert refs == {first.commit: frozenset(), second.commit: frozenset({"main"})}
    assert {f.file_path for f in info.incomplete_files} == {part}
    assert part.name.endswith(".0badc0de.incomplete")
    assert orphan.name == sha256_hex(b"lost") and orphan.exists()
    assert repo.nb_files == 2  # the orphan is invisible to the scan
    assert marker.stat().st_size == 0

    hf_cache.remove_blob(second, "w.gguf")
    warned = scan_cache_dir(cache)
    assert warned.repos == frozenset() and len(warned.warnings) == 1
    assert "Blob missing" in str(warned.warnings[0])


def test_hf_cache_tree_file_is_read_by_the_library(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    remote = {**MODEL_FILES, "other.safetensors": b"\0" * 64}
    rev = hf_cache.add_revision(cache, "org/m", MODEL_FILES, remote_files=remote)
    files = huggingface_hub.get_cached_repo_tree("org/m", revision="main", cache_dir=cache)
    by_path = {f.path: f for f in files}
    assert set(by_path) == set(remote)
    gguf = hf_cache.describe_file("model.Q4_K_M.gguf", GGUF)
    assert by_path["model.Q4_K_M.gguf"].blob_id == git_blob_sha1(hf_cache.lfs_pointer(GGUF))
    assert by_path["model.Q4_K_M.gguf"].size == len(GGUF) == gguf.size
    assert by_path["config.json"].blob_id == git_blob_sha1(CONFIG)
    raw = json.loads((rev.repo_dir / "trees" / f"{rev.commit}.json").read_text())
    assert raw["files"]["model.Q4_K_M.gguf"]["lfs_sha256"] == sha256_hex(GGUF)
    assert "lfs_sha256" not in raw["files"]["config.json"]


def test_hf_cache_shared_xet_store(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    a = hf_cache.add_revision(cache, "org/a", {"w.gguf": GGUF}, xet={"w.gguf"})
    b = hf_cache.add_revision(cache, "org/b", {"copy.gguf": GGUF}, xet={"copy.gguf"})
    xet_hash = hf_cache.xet_hash_for(GGUF)
    store = cache / "blobs" / xet_hash[:2] / xet_hash
    assert (cache / "blobs" / ".huggingface-shared-blobs").read_text() == "1\n"
    blob = a.files["w.gguf"].blob_path
    assert blob.name == sha256_hex(GGUF) and blob.is_symlink()
    assert os.readlink(blob) == f"../../blobs/{xet_hash[:2]}/{xet_hash}"
    assert a.files["w.gguf"].store_path == store and store.read_bytes() == GGUF
    assert (store.parent / f"{xet_hash}.refs").read_text().splitlines() == [
        f"models--org--a/blobs/{sha256_hex(GGUF)}",
        f"models--org--b/blobs/{sha256_hex(GGUF)}",
    ]

    info = scan_cache_dir(cache)
    assert info.warnings == []
    assert {r.repo_id for r in info.repos} == {"org/a", "org/b"}  # the store is not a repo
    assert {r.size_on_disk for r in info.repos} == {len(GGUF)}  # logical, per repo
    assert info.size_on_disk == len(GGUF)  # physical: the payload counts once

    strategy = info.delete_revisions(a.commit)
    assert strategy.expected_freed_size == 0  # org/b still references the payload
    strategy.execute()
    assert store.exists()
    last = scan_cache_dir(cache).delete_revisions(b.commit)
    assert last.expected_freed_size == len(GGUF)
    last.execute()
    assert not store.exists()


# --- fake hub vs the real snapshot_download ---------------------------------------------------


def test_snapshot_download_from_fake_hub(fake_hub: FakeHfHub, tmp_path: Path) -> None:
    commit = fake_hub.add_repo("org/model", MODEL_FILES)
    cache = tmp_path / "hub"

    path = snapshot_download(
        "org/model",
        revision="main",
        allow_patterns=["*.gguf", "config.json"],
        cache_dir=cache,
        endpoint=fake_hub.url,
    )

    snapshot = Path(path)
    assert snapshot == cache / "models--org--model" / "snapshots" / commit
    assert sorted(p.name for p in snapshot.iterdir()) == ["config.json", "model.Q4_K_M.gguf"]
    gguf, config = snapshot / "model.Q4_K_M.gguf", snapshot / "config.json"
    assert os.readlink(gguf) == f"../../blobs/{sha256_hex(GGUF)}"  # LFS: named by sha256
    assert os.readlink(config) == f"../../blobs/{git_blob_sha1(CONFIG)}"  # small: git sha1
    assert gguf.read_bytes() == GGUF and config.read_bytes() == CONFIG
    assert (cache / "models--org--model" / "refs" / "main").read_text() == commit

    seen = [(r.method, r.path) for r in fake_hub.requests]
    assert seen[:2] == [
        ("GET", "/api/models/org/model/revision/main"),
        ("GET", f"/api/models/org/model/tree/{commit}"),
    ]
    assert fake_hub.requests[1].query == {"recursive": ["true"], "expand": ["false"]}
    assert sorted(seen[2:]) == sorted(
        (method, f"/org/model/resolve/{commit}/{name}")
        for method in ("HEAD", "GET")
        for name in ("config.json", "model.Q4_K_M.gguf")
    )

    fake_hub.clear_requests()
    snapshot_download("org/model", revision=commit, cache_dir=cache, endpoint=fake_hub.url)
    # A commit needs no revision call; the tree is cached on disk; only new files are fetched.
    assert fake_hub.count("GET", r"/api/.*") == 0
    assert fake_hub.count("GET", r".*/resolve/.*") == 2  # README.md, tokenizer/tokenizer.json


def test_builder_cache_equals_library_download(fake_hub: FakeHfHub, tmp_path: Path) -> None:
    commit = fake_hub.add_repo("org/model", MODEL_FILES)
    downloaded = tmp_path / "downloaded"
    snapshot_download(
        "org/model",
        revision="main",
        ignore_patterns=["README.md"],
        cache_dir=downloaded,
        endpoint=fake_hub.url,
    )
    built = tmp_path / "built"
    wanted = {p: d for p, d in MODEL_FILES.items() if p != "README.md"}
    hf_cache.add_revision(built, "org/model", wanted, commit=commit, remote_files=MODEL_FILES)

    folder = "models--org--model"
    assert _tree_listing(built / folder) == _tree_listing(downloaded / folder)


def test_fake_hub_dataset_repo_and_new_commits(fake_hub: FakeHfHub, tmp_path: Path) -> None:
    first = fake_hub.add_repo("org/data", {"a.parquet": b"PAR1"}, repo_type="dataset")
    second = fake_hub.push("org/data", {"a.parquet": b"PAR2"}, repo_type="dataset")
    fake_hub.set_ref("org/data", "v1", first, repo_type="dataset")
    cache = tmp_path / "hub"
    for revision in ("main", "v1"):
        snapshot_download(
            "org/data",
            repo_type="dataset",
            revision=revision,
            cache_dir=cache,
            endpoint=fake_hub.url,
        )
    info = scan_cache_dir(cache)
    (repo,) = info.repos
    assert (repo.repo_type, repo.repo_id) == ("dataset", "org/data")
    assert {r.commit_hash: set(r.refs) for r in repo.revisions} == {
        second: {"main"},
        first: {"v1"},
    }


def test_fake_hub_not_found_errors(fake_hub: FakeHfHub, tmp_path: Path) -> None:
    commit = fake_hub.add_repo("org/model", {"config.json": CONFIG})
    cache = tmp_path / "hub"
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("org/nope", cache_dir=cache, endpoint=fake_hub.url)
    with pytest.raises(RevisionNotFoundError):
        snapshot_download("org/model", revision="dev", cache_dir=cache, endpoint=fake_hub.url)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("org/model", "missing.bin", cache_dir=cache, endpoint=fake_hub.url)
    # The 404 carried X-Repo-Commit, so the library recorded the absence.
    assert (cache / "models--org--model" / ".no_exist" / commit / "missing.bin").is_file()


def test_fake_hub_http_surface(fake_hub: FakeHfHub) -> None:
    commit = fake_hub.add_repo("org/model", MODEL_FILES)
    api = HfApi(endpoint=fake_hub.url)
    info = api.model_info("org/model", files_metadata=True)
    assert info.sha == commit
    siblings = {s.rfilename: s for s in info.siblings or []}
    gguf_lfs = siblings["model.Q4_K_M.gguf"].lfs
    assert gguf_lfs is not None and gguf_lfs.sha256 == sha256_hex(GGUF)
    assert siblings["config.json"].lfs is None and siblings["config.json"].size == len(CONFIG)
    top = [f.path for f in api.list_repo_tree("org/model", revision=commit)]
    assert top == ["tokenizer", "README.md", "config.json", "model.Q4_K_M.gguf"]
    paths = api.get_paths_info("org/model", ["config.json", "tokenizer", "nope"])
    assert [p.path for p in paths] == ["config.json", "tokenizer"]

    url = f"{fake_hub.url}/org/model/resolve/main/model.Q4_K_M.gguf"
    with httpx.Client() as client:
        head = client.head(url)
        assert head.status_code == 200
        assert head.headers["x-repo-commit"] == commit
        assert head.headers["etag"] == f'"{sha256_hex(GGUF)}"'
        assert int(head.headers["content-length"]) == len(GGUF)
        assert "x-xet-hash" not in head.headers
        ranged = client.get(url, headers={"Range": "bytes=100-199"})
        assert ranged.status_code == 206 and ranged.content == GGUF[100:200]
        assert ranged.headers["content-range"] == f"bytes 100-199/{len(GGUF)}"
        assert client.get(url, headers={"Range": f"bytes={len(GGUF)}-"}).status_code == 416
        small = client.head(f"{fake_hub.url}/org/model/resolve/main/config.json")
        assert small.headers["etag"] == f'"{git_blob_sha1(CONFIG)}"'
        missing = client.head(f"{fake_hub.url}/org/model/resolve/main/nope.txt")
        assert missing.status_code == 404
        assert missing.headers["x-error-code"] == "EntryNotFound"


def test_fake_hub_fault_injection(fake_hub: FakeHfHub, tmp_path: Path) -> None:
    fake_hub.add_repo("org/model", {"config.json": CONFIG, "w.gguf": GGUF})
    cache = tmp_path / "hub"
    # A 5xx on GET is not retried by the library: the download fails at once, leaving no blob.
    fake_hub.fail(r"/org/model/resolve/.*/w\.gguf", 500, method="GET")
    with pytest.raises(HfHubHTTPError):
        snapshot_download("org/model", cache_dir=cache, endpoint=fake_hub.url)
    assert not (cache / "models--org--model" / "blobs" / sha256_hex(GGUF)).exists()
    assert not list(cache.rglob("*.incomplete"))

    fake_hub.clear_faults()
    fake_hub.clear_requests()
    fake_hub.fail(r".*/w\.gguf", 500, method="HEAD", times=1)  # retried once by the library
    fake_hub.drop(r".*/w\.gguf", after_bytes=1000, method="GET")  # once; re-downloaded
    fake_hub.throttle(4_000_000)
    path = snapshot_download("org/model", cache_dir=cache, endpoint=fake_hub.url)
    assert _sha256_file(Path(path) / "w.gguf") == sha256_hex(GGUF)
    assert fake_hub.count("HEAD", r".*/resolve/.*/w\.gguf") == 2
    assert fake_hub.count("GET", r".*/resolve/.*/w\.gguf") == 2
    assert fake_hub.count("HEAD", r".*/resolve/.*/config\.json") == 0  # already cached

    with httpx.Client() as client:
        fake_hub.drop(r".*/config\.json", after_bytes=5, method="GET")
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(f"{fake_hub.url}/org/model/resolve/main/config.json")


def test_fake_server_stops_cleanly_with_open_keepalive() -> None:
    before = set(threading.enumerate())
    hub = FakeHfHub().start()
    hub.add_repo("org/m", {"config.json": CONFIG})
    client = httpx.Client()
    assert client.get(f"{hub.url}/api/models/org/m").json()["id"] == "org/m"
    url = hub.url
    hub.stop()  # the client still holds an idle keep-alive connection
    assert set(threading.enumerate()) <= before
    with pytest.raises(httpx.TransportError):
        client.get(f"{url}/api/models/org/m")
    client.close()


def test_fake_ollama_stops_cleanly_during_a_paused_pull(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    server = FakeOllama(tmp_path).start()
    server.publish("m:1")
    server.pull_pause_after = 1
    with (
        httpx.Client(base_url=server.url) as client,
        client.stream("POST", "/api/pull", json={"model": "m:1"}) as response,
    ):
        lines = response.iter_lines()
        assert json.loads(next(lines)) == {"status": "pulling manifest"}
        server.stop()  # must not wait for pull_resume
        with pytest.raises(httpx.RemoteProtocolError):
            list(lines)
    assert set(threading.enumerate()) <= before


# --- fake Ollama ------------------------------------------------------------------------------


def _pull(server: FakeOllama, name: str, **body: object) -> list[dict[str, object]]:
    with (
        httpx.Client(base_url=server.url) as client,
        client.stream("POST", "/api/pull", json={"model": name, **body}) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) for line in response.iter_lines() if line]


def test_ollama_tags_version_and_ps(ollama_server: FakeOllama) -> None:
    models = ollama_server.models_dir
    assert models == Path(os.environ["OLLAMA_MODELS"])
    assert os.environ["OLLAMA_HOST"] == ollama_server.url
    info = ollama_store.add_model(models, "qwen2.5:7b")
    with httpx.Client(base_url=ollama_server.url) as client:
        assert client.get("/api/version").json() == {"version": "0.33.0"}
        (tag,) = client.get("/api/tags").json()["models"]
        assert tag["name"] == tag["model"] == "qwen2.5:7b"
        assert tag["digest"] == _sha256_file(info.path) == info.digest
        assert tag["size"] == info.size
        assert tag["details"]["quantization_level"] == "Q4_K_M"

        other = ollama_store.add_model(models, "hf.co/org/repo:Q8_0")  # re-read on each call
        ollama_store.write_unparseable_manifest(models, "broken:1")  # skipped
        names = {m["name"] for m in client.get("/api/tags").json()["models"]}
        assert names == {"qwen2.5:7b", other.name.display}

        assert client.get("/api/ps").json() == {"models": []}
        ollama_server.set_running("qwen2.5:7b", size_vram=123)
        (running,) = client.get("/api/ps").json()["models"]
        assert (running["name"], running["digest"], running["size_vram"]) == (
            "qwen2.5:7b",
            info.digest,
            123,
        )


def test_ollama_pull_writes_blobs_and_manifest(ollama_server: FakeOllama) -> None:
    layers = [("model", GGUF), ("template", b"{{ .Prompt }}")]
    published = ollama_server.publish("qwen2.5:7b", layers)
    ollama_server.pull_chunk_size = 100_000

    events = _pull(ollama_server, "qwen2.5:7b")

    model_digest = "sha256:" + sha256_hex(GGUF)
    statuses = [e["status"] for e in events]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    gguf_lines = [e for e in events if e.get("digest") == model_digest]
    assert gguf_lines[0] == {
        "status": f"pulling {sha256_hex(GGUF)[:12]}",
        "digest": model_digest,
        "total": len(GGUF),
    }
    assert [e.get("completed") for e in gguf_lines] == [None, 100_000, 200_000, 300_000]
    assert {e["digest"] for e in events if "digest" in e} == set(published.blobs)

    models = ollama_server.models_dir
    manifest = models / "manifests/registry.ollama.ai/library/qwen2.5/7b"
    assert manifest.read_bytes() == published.manifest
    for digest, data in published.blobs.items():
        blob = models / "blobs" / digest.replace(":", "-")
        assert _sha256_file(blob) == digest.removeprefix("sha256:") == sha256_hex(data)
    assert not [p for p in (models / "blobs").iterdir() if "partial" in p.name]
    with httpx.Client(base_url=ollama_server.url) as client:
        (tag,) = client.get("/api/tags").json()["models"]
    assert tag["digest"] == sha256_hex(published.manifest)

    again = _pull(ollama_server, "qwen2.5:7b")  # cache hits: one complete line per blob
    hits = [e for e in again if "digest" in e]
    assert len(hits) == 3 and all(e["completed"] == e["total"] for e in hits)


def test_ollama_pull_failures_leave_partials(ollama_server: FakeOllama) -> None:
    ollama_server.publish("m:1", [("model", GGUF)])
    ollama_server.pull_chunk_size = 100_000
    blob = ollama_server.models_dir / "blobs" / f"sha256-{sha256_hex(GGUF)}"
    manifest = ollama_server.models_dir / "manifests/registry.ollama.ai/library/m/1"

    assert _pull(ollama_server, "nope:1") == [
        {"status": "pulling manifest"},
        {"error": "pull model manifest: file does not exist"},
    ]

    ollama_server.pull_error_after = 3  # manifest, 0 bytes, 100k, then the error
    events = _pull(ollama_server, "m:1")
    assert events[-1] == {"error": ollama_server.pull_error_message} and len(events) == 4
    sidecar = json.loads(Path(f"{blob}-partial-0").read_text())
    assert sidecar == {"N": 0, "Offset": 0, "Size": len(GGUF), "Completed": 100_000}
    assert Path(f"{blob}-partial").stat().st_size == len(GGUF)
    assert not blob.exists() and not manifest.exists()

    ollama_server.pull_error_after = None
    ollama_server.pull_drop_after = 2
    with pytest.raises(httpx.RemoteProtocolError):
        _pull(ollama_server, "m:1")
    assert not manifest.exists()

    ollama_server.pull_drop_after = None
    ollama_server.corrupt = {"sha256:" + sha256_hex(GGUF)}
    events = _pull(ollama_server, "m:1")
    error = str(events[-1]["error"])
    assert error.startswith("digest mismatch") and not blob.exists() and not manifest.exists()


def test_ollama_pull_pause_shows_partial_then_completes(ollama_server: FakeOllama) -> None:
    ollama_server.publish("m:1", [("model", GGUF)])
    ollama_server.pull_chunk_size = 100_000
    ollama_server.pull_pause_after = 3  # after: manifest, 0 bytes, 100k
    blob = ollama_server.models_dir / "blobs" / f"sha256-{sha256_hex(GGUF)}"
    with (
        httpx.Client(base_url=ollama_server.url) as client,
        client.stream("POST", "/api/pull", json={"model": "m:1"}) as response,
    ):
        lines = response.iter_lines()
        first = [json.loads(next(lines)) for _ in range(3)]
        assert first[-1]["completed"] == 100_000
        sidecar = json.loads(Path(f"{blob}-partial-0").read_text())
        assert sidecar == {"N": 0, "Offset": 0, "Size": len(GGUF), "Completed": 100_000}
        assert Path(f"{blob}-partial").read_bytes()[:100_000] == GGUF[:100_000]
        assert not blob.exists()
        ollama_server.pull_resume.set()
        rest = [json.loads(line) for line in lines if line]
    assert rest[-1] == {"status": "success"} and _sha256_file(blob) == sha256_hex(GGUF)


def test_ollama_pull_unstreamed_and_http_fault(ollama_server: FakeOllama) -> None:
    ollama_server.publish("m:1", [("model", b"GGUF tiny")])
    with httpx.Client(base_url=ollama_server.url) as client:
        ok = client.post("/api/pull", json={"model": "m:1", "stream": False})
        assert (ok.status_code, ok.json()) == (200, {"status": "success"})
        missing = client.post("/api/pull", json={"model": "x:1", "stream": False})
        assert missing.status_code == 500 and "does not exist" in missing.json()["error"]
        ollama_server.fail("/api/tags", 500, times=1, message="boom")
        failed = client.get("/api/tags")
        assert (failed.status_code, failed.json()) == (500, {"error": "boom"})
        assert client.get("/api/tags").status_code == 200
    assert ollama_server.count("GET", "/api/tags") == 2
    assert ollama_server.count("POST", "/api/pull") == 2


def test_ollama_delete_removes_unshared_blobs(ollama_server: FakeOllama) -> None:
    models = ollama_server.models_dir
    shared = ("template", b"{{ .Prompt }}")
    a = ollama_store.add_model(models, "ns/a:1", [("model", GGUF), shared])
    b = ollama_store.add_model(models, "b:1", [("model", b"GGUF other"), shared])
    with httpx.Client(base_url=ollama_server.url) as client:
        assert client.request("DELETE", "/api/delete", json={"model": "ns/a:1"}).status_code == 200
        gone = client.request("DELETE", "/api/delete", json={"model": "ns/a:1"})
        assert gone.status_code == 404 and gone.json() == {"error": "model 'ns/a:1' not found"}
    assert not a.path.exists() and not (models / "manifests/registry.ollama.ai/ns").exists()
    model_a = a.layer("model")
    assert model_a is not None and not a.blob_path(model_a).exists()
    assert all(b.blob_path(blob).exists() for blob in b.blobs)  # incl. the shared template
    assert sorted(p.name for p in (models / "blobs").iterdir()) == sorted(
        blob.filename for blob in b.blobs
    )


def test_ollama_show_and_blobs(ollama_server: FakeOllama) -> None:
    models = ollama_server.models_dir
    info = ollama_store.add_model(
        models, "llava:7b", [("model", GGUF), ("projector", b"GGUF proj"), ("license", b"MIT")]
    )
    with httpx.Client(base_url=ollama_server.url) as client:
        show = client.post("/api/show", json={"model": "llava:7b"}).json()
        froms = [line for line in show["modelfile"].splitlines() if line.startswith("FROM ")]
        assert froms == [f"FROM {info.blob_path(blob)}" for blob in info.layers[:2]]
        assert show["capabilities"] == ["completion", "vision"] and show["license"] == "MIT"
        assert client.post("/api/show", json={"model": "nope"}).status_code == 404

        data = b"uploaded bytes"
        url = f"/api/blobs/sha256:{sha256_hex(data)}"
        assert client.head(url).status_code == 404
        assert client.post(url, content=b"wrong").status_code == 400
        assert client.post(url, content=data).status_code == 201
        assert client.head(url).status_code == 200
        assert client.post(url, content=data).status_code == 200
    assert (models / "blobs" / f"sha256-{sha256_hex(data)}").read_bytes() == data


_TIMINGS = (
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
)


def _generate(server: FakeOllama, **body: object) -> list[dict[str, object]]:
    with (
        httpx.Client(base_url=server.url) as client,
        client.stream("POST", "/api/generate", json=body) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line) for line in response.iter_lines() if line]


def test_ollama_generate_streaming(ollama_server: FakeOllama) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    ollama_server.generate_tokens = 5

    cold = _generate(ollama_server, model="qwen2.5:7b", prompt="why is the sky blue")

    *tokens, final = cold
    assert [t["done"] for t in tokens] == [False] * 5 and final["done"] is True
    assert all(t["model"] == "qwen2.5:7b" and "created_at" in t for t in cold)
    text = "".join(str(t["response"]) for t in tokens)
    assert text == "".join(fake_tokens("qwen2.5:7b", "why is the sky blue", 5))
    assert len(text.split()) == 5 and final["response"] == ""
    assert final["done_reason"] == "stop"
    assert {k: final[k] for k in _TIMINGS} == {
        "total_duration": 250_000_000 + 5 * 2_000_000 + 5 * 20_000_000,
        "load_duration": 250_000_000,
        "prompt_eval_count": 5,
        "prompt_eval_duration": 5 * 2_000_000,
        "eval_count": 5,
        "eval_duration": 5 * 20_000_000,
    }
    eval_count, eval_duration = final["eval_count"], final["eval_duration"]
    assert isinstance(eval_count, int) and isinstance(eval_duration, int)
    assert eval_count / eval_duration * 1e9 == pytest.approx(50.0)  # decode tok/s

    # Now loaded: listed in /api/ps, and the warm call has no load_duration (zero: omitted).
    with httpx.Client(base_url=ollama_server.url) as client:
        (running,) = client.get("/api/ps").json()["models"]
    assert running["name"] == "qwen2.5:7b"
    *_, warm = _generate(ollama_server, model="qwen2.5:7b", prompt="why is the sky blue")
    assert "load_duration" not in warm
    assert warm["total_duration"] == 5 * 2_000_000 + 5 * 20_000_000
    again = _generate(ollama_server, model="qwen2.5:7b", prompt="why is the sky blue")
    assert [t["response"] for t in again[:-1]] == [t["response"] for t in tokens]  # deterministic


def test_ollama_generate_unstreamed_limits_and_errors(ollama_server: FakeOllama) -> None:
    ollama_store.add_model(ollama_server.models_dir, "ns/m:1")
    with httpx.Client(base_url=ollama_server.url) as client:
        reply = client.post(
            "/api/generate",
            json={
                "model": "ns/m:1",
                "prompt": "hi",
                "stream": False,
                "options": {"num_predict": 3},
            },
        )
        assert reply.status_code == 200
        body = reply.json()
        assert body["done"] is True and body["done_reason"] == "length"
        assert body["response"] == "".join(fake_tokens("ns/m:1", "hi", 3))
        assert (body["eval_count"], body["prompt_eval_count"]) == (3, 1)
        assert body["eval_duration"] == 3 * 20_000_000

        nothing = client.post(
            "/api/generate",
            json={
                "model": "ns/m:1",
                "prompt": "hi",
                "stream": False,
                "options": {"num_predict": 0},
            },
        ).json()
        # Every zero timing is omitted; total and prompt timings remain.
        assert "eval_count" not in nothing and "eval_duration" not in nothing
        assert "load_duration" not in nothing and nothing["response"] == ""
        assert nothing["prompt_eval_count"] == 1

        missing = client.post("/api/generate", json={"model": "x", "prompt": "hi"})
        assert missing.status_code == 404
        assert missing.json() == {"error": "model 'x' not found"}
        assert client.post("/api/generate", json={"prompt": "hi"}).status_code == 400

        # An empty prompt loads (or with keep_alive 0 unloads) the model.
        unload = {"model": "ns/m:1", "keep_alive": 0}
        assert client.post("/api/generate", json=unload).json()["done_reason"] == "unload"
        assert client.get("/api/ps").json() == {"models": []}
        load = client.post("/api/generate", json={"model": "ns/m:1"}).json()
        assert (load["done_reason"], load["load_duration"]) == ("load", 250_000_000)
        assert "eval_count" not in load and "total_duration" not in load
        assert len(client.get("/api/ps").json()["models"]) == 1

        ollama_server.fail("/api/generate", 500, times=1, message="llama runner crashed")
        failed = client.post("/api/generate", json={"model": "ns/m:1", "prompt": "hi"})
        assert (failed.status_code, failed.json()) == (500, {"error": "llama runner crashed"})

    ollama_server.drop("/api/generate", after_bytes=40)
    with pytest.raises(httpx.RemoteProtocolError):
        _generate(ollama_server, model="ns/m:1", prompt="hi")
    assert len(_generate(ollama_server, model="ns/m:1", prompt="hi")) == 9  # drop was once


def test_make_old_backdates(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    when = make_old(path, seconds=2 * HOUR)
    assert path.stat().st_mtime == pytest.approx(when)


def test_ollama_generate_benchmark_knobs(ollama_server: FakeOllama) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    ollama_server.prompt_cache = True
    *_, first = _generate(ollama_server, model="qwen2.5:7b", prompt="why is the sky blue")
    *_, cached = _generate(ollama_server, model="qwen2.5:7b", prompt="why is the sky blue")
    assert first["prompt_eval_count"] == 5
    assert "prompt_eval_count" not in cached and "prompt_eval_duration" not in cached
    assert cached["eval_count"] == ollama_server.generate_tokens

    ollama_server.generate_error_after = 2
    lines = _generate(ollama_server, model="qwen2.5:7b", prompt="hi")
    assert [line.get("done") for line in lines] == [False, False, None]
    assert lines[-1] == {"error": ollama_server.generate_error_message}
    assert ollama_server.generate_seconds > 0

    with httpx.Client(base_url=ollama_server.url) as client:
        show = client.post("/api/show", json={"model": "qwen2.5:7b"}).json()
    assert show["details"]["quantization_level"] == "Q4_K_M"
    assert show["details"]["parameter_size"] == "7B"
    assert show["model_info"]["llama.context_length"] == ollama_server.context_length
