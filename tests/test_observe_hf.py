"""``scan_hf_cache`` against ``huggingface_hub.scan_cache_dir``, and what only ours reports.

Parity caches come from two writers: ``tests.builders.hf_cache`` and the real
``snapshot_download`` talking to the loopback fake hub. Both scanners are reduced to the same
plain data by :func:`ours` and :func:`theirs`, and compared as a whole.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import scan_cache_dir, snapshot_download
from huggingface_hub.errors import CacheNotFound

from mlxstate.facts import HfCache
from mlxstate.observe.hf_cache import scan_hf_cache
from tests.builders import hf_cache as hb
from tests.builders.common import git_blob_sha1, make_old, sha256_hex
from tests.builders.ollama_store import fake_gguf
from tests.fakes.hf_hub import FakeHfHub

GGUF = fake_gguf("hf-weights", 20_000)
GGUF_V2 = fake_gguf("hf-weights-v2", 24_000)
SAFETENSORS = b"\0" * 3000 + b"tensors"
CONFIG = b'{"architectures": ["LlamaForCausalLM"], "model_type": "llama"}\n'
TOKENIZER = b'{"version": "1.0", "model": {"type": "BPE"}}'
README = b"# a test model\n"

# (repo_type, repo_id) -> {"size", "nb_files", "revisions": {commit: {"refs", "size", "files"}}}
Facts = dict[tuple[str, str], dict[str, Any]]


def _rel(path: Path | str, root: Path) -> str:
    return Path(os.path.abspath(path)).relative_to(root).as_posix()


def ours(cache: Path) -> tuple[Facts, HfCache]:
    """What ``scan_hf_cache`` says, as plain data (present files only)."""
    scanned = scan_hf_cache(cache)
    root = Path(os.path.abspath(cache))
    facts: Facts = {}
    for repo in scanned.repos:
        revisions = {
            rev.commit: {
                "refs": frozenset(rev.refs),
                "size": rev.size,
                "files": frozenset(
                    (f.path, _rel(f.blob_path, root), f.size) for f in rev.files if f.present
                ),
                "last_modified": rev.last_modified,
            }
            for rev in repo.revisions
        }
        facts[(repo.repo_type, repo.repo_id)] = {
            "size": repo.size_on_disk,
            "nb_files": repo.nb_files,
            "revisions": revisions,
            "last_modified": repo.last_modified,
        }
    return facts, scanned


def theirs(cache: Path) -> tuple[Facts, list[str]]:
    """What ``huggingface_hub.scan_cache_dir`` says, as the same plain data."""
    info = scan_cache_dir(cache)
    root = Path(cache).resolve()  # the library resolves the cache folder
    facts: Facts = {}
    for repo in info.repos:
        revisions = {
            rev.commit_hash: {
                "refs": frozenset(rev.refs),
                "size": rev.size_on_disk,
                "files": frozenset(
                    (
                        f.file_path.relative_to(rev.snapshot_path).as_posix(),
                        _rel(f.blob_path, root),
                        f.size_on_disk,
                    )
                    for f in rev.files
                ),
                "last_modified": rev.last_modified,
            }
            for rev in repo.revisions
        }
        facts[(repo.repo_type, repo.repo_id)] = {
            "size": repo.size_on_disk,
            "nb_files": repo.nb_files,
            "revisions": revisions,
            "last_modified": repo.last_modified,
        }
    return facts, [str(w) for w in info.warnings]


def assert_parity(cache: Path) -> Facts:
    mine, scanned = ours(cache)
    lib, lib_warnings = theirs(cache)
    assert lib_warnings == []
    assert scanned.warnings == ()
    assert set(mine) == set(lib)
    for key in lib:
        assert mine[key] == lib[key], key
    assert all(f.present for r in scanned.repos for rev in r.revisions for f in rev.files)
    return mine


# --- (a) parity: caches written by the builder ------------------------------------------------


def test_parity_builder_models_datasets_spaces_refs(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    old = hb.add_revision(cache, "org/model", {"config.json": b"{}", "w.gguf": GGUF})
    new = hb.add_revision(
        cache,
        "org/model",
        {
            "config.json": CONFIG,
            "w.gguf": GGUF,  # same blob as the old revision: counted once per repo
            "model.safetensors": SAFETENSORS,
            "tokenizer/tokenizer.json": TOKENIZER,
            "deep/er/still/README.md": README,
        },
        refs=("main", "v1.0"),
    )
    pr = hb.add_revision(cache, "org/model", {"config.json": b'{"pr": 1}'}, refs=("refs/pr/1",))
    dataset = hb.add_revision(
        cache, "org/data", {"train/0.parquet": b"PAR1" * 500}, repo_type="dataset"
    )
    space = hb.add_revision(
        cache, "org/app", {"app.py": b"print(1)\n", "README.md": README}, repo_type="space"
    )
    no_refs = hb.add_revision(cache, "solo", {"x.bin": b"\1\2\3"}, refs=())  # a legacy id

    facts = assert_parity(cache)

    assert set(facts) == {
        ("model", "org/model"),
        ("dataset", "org/data"),
        ("space", "org/app"),
        ("model", "solo"),
    }
    model = facts[("model", "org/model")]
    assert {c: r["refs"] for c, r in model["revisions"].items()} == {
        old.commit: frozenset(),  # detached: main moved on
        new.commit: {"main", "v1.0"},
        pr.commit: {"refs/pr/1"},
    }
    blobs = {b for r in model["revisions"].values() for _, b, _ in r["files"]}
    assert model["nb_files"] == len(blobs) == 7
    tokenizer_blob = f"models--org--model/blobs/{git_blob_sha1(TOKENIZER)}"
    tokenizer = ("tokenizer/tokenizer.json", tokenizer_blob, len(TOKENIZER))
    assert tokenizer in model["revisions"][new.commit]["files"]
    assert facts[("dataset", "org/data")]["revisions"][dataset.commit]["refs"] == {"main"}
    assert facts[("space", "org/app")]["size"] == space.size_on_disk
    assert facts[("model", "solo")]["revisions"][no_refs.commit]["refs"] == frozenset()

    scanned = scan_hf_cache(cache)
    repo = scanned.find("org/model")
    assert repo is not None
    assert repo.ref("main") == new.commit and repo.ref("refs/pr/1") == pr.commit
    assert [r.commit for r in repo.detached] == [old.commit]
    revision = repo.revision(new.commit)
    assert revision is not None
    files = {f.path: f for f in revision.files}
    assert files["w.gguf"].blob == sha256_hex(GGUF) and files["w.gguf"].is_lfs
    assert files["config.json"].blob == git_blob_sha1(CONFIG) and not files["config.json"].is_lfs
    assert (
        files["deep/er/still/README.md"].blob_path == new.files["deep/er/still/README.md"].blob_path
    )


def test_parity_no_symlink_layout(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    # Same file names in two folders and two revisions: files, not names, are counted.
    hb.add_revision(
        cache,
        "org/win",
        {"a/config.json": b"{1}", "b/config.json": b"{22}", "w.bin": b"\0" * 50},
        symlinks=False,
    )
    hb.add_revision(
        cache, "org/win", {"a/config.json": b"{333}", "w.bin": b"\0" * 50}, symlinks=False
    )

    facts = assert_parity(cache)

    (repo,) = facts.values()
    assert repo["nb_files"] == 5
    assert repo["size"] == 3 + 4 + 50 + 5 + 50
    scanned = scan_hf_cache(cache)
    files = [f for r in scanned.repos[0].revisions for f in r.files]
    assert not any(f.is_lfs for f in files)  # no etag is known in this layout


def test_parity_shared_xet_store(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    hb.add_revision(cache, "org/a", {"w.gguf": GGUF, "config.json": CONFIG}, xet={"w.gguf"})
    hb.add_revision(cache, "org/b", {"copy.gguf": GGUF}, xet={"copy.gguf"})

    facts = assert_parity(cache)

    assert set(facts) == {("model", "org/a"), ("model", "org/b")}  # the store is not a repo
    assert facts[("model", "org/b")]["size"] == len(GGUF)  # logical size, per repo
    scanned = scan_hf_cache(cache)
    assert scanned.shared_store
    b = scanned.find("org/b")
    assert b is not None
    (f,) = b.revisions[0].files
    # The blob path is the repo-local first hop; its size comes from the shared payload.
    assert f.blob_path == cache / "models--org--b" / "blobs" / sha256_hex(GGUF)
    assert f.blob_path.is_symlink() and f.size == len(GGUF) and f.blob == sha256_hex(GGUF)
    assert b.orphans == ()


def test_parity_ignores_os_junk_and_extras(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    rev = hb.add_revision(
        cache, "org/m", {"w.gguf": GGUF, "c.json": CONFIG}, no_exist=["missing.txt"]
    )
    hb.add_incomplete(cache, "org/m", GGUF_V2[:999])
    hb.add_orphan_blob(cache, "org/m", b"orphan")
    (cache / ".locks" / "models--org--m").mkdir(parents=True)
    (cache / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    for junk in (".DS_Store", "Thumbs.db", "desktop.ini"):
        (cache / junk).write_bytes(b"\0")
        (rev.repo_dir / "snapshots" / junk).write_bytes(b"\0")
        (rev.repo_dir / "refs" / junk).write_bytes(b"not a commit")
    empty = rev.repo_dir / "snapshots" / ("e" * 40)
    empty.mkdir()  # a revision folder with no files yet
    os.symlink(".", rev.snapshot_dir / "loop")  # a link to a folder: skipped, not followed

    facts = assert_parity(cache)

    (repo,) = facts.values()
    assert repo["nb_files"] == 2  # neither the orphan nor the .incomplete count
    assert repo["size"] == len(GGUF) + len(CONFIG)
    assert repo["revisions"]["e" * 40]["files"] == frozenset()


# --- (a) parity: caches written by the real snapshot_download ----------------------------------


def test_parity_snapshot_download(fake_hub: FakeHfHub, tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    model_files = {
        "config.json": CONFIG,
        "model.Q4_K_M.gguf": GGUF,
        "model.safetensors": SAFETENSORS,
        "tokenizer/tokenizer.json": TOKENIZER,
        "README.md": README,
    }
    first = fake_hub.add_repo("org/model", model_files)
    second = fake_hub.push("org/model", {**model_files, "model.Q4_K_M.gguf": GGUF_V2})
    fake_hub.set_ref("org/model", "v1", first)
    data = fake_hub.add_repo(
        "org/data", {"train.parquet": b"PAR1" * 700, "README.md": README}, repo_type="dataset"
    )
    other = fake_hub.add_repo("other/tiny", {"config.json": b"{}", "w.bin": b"\1" * 40})

    def download(repo_id: str, **kwargs: Any) -> Path:
        return Path(snapshot_download(repo_id, cache_dir=cache, endpoint=fake_hub.url, **kwargs))

    download("org/model", revision="v1", allow_patterns=["*.gguf", "config.json"])
    download("org/model", allow_patterns=["*.json", "*.gguf"])  # main = second commit
    download("org/model", revision=first, allow_patterns=["tokenizer/*"])
    download("org/data", repo_type="dataset")
    download("other/tiny", ignore_patterns=["*.bin"])

    facts = assert_parity(cache)

    model = facts[("model", "org/model")]
    assert {c: r["refs"] for c, r in model["revisions"].items()} == {
        first: {"v1"},
        second: {"main"},
    }
    first_files = {p for p, _, _ in model["revisions"][first]["files"]}
    assert first_files == {"config.json", "model.Q4_K_M.gguf", "tokenizer/tokenizer.json"}
    second_files = {p for p, _, _ in model["revisions"][second]["files"]}
    assert second_files == {"config.json", "model.Q4_K_M.gguf", "tokenizer/tokenizer.json"}
    # config.json and tokenizer.json are the same blobs in both commits.
    assert model["nb_files"] == 4
    assert model["size"] == len(CONFIG) + len(GGUF) + len(GGUF_V2) + len(TOKENIZER)
    assert facts[("dataset", "org/data")]["revisions"][data]["refs"] == {"main"}
    tiny = facts[("model", "other/tiny")]["revisions"][other]["files"]
    assert tiny == {("config.json", f"models--other--tiny/blobs/{git_blob_sha1(b'{}')}", 2)}

    # The trees/<commit>.json the library wrote are read as the remote file list.
    scanned = scan_hf_cache(cache)
    repo = scanned.find("org/model")
    assert repo is not None
    rev = repo.revision(second)
    assert rev is not None and rev.remote is not None
    assert {r.path for r in rev.remote} == set(model_files)
    remote = {r.path: r for r in rev.remote}
    assert remote["model.Q4_K_M.gguf"].blob == sha256_hex(GGUF_V2)
    assert remote["README.md"].blob == git_blob_sha1(README)
    assert remote["model.Q4_K_M.gguf"].size == len(GGUF_V2)


# --- (b) corrupt caches -------------------------------------------------------------------------


def _healthy(cache: Path) -> hb.CachedRevision:
    return hb.add_revision(cache, "org/fine", {"w.gguf": GGUF, "c.json": CONFIG})


def _both_warn(cache: Path, needle_lib: str, needle_ours: str) -> HfCache:
    """Both scanners warn once, keep the healthy repo, and agree on it."""
    lib, lib_warnings = theirs(cache)
    mine, scanned = ours(cache)
    assert len(lib_warnings) == 1 and needle_lib in lib_warnings[0], lib_warnings
    assert len(scanned.warnings) == 1 and needle_ours in scanned.warnings[0], scanned.warnings
    assert set(lib) == set(mine) == {("model", "org/fine")}
    assert mine == lib
    return scanned


def test_corrupt_ref_to_missing_commit(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    _healthy(cache)
    hb.add_revision(cache, "org/bad", {"c.json": CONFIG})
    hb.set_ref(cache, "org/bad", "dev", "f" * 40)
    _both_warn(cache, "missing commit hashes", "not cached")


def test_corrupt_snapshots_is_a_file(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    _healthy(cache)
    bad = hb.repo_dir(cache, "org/bad")
    bad.mkdir(parents=True)
    (bad / "snapshots").write_text("oops")
    _both_warn(cache, "Snapshots dir doesn't exist", "no snapshots folder")


def test_corrupt_file_inside_snapshots(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    _healthy(cache)
    rev = hb.add_revision(cache, "org/bad", {"c.json": CONFIG})
    (rev.repo_dir / "snapshots" / "stray.txt").write_text("x")
    _both_warn(cache, "Found a file", "found a file")


def test_corrupt_refs_is_a_file(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    _healthy(cache)
    rev = hb.add_revision(cache, "org/bad", {"c.json": CONFIG}, refs=())
    (rev.repo_dir / "refs").write_text(rev.commit)
    _both_warn(cache, "Refs directory cannot be a file", "refs is a file")


@pytest.mark.parametrize(
    ("name", "needle_lib", "needle_ours"),
    [
        ("no_double_dash", "not a valid HuggingFace cache directory", "not a Hugging Face"),
        ("things--org--x", "Repo type must be one of", "not a Hugging Face"),
    ],
)
def test_corrupt_foreign_folders(
    tmp_path: Path, name: str, needle_lib: str, needle_ours: str
) -> None:
    cache = tmp_path / "hub"
    _healthy(cache)
    (cache / name / "snapshots").mkdir(parents=True)
    _both_warn(cache, needle_lib, needle_ours)


def test_corrupt_file_at_top_level(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    _healthy(cache)
    (cache / "version.txt").write_text("1")
    _both_warn(cache, "not a directory", "a file")


def test_dangling_snapshot_link_keeps_the_repo(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    _healthy(cache)
    rev = hb.add_revision(
        cache, "org/bad", {"w.gguf": GGUF, "c.json": CONFIG, "sub/t.json": TOKENIZER}
    )
    hb.remove_blob(rev, "w.gguf")
    hb.remove_blob(rev, "sub/t.json")

    lib, lib_warnings = theirs(cache)
    assert len(lib_warnings) == 1 and "Blob missing (broken symlink)" in lib_warnings[0]
    assert set(lib) == {("model", "org/fine")}  # the library drops the whole repo

    mine, scanned = ours(cache)
    assert scanned.warnings == ()
    assert mine[("model", "org/fine")] == lib[("model", "org/fine")]
    repo = scanned.find("org/bad")
    assert repo is not None
    (revision,) = repo.revisions
    assert revision.dangling == ("sub/t.json", "w.gguf")
    assert not revision.has_file("w.gguf") and revision.has_file("c.json")
    missing = {f.path: f for f in revision.files if not f.present}
    assert missing["w.gguf"].size == 0
    assert missing["w.gguf"].blob == sha256_hex(GGUF)
    assert missing["w.gguf"].blob_path == rev.files["w.gguf"].blob_path
    assert repo.size_on_disk == revision.size == len(CONFIG) and repo.nb_files == 1
    assert repo.ref("main") == rev.commit


def test_missing_cache(tmp_path: Path) -> None:
    assert not scan_hf_cache(tmp_path / "nope").exists
    with pytest.raises(CacheNotFound):
        scan_cache_dir(tmp_path / "nope")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert not scan_hf_cache(a_file).exists
    empty = tmp_path / "empty"
    empty.mkdir()
    scanned = scan_hf_cache(empty)
    assert scanned.exists and scanned.repos == () and scanned.warnings == ()


# --- (c) what only ours reports ---------------------------------------------------------------


def test_orphan_blobs_and_incomplete_files(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    rev = hb.add_revision(cache, "org/m", {"w.gguf": GGUF, "c.json": CONFIG})
    lfs_orphan = hb.add_orphan_blob(cache, "org/m", b"lost weights")
    small_orphan = hb.add_orphan_blob(cache, "org/m", b"lost text", lfs=False)
    partial = hb.add_incomplete(cache, "org/m", GGUF_V2[:1234], age=7200)

    scanned = scan_hf_cache(cache)

    repo = scanned.find("org/m")
    assert repo is not None
    orphans = {f.path: f for f in repo.orphans}
    assert set(orphans) == {lfs_orphan, small_orphan}
    assert orphans[lfs_orphan].digest == sha256_hex(b"lost weights")
    assert orphans[lfs_orphan].size == len(b"lost weights")
    assert orphans[small_orphan].digest is None  # a git sha1 is not a sha256
    assert all(f.kind == "orphan" for f in repo.orphans)
    (inc,) = repo.incomplete
    assert (inc.path, inc.size, inc.kind) == (partial, 1234, "incomplete")
    assert inc.mtime == pytest.approx(partial.stat().st_mtime)
    # The library sees the .incomplete file too, but never the orphans.
    info = scan_cache_dir(cache)
    assert {f.file_path for f in info.incomplete_files} == {partial}
    (lib_repo,) = info.repos
    assert lib_repo.nb_files == repo.nb_files == 2
    assert rev.files["w.gguf"].blob_path not in orphans


def test_blob_used_by_any_revision_is_not_an_orphan(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    old = hb.add_revision(cache, "org/m", {"w.gguf": GGUF})
    hb.add_revision(cache, "org/m", {"w.gguf": GGUF_V2})
    repo = scan_hf_cache(cache).find("org/m")
    assert repo is not None and repo.orphans == ()
    assert [r.commit for r in repo.detached] == [old.commit]

    # Deleting the old snapshot (as a careless cleanup would) orphans its blob.
    for link in old.snapshot_dir.iterdir():
        link.unlink()
    old.snapshot_dir.rmdir()
    repo = scan_hf_cache(cache).find("org/m")
    assert repo is not None
    assert [f.path for f in repo.orphans] == [old.files["w.gguf"].blob_path]


def test_tree_file_is_the_remote_listing(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    remote_files = {
        "config.json": CONFIG,
        "w.gguf": GGUF,
        "big.safetensors": SAFETENSORS,
        "docs/README.md": README,
    }
    rev = hb.add_revision(
        cache, "org/m", {"config.json": CONFIG, "w.gguf": GGUF}, remote_files=remote_files
    )
    untracked = hb.add_revision(cache, "org/m", {"config.json": b"{}"}, refs=("dev",), tree=False)

    repo = scan_hf_cache(cache).find("org/m")
    assert repo is not None
    revision = repo.revision(rev.commit)
    assert revision is not None and revision.remote is not None
    remote = {r.path: r for r in revision.remote}
    assert set(remote) == set(remote_files)
    assert [r.path for r in revision.remote] == sorted(remote_files)
    facts = hb.describe_files(remote_files)
    for path, fact in facts.items():
        assert remote[path].size == fact.size
        # The name the cache would give the blob: LFS sha256, else the git blob id.
        assert remote[path].blob == (fact.sha256 if fact.lfs else fact.blob_id) == fact.etag
    assert remote["w.gguf"].blob == sha256_hex(GGUF)
    assert remote["config.json"].blob == git_blob_sha1(CONFIG)
    # Remote files missing locally are those the snapshot lacks.
    local = {f.path for f in revision.files}
    assert set(remote) - local == {"big.safetensors", "docs/README.md"}

    no_tree = repo.revision(untracked.commit)
    assert no_tree is not None and no_tree.remote is None


def test_unreadable_tree_file_is_none(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    rev = hb.add_revision(cache, "org/m", {"config.json": CONFIG})
    (rev.repo_dir / "trees" / f"{rev.commit}.json").write_text("{not json")
    repo = scan_hf_cache(cache).find("org/m")
    assert repo is not None and repo.revisions[0].remote is None
    assert scan_hf_cache(cache).warnings == ()


def test_times_come_from_the_blobs(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    rev = hb.add_revision(cache, "org/m", {"w.gguf": GGUF})
    when = make_old(rev.files["w.gguf"].blob_path, seconds=10 * 24 * 3600)
    repo = scan_hf_cache(cache).find("org/m")
    assert repo is not None
    assert repo.last_modified == pytest.approx(when)
    assert repo.last_accessed == pytest.approx(when)
    assert repo.revisions[0].last_modified == pytest.approx(when)
