"""The HF cache scanner against the installed ``huggingface_hub``, layout by layout.

Each row of ``LAYOUTS`` builds one cache (with ``tests.builders.hf_cache``): the layouts
huggingface_hub's own cache tests build (valid caches with PR refs, empty revisions, repos
without snapshots, refs to missing commits, stray files, foreign folders, the no-symlink
layout, ``.no_exist`` markers, tree listings, the shared Xet store, kernels) and layouts
users make by hand. Both scanners are reduced to the same plain data — repos and their
types, refs, revisions, files, sizes and times; the folders warned about; partial
downloads; tree listings; the bytes deleting the detached revisions frees — and compared
aspect by aspect. Where mlx is deliberately different, the row names the aspect and why,
and its check asserts exactly that difference (docs/status-json.md, ``stores.huggingface``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import scan_cache_dir
from huggingface_hub._tree_cache import read_tree_cache

from mlxstate.facts import HfCache, Observed, OllamaStore
from mlxstate.mlxyaml.load import parse_spec
from mlxstate.observe.hf_cache import scan_hf_cache
from mlxstate.plan.cleanup import plan_cleanups
from mlxstate.settings import read_environment
from tests.builders import hf_cache as hb
from tests.builders.ollama_store import fake_gguf

GGUF = fake_gguf("parity-weights", 4000)
CONFIG = b'{"model_type": "llama"}\n'
README = b"# readme\n"
ASPECTS = ("repos", "warned", "partials", "trees", "freed")
View = dict[str, Any]


def _rel(path: Path | str, *roots: str) -> str:
    text = os.path.abspath(path)
    for root in roots:
        if text.startswith(root + os.sep):
            return text[len(root) + 1 :]
    return text


def _warned(warnings: list[str], *roots: str) -> list[str]:
    """The top-level cache entry each warning is about (sorted, one per warning)."""
    out = []
    for w in warnings:
        found = [m.group(1) for r in roots for m in re.finditer(re.escape(r) + r"/([^/ )]+)", w)]
        out.append(found[0] if found else w)
    return sorted(out)


def ours(cache: Path) -> View:
    scanned = scan_hf_cache(cache)
    roots = (os.path.abspath(cache), os.path.realpath(cache))
    repos, trees, freed = {}, {}, {}
    cleanups = plan_cleanups(_SPEC, _observed(scanned))
    for repo in scanned.repos:
        key = (repo.repo_type, repo.repo_id)
        repos[key] = {
            "size": repo.size_on_disk,
            "nb_files": repo.nb_files,
            "last_accessed": repo.last_accessed,
            "last_modified": repo.last_modified,
            "refs": dict(repo.refs),
            "revisions": {
                r.commit: {
                    "refs": frozenset(r.refs),
                    "size": r.size,
                    "last_modified": r.last_modified,
                    "files": frozenset(
                        (f.path, _rel(f.blob_file, *roots), f.size) for f in r.files if f.present
                    ),
                }
                for r in repo.revisions
            },
        }
        trees[key] = {
            r.commit: None if r.remote is None else tuple(r.remote) for r in repo.revisions
        }
        freed[key] = sum(
            a.free_bytes or 0
            for a in cleanups
            if a.kind == "cleanup.revision"
            and a.subject.startswith(f"{repo.repo_type}s/")
            and a.subject.split("/", 1)[1].rsplit("@", 1)[0] == repo.repo_id
        )
    partials = [f for r in scanned.repos for f in r.incomplete] + list(scanned.incomplete)
    return {
        "repos": repos,
        "warned": _warned(list(scanned.warnings), *roots),
        "partials": sorted((_rel(f.path, *roots), f.size) for f in partials),
        "trees": trees,
        "freed": freed,
        "scan": scanned,
        "plan": cleanups,
    }


def theirs(cache: Path) -> View:
    info = scan_cache_dir(cache)
    roots = (str(info.cache_dir), os.path.abspath(cache))
    repos, trees, freed = {}, {}, {}
    for repo in info.repos:
        key = (repo.repo_type, repo.repo_id)
        refs = {name: rev.commit_hash for name, rev in repo.refs.items()}
        repos[key] = {
            "size": repo.size_on_disk,
            "nb_files": repo.nb_files,
            "last_accessed": repo.last_accessed,
            "last_modified": repo.last_modified,
            "refs": refs,
            "revisions": {
                r.commit_hash: {
                    "refs": frozenset(r.refs),
                    "size": r.size_on_disk,
                    "last_modified": r.last_modified,
                    "files": frozenset(
                        (
                            f.file_path.relative_to(r.snapshot_path).as_posix(),
                            _rel(f.blob_path, *roots),
                            f.size_on_disk,
                        )
                        for f in r.files
                    ),
                }
                for r in repo.revisions
            },
        }
        trees[key] = {
            r.commit_hash: _lib_tree(repo.repo_path, r.commit_hash) for r in repo.revisions
        }
        detached = [r.commit_hash for r in repo.revisions if not r.refs]
        freed[key] = info.delete_revisions(*detached).expected_freed_size if detached else 0
    return {
        "repos": repos,
        "warned": _warned([str(w) for w in info.warnings], *roots),
        "partials": sorted(
            (_rel(f.file_path, *roots), f.size_on_disk) for f in info.incomplete_files
        ),
        "trees": trees,
        "freed": freed,
    }


def _lib_tree(repo_path: Path, commit: str) -> tuple[tuple[str, int, str], ...] | None:
    entries = read_tree_cache(str(repo_path), commit)
    if entries is None:
        return None
    return tuple((name, e.size, e.lfs_sha256 or e.blob_id) for name, e in sorted(entries.items()))


_SPEC = parse_spec(
    "version: 1\nsettings:\n  cleanup:\n    detached_revisions: true\n    partials: true\n"
    "models: {}\n",
    file="mlx.yaml",
    base_dir=Path("/"),
    env=read_environment(),
).spec


def _observed(hf: HfCache) -> Observed:
    import time

    return Observed(OllamaStore(Path("/nonexistent"), False), hf, None, now=time.time())


# --- the layouts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Layout:
    name: str
    build: Callable[[Path], Path | None]  # returns the folder to scan when not the cache
    # aspect -> why mlx differs on purpose; ``check`` then asserts the difference
    differs: dict[str, str] = field(default_factory=dict)
    check: Callable[[View, View], None] | None = None
    lib_raises: type[Exception] | None = None  # the library cannot scan it at all


def _valid(cache: Path) -> None:
    """A model with main, a tag, a PR ref and a detached commit; a dataset; a legacy id."""
    first = hb.add_revision(cache, "org/model", {"README.md": b"v0", "w.gguf": GGUF}, refs=())
    hb.add_revision(
        cache,
        "org/model",
        {"README.md": README, "w.gguf": GGUF, "sub/c.json": CONFIG},
        refs=("main", "v1"),
    )
    hb.add_revision(cache, "org/model", {"README.md": README, "pr.txt": b"pr"}, refs=("refs/pr/1",))
    hb.add_revision(cache, "org/data", {"train.parquet": b"PAR1" * 50}, repo_type="dataset")
    hb.add_revision(cache, "org/space", {"app.py": b"print(1)"}, repo_type="space")
    hb.add_revision(cache, "solo", {"x.bin": b"\1\2"}, refs=())
    assert first.refs == ()


def _empty_revision(cache: Path) -> None:
    rev = hb.add_revision(cache, "org/model", {"c.json": CONFIG})
    for f in rev.files.values():
        f.snapshot_path.unlink()


def _no_revisions(cache: Path) -> None:
    rev = hb.add_revision(cache, "org/model", {"c.json": CONFIG})
    hb.delete_ref(cache, "org/model", "main")
    for f in rev.files.values():
        f.snapshot_path.unlink()
    rev.snapshot_dir.rmdir()
    f.blob_path.unlink()


def _healthy(cache: Path) -> None:
    hb.add_revision(cache, "org/fine", {"w.gguf": GGUF, "c.json": CONFIG})


def _ref_to_missing(cache: Path) -> None:
    _healthy(cache)
    hb.add_revision(cache, "org/bad", {"c.json": CONFIG})
    hb.set_ref(cache, "org/bad", "dev", "f" * 40)


def _file_in_snapshots(cache: Path) -> None:
    _healthy(cache)
    rev = hb.add_revision(cache, "org/bad", {"c.json": CONFIG})
    (rev.repo_dir / "snapshots" / "stray").write_text("x")


def _no_snapshots_with_partials(cache: Path) -> None:
    """Refs and a partial download but no snapshots/: the partial is still listed."""
    _healthy(cache)
    rev = hb.add_revision(cache, "org/bad", {"c.json": CONFIG})
    hb.add_incomplete(cache, "org/bad", GGUF[:1000], age=7200)
    for f in rev.files.values():
        f.snapshot_path.unlink()
    rev.snapshot_dir.rmdir()
    (rev.repo_dir / "snapshots").rmdir()


def _foreign(cache: Path) -> None:
    _healthy(cache)
    (cache / "a_file.txt").write_text("x")
    (cache / "no_double_dash").mkdir()
    (cache / "not-models--t5").mkdir()
    (cache / "things--org--x" / "snapshots").mkdir(parents=True)
    (cache / ".git").mkdir()  # a cache kept in git


def _no_symlinks(cache: Path) -> None:
    hb.add_revision(
        cache,
        "org/win",
        {"a/c.json": b"{1}", "b/c.json": b"{22}", "w.bin": b"\0" * 50},
        symlinks=False,
    )
    hb.add_revision(
        cache, "org/win", {"a/c.json": b"{333}", "w.bin": b"\0" * 50}, symlinks=False, refs=()
    )


def _extras(cache: Path) -> None:
    """.no_exist markers, OS junk, .locks, CACHEDIR.TAG, a partial, a link to a folder."""
    rev = hb.add_revision(cache, "org/m", {"w.gguf": GGUF}, no_exist=["missing.txt"])
    hb.add_incomplete(cache, "org/m", GGUF[:999])
    (cache / ".locks" / "models--org--m").mkdir(parents=True)
    (cache / "CACHEDIR.TAG").write_text("Signature: 8a477f597d28d172789f06886806bc55\n")
    for junk in (".DS_Store", "Thumbs.db", "desktop.ini"):
        (cache / junk).write_bytes(b"\0")
        (rev.repo_dir / "snapshots" / junk).write_bytes(b"\0")
    os.symlink(".", rev.snapshot_dir / "loop")


def _tree(
    version: object = 1, xet: str | None = None, raw: str | None = None
) -> Callable[[Path], None]:
    def build(cache: Path) -> None:
        rev = hb.add_revision(
            cache,
            "org/m",
            {"c.json": CONFIG, "w.gguf": GGUF},
            remote_files={"c.json": CONFIG, "w.gguf": GGUF, "big.safetensors": b"\0" * 9},
        )
        path = rev.repo_dir / "trees" / f"{rev.commit}.json"
        doc = json.loads(path.read_text())
        doc["format_version"] = version
        if xet is not None:
            doc["files"]["w.gguf"]["xet_hash"] = xet
        path.write_text(raw if raw is not None else json.dumps(doc))

    return build


def _shared(cache: Path) -> None:
    hb.add_revision(cache, "org/a", {"w.gguf": GGUF, "c.json": CONFIG}, xet={"w.gguf"})
    hb.add_revision(cache, "org/b", {"copy.gguf": GGUF}, xet={"copy.gguf"}, refs=())


def _shared_unsupported(cache: Path) -> None:
    _shared(cache)
    hb.set_shared_marker(cache, "2\n")


def _check_shared_unsupported(mine: View, lib: View) -> None:
    assert mine["warned"] == lib["warned"] == ["blobs"]
    assert not mine["scan"].shared_store
    assert mine["freed"][("model", "org/b")] == 0
    assert lib["freed"][("model", "org/b")] == len(GGUF)


def _kernel(cache: Path) -> None:
    hb.add_revision(
        cache, "org/act", {"build/torch/ops.so": b"\x7fELF" + b"\0" * 60}, repo_type="kernel"
    )
    hb.add_incomplete(cache, "org/act", b"half", repo_type="kernel")
    _healthy(cache)


def _shared_blob_detached(cache: Path) -> None:
    """Two detached revisions sharing a blob with each other and one with main."""
    hb.add_revision(cache, "org/m", {"w.gguf": GGUF, "a.txt": b"a"}, refs=())
    hb.add_revision(cache, "org/m", {"w.gguf": GGUF, "b.txt": b"bb"}, refs=())
    hb.add_revision(cache, "org/m", {"a.txt": b"a", "c.txt": b"ccc"})


def _linked_root(cache: Path) -> Path:
    """The cache moved to another disk behind a link; a second snapshot (detached) links
    the weights by absolute path through the real location, as some tools write."""
    real = cache.parent / "disk" / "hub"
    rev = hb.add_revision(real, "org/m", {"w.gguf": GGUF, "c.json": CONFIG})
    other = rev.repo_dir / "snapshots" / ("b" * 40)
    other.mkdir()
    os.symlink(str(rev.files["w.gguf"].blob_path), other / "w.gguf")
    os.symlink(real, cache)
    return cache


def _linked_root_only_absolute(cache: Path) -> Path:
    """As above, and the only link to the weights is the absolute one."""
    real = cache.parent / "disk" / "hub"
    rev = hb.add_revision(real, "org/m", {"w.gguf": GGUF, "c.json": CONFIG})
    link = rev.files["w.gguf"].snapshot_path
    link.unlink()
    os.symlink(str(rev.files["w.gguf"].blob_path), link)
    os.symlink(real, cache)
    return cache


# --- deliberate differences -----------------------------------------------------------------


def _dangling_ref(cache: Path) -> None:
    rev = hb.add_revision(cache, "org/m", {"w.gguf": GGUF}, refs=())
    hb.add_revision(cache, "org/m", {"c.json": CONFIG})
    os.symlink(rev.repo_dir / "refs" / "nowhere", rev.repo_dir / "refs" / "dev")


def _check_dangling_ref(mine: View, lib: View) -> None:
    scanned: HfCache = mine["scan"]
    (repo,) = scanned.repos
    assert not repo.refs_known and repo.detached == ()
    assert mine["freed"] == {("model", "org/m"): 0}  # nothing planned for deletion
    assert [w for w in scanned.warnings if "refs/dev" in w and "all are kept" in w]


def _ref_newline(cache: Path) -> None:
    _healthy(cache)
    rev = hb.add_revision(cache, "org/nl", {"c.json": CONFIG})
    hb.set_ref(cache, "org/nl", "main", rev.commit, newline=True)


def _check_ref_newline(mine: View, lib: View) -> None:
    assert set(lib["repos"]) == {("model", "org/fine")}  # the library drops the repo
    assert mine["repos"][("model", "org/nl")]["refs"]["main"]  # mlx reads it, and says so
    assert lib["warned"] == mine["warned"] == ["models--org--nl"]
    (warning,) = mine["scan"].warnings
    assert "refs/main" in warning and "newline" in warning


def _dangling_blob(cache: Path) -> None:
    _healthy(cache)
    rev = hb.add_revision(cache, "org/bad", {"w.gguf": GGUF, "c.json": CONFIG})
    hb.remove_blob(rev, "w.gguf")


def _check_dangling_blob(mine: View, lib: View) -> None:
    assert set(lib["repos"]) == {("model", "org/fine")} and lib["warned"] == ["models--org--bad"]
    assert mine["warned"] == []  # kept, its missing file reported as dangling instead
    repo = mine["scan"].find("org/bad")
    assert repo is not None and repo.revisions[0].dangling == ("w.gguf",)
    assert mine["repos"][("model", "org/fine")] == lib["repos"][("model", "org/fine")]


def _odd_partials(cache: Path) -> None:
    """``.incomplete`` names that are no download: a link out of the cache, a folder, and
    one in a folder that names no repo."""
    _healthy(cache)
    blobs = hb.repo_dir(cache, "org/fine") / "blobs"
    outside = cache.parent / "precious.bin"
    outside.write_bytes(b"keep me")
    os.symlink(outside, blobs / "aa.0badc0de.incomplete")
    (blobs / "bb.0badc0de.incomplete").mkdir()
    (cache / "junk" / "blobs").mkdir(parents=True)
    (cache / "junk" / "blobs" / "cc.0badc0de.incomplete").write_bytes(b"x")


def _check_odd_partials(mine: View, lib: View) -> None:
    assert mine["partials"] == []
    assert [p for p, _ in lib["partials"]] == [
        "junk/blobs/cc.0badc0de.incomplete",
        "models--org--fine/blobs/aa.0badc0de.incomplete",
        "models--org--fine/blobs/bb.0badc0de.incomplete",
    ]


LAYOUTS = [
    Layout("valid: branches, tag, PR ref, detached, dataset, space, legacy id", _valid),
    Layout("a revision folder with no files", _empty_revision),
    Layout("a repo with an empty snapshots folder and no refs", _no_revisions),
    Layout("a ref to a commit that is not cached", _ref_to_missing),
    Layout("a file inside snapshots/", _file_in_snapshots),
    Layout("no snapshots/, refs and a partial download", _no_snapshots_with_partials),
    Layout("stray file, foreign folders, a .git folder", _foreign),
    Layout("no-symlink layout", _no_symlinks),
    Layout(".no_exist, OS junk, .locks, CACHEDIR.TAG, a folder link", _extras),
    Layout("tree listing", _tree()),
    Layout("tree listing of an unknown format_version", _tree(version=2)),
    Layout("tree listing with a masked Xet hash", _tree(xet="*" * 64)),
    Layout("tree listing that is not JSON", _tree(raw="{oops")),
    Layout("shared Xet store", _shared),
    Layout(
        "shared Xet store of an unsupported layout",
        _shared_unsupported,
        differs={
            "freed": "deleting a link into a store nobody may sweep frees nothing: mlx says 0, "
            "the library (not reading the store) the payload's size, which stays on disk"
        },
        check=_check_shared_unsupported,
    ),
    Layout("kernel repo", _kernel),
    Layout("detached revisions sharing blobs", _shared_blob_detached),
    Layout("absolute snapshot link through a linked cache root", _linked_root),
    Layout("only an absolute link through a linked cache root", _linked_root_only_absolute),
    Layout(
        "a dangling ref link",
        _dangling_ref,
        differs={"repos": "refs unknown: every revision kept, none detached"},
        check=_check_dangling_ref,
        lib_raises=FileNotFoundError,
    ),
    Layout(
        "a ref file ending in a newline",
        _ref_newline,
        differs={
            "repos": "mlx reads the commit without the newline and keeps the repo",
            "trees": "the repo the library drops has a listing",
            "freed": "the repo the library drops is planned like any other",
        },
        check=_check_ref_newline,
    ),
    Layout(
        "a snapshot link whose blob is missing",
        _dangling_blob,
        differs={
            "repos": "mlx keeps the repo and reports the file as dangling (repairable)",
            "warned": "no warning: the repo's status is 'broken'",
            "trees": "the repo the library drops has a listing",
            "freed": "the repo the library drops is planned like any other",
        },
        check=_check_dangling_blob,
    ),
    Layout(
        ".incomplete names that are no download",
        _odd_partials,
        differs={"partials": "mlx lists (and may delete) only regular files in repo folders"},
        check=_check_odd_partials,
    ),
]


@pytest.mark.parametrize("layout", LAYOUTS, ids=[layout.name for layout in LAYOUTS])
def test_parity_with_huggingface_hub(tmp_path: Path, layout: Layout) -> None:
    cache = tmp_path / "hub"
    scanned_at = layout.build(cache) or cache
    mine = ours(scanned_at)
    if layout.lib_raises is not None:
        with pytest.raises(layout.lib_raises):
            scan_cache_dir(scanned_at)
        assert layout.check is not None
        layout.check(mine, {})
        return
    lib = theirs(scanned_at)
    for aspect in ASPECTS:
        if aspect not in layout.differs:
            assert mine[aspect] == lib[aspect], aspect
    if layout.check is not None:
        layout.check(mine, lib)


def test_repo_types_are_the_librarys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every folder prefix the installed library maps is a repo type here too, and a type a
    newer library adds is picked up from it (looked up only for a prefix not built in)."""
    from huggingface_hub import constants

    from mlxstate.observe import hf_cache

    for prefix, repo_type in constants.REPO_TYPES_MAPPING.items():
        assert hf_cache.repo_type_of(prefix) == repo_type
    assert hf_cache.repo_type_of("things") is None
    monkeypatch.setitem(constants.REPO_TYPES_MAPPING, "widgets", "widget")
    hf_cache._library_types.cache_clear()
    try:
        hb.add_revision(tmp_path, "org/m", {"c.json": CONFIG})
        os.rename(tmp_path / "models--org--m", tmp_path / "widgets--org--m")
        (repo,) = scan_hf_cache(tmp_path).repos
        assert (repo.repo_type, repo.repo_id) == ("widget", "org/m")
    finally:
        hf_cache._library_types.cache_clear()
