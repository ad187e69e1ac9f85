"""``scan_app`` (app folders) and ``find_duplicates`` (same bytes across stores)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mlxstate.facts import AppLink, AppState, HfCache, OllamaStore
from mlxstate.observe import duplicates
from mlxstate.observe.apps import scan_app
from mlxstate.observe.duplicates import HashCache, find_duplicates
from mlxstate.observe.hf_cache import scan_hf_cache
from mlxstate.observe.ollama_store import scan_ollama_store
from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.builders.common import sha256_hex

GGUF = ob.fake_gguf("shared-weights", 50_000)
OTHER = ob.fake_gguf("other-weights", 50_000)  # same size, different bytes


def _kinds(state: AppState, root: Path) -> dict[str, str]:
    return {e.path.relative_to(root).as_posix(): e.kind for e in state.entries}


def _entry(state: AppState, path: Path) -> AppLink:
    return next(e for e in state.entries if e.path == path)


# --- scan_app -----------------------------------------------------------------------------------


def test_lmstudio_layout_is_read_two_folders_deep(tmp_path: Path) -> None:
    lms = tmp_path / "lms"
    model_dir = lms / "publisher" / "model-GGUF"
    model_dir.mkdir(parents=True)
    (model_dir / "model.Q4_K_M.gguf").write_bytes(GGUF)
    (model_dir / "mmproj-model.gguf").write_bytes(b"proj")
    (model_dir / ".DS_Store").write_bytes(b"\0")
    deeper = model_dir / "sub" / "deeper.gguf"
    deeper.parent.mkdir()
    deeper.write_bytes(b"too deep")
    (lms / "publisher" / "stray.gguf").write_bytes(b"one level short")
    (lms / "top.gguf").write_bytes(b"two levels short")

    state = scan_app("lmstudio", lms, "lmstudio")

    assert state.exists and state.layout == "lmstudio" and state.warnings == ()
    assert _kinds(state, lms) == {
        "publisher/model-GGUF/model.Q4_K_M.gguf": "file",
        "publisher/model-GGUF/mmproj-model.gguf": "file",
        "publisher/model-GGUF/sub": "dir",  # reported as a folder; its files are not read
        "publisher/stray.gguf": "file",
        "top.gguf": "file",
    }
    assert _entry(state, model_dir / "model.Q4_K_M.gguf").size == len(GGUF)
    assert _entry(state, lms / "top.gguf").size == len(b"two levels short")
    assert [e.path for e in state.entries] == sorted(e.path for e in state.entries)


def test_dir_layout_is_read_one_level_deep(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    (folder / "nested").mkdir(parents=True)
    (folder / "nested" / "inner.gguf").write_bytes(b"inner")
    (folder / "a.gguf").write_bytes(b"abc")

    state = scan_app("jan", folder, "dir")

    assert _kinds(state, folder) == {"a.gguf": "file", "nested": "dir"}
    assert _entry(state, folder / "a.gguf").size == 3


def test_links_dangling_links_and_foreign_files(tmp_path: Path) -> None:
    lms = tmp_path / "lms"
    store = tmp_path / "store"
    store.mkdir()
    blob = store / "sha256-abc"
    blob.write_bytes(GGUF)
    model_dir = lms / "ns" / "m"
    model_dir.mkdir(parents=True)
    good = model_dir / "m.gguf"
    os.symlink(blob, good)  # absolute, like mlx makes them
    relative = model_dir / "rel.gguf"
    os.symlink(os.path.relpath(blob, model_dir), relative)
    gone = model_dir / "gone.gguf"
    os.symlink(store / "deleted-blob", gone)
    foreign = model_dir / "README.txt"
    foreign.write_text("user file")

    state = scan_app("lmstudio", lms, "lmstudio")

    assert _kinds(state, lms) == {
        "ns/m/m.gguf": "link",
        "ns/m/rel.gguf": "link",
        "ns/m/gone.gguf": "dangling",
        "ns/m/README.txt": "file",
    }
    assert (_entry(state, good).target, _entry(state, good).size) == (blob, len(GGUF))
    assert _entry(state, relative).target == blob  # made absolute
    assert _entry(state, gone).target == store / "deleted-blob"
    assert _entry(state, gone).size == 0
    assert _entry(state, foreign).size == len("user file")


def test_symlinked_folder_is_a_link_not_walked(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "x.gguf").write_bytes(b"x")
    lms = tmp_path / "lms"
    lms.mkdir()
    os.symlink(elsewhere, lms / "publisher")
    state = scan_app("lmstudio", lms, "lmstudio")
    assert _kinds(state, lms) == {"publisher": "link"}


def test_missing_app_folder(tmp_path: Path) -> None:
    state = scan_app("lmstudio", tmp_path / "nope", "lmstudio")
    assert not state.exists and state.entries == ()


# --- find_duplicates ---------------------------------------------------------------------------


def _stores(tmp_path: Path) -> tuple[Path, Path, ob.ManifestInfo, hb.CachedRevision]:
    models = tmp_path / "ollama"
    info = ob.add_model(models, "qwen:7b", [("model", GGUF), ("params", b"{}")])
    cache = tmp_path / "hub"
    rev = hb.add_revision(cache, "org/qwen-GGUF", {"qwen.gguf": GGUF, "config.json": b"{}"})
    return models, cache, info, rev


def _scan(models: Path, cache: Path) -> tuple[OllamaStore, HfCache]:
    return scan_ollama_store(models), scan_hf_cache(cache)


def _ollama_blob(info: ob.ManifestInfo) -> Path:
    layer = info.layer("model")
    assert layer is not None
    return info.blob_path(layer)


def test_same_gguf_in_ollama_and_hf_is_one_group(tmp_path: Path) -> None:
    models, cache, info, rev = _stores(tmp_path)
    hf_blob = rev.files["qwen.gguf"].blob_path
    assert hf_blob.name == sha256_hex(GGUF)

    (group,) = find_duplicates(*_scan(models, cache))

    assert group.digest == sha256_hex(GGUF)
    assert set(group.paths) == {_ollama_blob(info), hf_blob}
    assert group.size == len(GGUF) and group.reclaimable == len(GGUF)
    assert group.how == "name"


def test_hardlinked_pair_is_not_a_duplicate(tmp_path: Path) -> None:
    models, cache, info, rev = _stores(tmp_path)
    hf_blob = rev.files["qwen.gguf"].blob_path
    hf_blob.unlink()
    os.link(_ollama_blob(info), hf_blob)
    ollama, hf = _scan(models, cache)
    assert hf.find("org/qwen-GGUF") is not None
    assert find_duplicates(ollama, hf) == ()


def test_hf_blob_symlinked_to_ollama_blob_is_not_a_duplicate(tmp_path: Path) -> None:
    models, cache, info, rev = _stores(tmp_path)
    hf_blob = rev.files["qwen.gguf"].blob_path
    hf_blob.unlink()
    os.symlink(_ollama_blob(info), hf_blob)
    ollama, hf = _scan(models, cache)
    repo = hf.find("org/qwen-GGUF")
    assert repo is not None and repo.revisions[0].has_file("qwen.gguf")
    assert find_duplicates(ollama, hf) == ()


def test_three_copies_reclaim_two(tmp_path: Path) -> None:
    models, cache, info, _rev = _stores(tmp_path)
    second = hb.add_revision(cache, "other/copy", {"w.gguf": GGUF})
    (group,) = find_duplicates(*_scan(models, cache))
    assert len(group.paths) == 3 and second.files["w.gguf"].blob_path in group.paths
    assert _ollama_blob(info) in group.paths
    assert group.reclaimable == 2 * len(GGUF)


def _lms_with(tmp_path: Path, files: dict[str, bytes]) -> AppState:
    lms = tmp_path / "lms"
    for rel, data in files.items():
        path = lms / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return scan_app("lmstudio", lms, "lmstudio")


def test_app_copy_of_an_ollama_blob_is_found_by_hash(tmp_path: Path) -> None:
    models = tmp_path / "ollama"
    info = ob.add_model(models, "qwen:7b", [("model", GGUF)])
    lms = tmp_path / "lms"
    copy = lms / "qwen" / "qwen-7b" / "qwen-7b.gguf"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(_ollama_blob(info), copy)
    same_size = lms / "qwen" / "other" / "other.gguf"
    same_size.parent.mkdir(parents=True)
    same_size.write_bytes(OTHER)
    assert len(OTHER) == len(GGUF)
    app = scan_app("lmstudio", lms, "lmstudio")

    (group,) = find_duplicates(scan_ollama_store(models), scan_hf_cache(tmp_path / "hub"), [app])

    assert group.how == "hash" and group.digest == sha256_hex(GGUF)
    assert set(group.paths) == {_ollama_blob(info), copy}
    assert same_size not in group.paths
    assert group.reclaimable == len(GGUF)


def test_different_file_with_same_size_is_not_grouped(tmp_path: Path) -> None:
    models = tmp_path / "ollama"
    ob.add_model(models, "qwen:7b", [("model", GGUF)])
    app = _lms_with(tmp_path, {"a/b/other.gguf": OTHER})
    ollama, hf = scan_ollama_store(models), scan_hf_cache(tmp_path / "hub")
    assert find_duplicates(ollama, hf, [app]) == ()


def test_two_app_copies_are_grouped_by_hash(tmp_path: Path) -> None:
    app = _lms_with(tmp_path, {"a/x/m.gguf": OTHER, "b/y/m.gguf": OTHER, "c/z/n.gguf": b"n"})
    ollama, hf = scan_ollama_store(tmp_path / "no"), scan_hf_cache(tmp_path / "hub")
    (group,) = find_duplicates(ollama, hf, [app])
    assert group.how == "hash" and len(group.paths) == 2
    assert group.digest == sha256_hex(OTHER)


def test_app_symlink_to_a_blob_is_not_hashed_or_grouped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "ollama"
    info = ob.add_model(models, "qwen:7b", [("model", GGUF)])
    link = tmp_path / "lms" / "q" / "q" / "q.gguf"
    link.parent.mkdir(parents=True)
    os.symlink(_ollama_blob(info), link)
    app = scan_app("lmstudio", tmp_path / "lms", "lmstudio")
    hashed: list[Path] = []

    def sha256_file(path: Path) -> str:
        hashed.append(path)
        return ""

    monkeypatch.setattr(duplicates, "sha256_file", sha256_file)
    ollama, hf = scan_ollama_store(models), scan_hf_cache(tmp_path / "hub")
    assert find_duplicates(ollama, hf, [app]) == ()
    assert hashed == []


class CountingCache:
    """A dict-backed ``HashCache`` that counts lookups and stores."""

    def __init__(self) -> None:
        self.data: dict[tuple[int, int, int, int], str] = {}
        self.lookups = 0
        self.stores = 0

    def lookup(self, dev: int, ino: int, size: int, mtime_ns: int) -> str | None:
        self.lookups += 1
        return self.data.get((dev, ino, size, mtime_ns))

    def store(self, dev: int, ino: int, size: int, mtime_ns: int, sha256: str) -> None:
        self.stores += 1
        self.data[(dev, ino, size, mtime_ns)] = sha256

    @property
    def pair(self) -> HashCache:
        return (self.lookup, self.store)


def test_hash_cache_avoids_rehashing_until_mtime_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "ollama"
    info = ob.add_model(models, "qwen:7b", [("model", GGUF)])
    copy = tmp_path / "lms" / "q" / "q" / "q.gguf"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(_ollama_blob(info), copy)
    hashed: list[Path] = []
    real = duplicates.sha256_file

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(duplicates, "sha256_file", counting)
    cache = CountingCache()
    ollama, hf = scan_ollama_store(models), scan_hf_cache(tmp_path / "hub")

    def run() -> int:
        app = scan_app("lmstudio", tmp_path / "lms", "lmstudio")
        groups = find_duplicates(ollama, hf, [app], cache.pair)
        return len(groups)

    assert run() == 1
    assert (hashed, cache.stores) == ([copy], 1)
    st = copy.stat()
    assert cache.data == {(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns): sha256_hex(GGUF)}

    assert run() == 1
    assert (hashed, cache.stores, cache.lookups) == ([copy], 1, 2)  # answered by the cache

    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert run() == 1
    assert (hashed, cache.stores) == ([copy, copy], 2)  # new mtime: hashed again
