"""``mlx status [--json]`` through the real CLI, on stores written by the builders.

Every number asserted here comes from what the builders wrote (blob bytes, file sizes),
never from mlxstate's own helpers.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from syrupy.assertion import SnapshotAssertion

from mlxstate.registry import Registry
from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.builders.common import sha256_hex
from tests.fakes.ollama_server import DEFAULT_VERSION, FakeOllama
from tests.helpers import Result, mlx

TOP_KEYS = {
    "agent",
    "host",
    "format_version",
    "mlxstate_version",
    "spec",
    "workspace",
    "stores",
    "apps",
    "duplicates",
    "missing",
    "reclaimable",
    "warnings",
}
RECLAIM_KINDS = {"duplicates", "partials", "orphans", "detached_revisions"}
DAY = 86400.0


def WS() -> str:
    """The workspace of ./mlx.yaml, the file these tests write."""
    from mlxstate.workspace import derive_workspace

    return derive_workspace(Path("mlx.yaml"))


# --- helpers ------------------------------------------------------------------------------------


def ollama_dir() -> Path:
    return Path(os.environ["OLLAMA_MODELS"])


def hf_dir() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def home() -> Path:
    return Path(os.environ["HOME"])


def state_dir() -> Path:
    return Path(os.environ["XDG_STATE_HOME"]) / "mlxstate"


def flat(text: str) -> str:
    """Output with every run of whitespace collapsed (rich wraps long titles)."""
    return " ".join(text.split())


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.out + result.err


def status_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    result = mlx(capsys, "status", "--json", *args)
    assert result.code == 0, result.err
    doc = json.loads(result.out)  # stdout holds exactly one JSON document
    assert isinstance(doc, dict)
    return doc


def status_text(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    result = mlx(capsys, "status", *args)
    assert result.code == 0, result.err
    no_traceback(result)
    return result.out


@pytest.fixture
def no_daemon(monkeypatch: pytest.MonkeyPatch) -> str:
    """Point OLLAMA_HOST at a loopback port nobody listens on (never a real daemon)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    host = f"http://127.0.0.1:{port}"
    monkeypatch.setenv("OLLAMA_HOST", host)
    return host


def models_by_name(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in doc["stores"]["ollama"]["models"]}


def repos_by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{r['type']}/{r['id']}": r for r in doc["stores"]["huggingface"]["repos"]}


def row(text: str, first_cell: str) -> str:
    """The table line that starts with ``first_cell``."""
    for line in text.splitlines():
        if line.strip().startswith(first_cell + " "):
            return line
    raise AssertionError(f"no row for {first_cell!r} in:\n{text}")


def tree_listing(root: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry below ``root``: kind, size, mtime_ns (links: their target)."""
    out: dict[str, tuple[Any, ...]] = {}
    if not root.exists():
        return out
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = Path(dirpath, name)
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                out[rel] = ("link", os.readlink(path), st.st_mtime_ns)
            elif path.is_dir():
                out[rel] = ("dir", st.st_mtime_ns)
            else:
                out[rel] = ("file", st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def info_size(digest: str) -> int:
    return ob.blob_path(ollama_dir(), digest).stat().st_size


def write_spec(text: str, path: Path | None = None) -> Path:
    target = path or Path("mlx.yaml")
    target.write_text(text)
    return target


# --- no spec, no stores -------------------------------------------------------------------------


def test_no_spec_and_no_stores(capsys: pytest.CaptureFixture[str], no_daemon: str) -> None:
    text = status_text(capsys)
    assert "no store here" in text
    assert "no cache here" in text
    assert "Reclaimable: 0 B" in text

    doc = status_json(capsys)
    assert set(doc) == TOP_KEYS
    assert doc["format_version"] == "1"
    assert doc["spec"] == {"path": None, "valid": None}
    ollama, hf = doc["stores"]["ollama"], doc["stores"]["huggingface"]
    assert ollama["exists"] is False and ollama["models"] == []
    assert ollama["path"] == str(ollama_dir())
    assert hf["exists"] is False and hf["repos"] == []
    assert hf["path"] == str(hf_dir())
    assert doc["apps"] == [] and doc["duplicates"] == [] and doc["warnings"] == []
    assert doc["missing"] == []
    for store in ollama, hf:
        assert (store["count"], store["total_bytes"]) == (0, 0)
    assert doc["reclaimable"] == dict.fromkeys([*RECLAIM_KINDS, "total"], 0)


def test_empty_stores_exist(capsys: pytest.CaptureFixture[str], no_daemon: str) -> None:
    (ollama_dir() / "blobs").mkdir(parents=True)
    (ollama_dir() / "manifests").mkdir()
    hf_dir().mkdir(parents=True)
    doc = status_json(capsys)
    assert doc["stores"]["ollama"]["exists"] is True
    assert doc["stores"]["ollama"]["models"] == []
    assert doc["stores"]["huggingface"]["exists"] is True
    assert doc["stores"]["huggingface"]["repos"] == []
    text = status_text(capsys)
    assert "no store here" not in text and "no cache here" not in text


# --- models and repos: size, status, declared_as, managed --------------------------------------


SPEC_DECLARING = """\
version: 1
models:
  qwen:
    source: ollama://qwen2.5:7b
  gguf:
    source: ollama://hf.co/bartowski/Gemma-GGUF:Q4_K_M
  absent-one:
    source: ollama://registry.ollama.ai/library/llama3.2:1b
    ensure: absent
  small:
    source: hf://org/Repo
  never-installed:
    source: hf://nobody/nothing
"""


@pytest.fixture
def stores() -> dict[str, Any]:
    """Three Ollama models (one broken), two HF model repos and a dataset."""
    om, hf = ollama_dir(), hf_dir()
    qwen = ob.add_model(om, "qwen2.5:7b")
    gguf = ob.add_model(om, "hf.co/bartowski/Gemma-GGUF:Q4_K_M")
    llama = ob.add_model(om, "llama3.2:1b")
    model_layer = llama.layer("model")
    assert model_layer is not None
    ob.remove_blob(om, model_layer.digest)
    files = {"config.json": b'{"model_type": "llama"}\n', "model.safetensors": b"w" * 3000}
    repo = hb.add_revision(hf, "org/Repo", files)
    other = hb.add_revision(hf, "other/thing", {"model.gguf": b"g" * 1234}, refs=("main", "v1"))
    data = hb.add_revision(hf, "org/data", {"train.parquet": b"p" * 99}, repo_type="dataset")
    return {
        "qwen": qwen,
        "gguf": gguf,
        "llama": llama,
        "missing": model_layer,
        "repo": repo,
        "repo_files": files,
        "other": other,
        "data": data,
    }


def test_every_model_and_repo_is_listed_with_size_and_status(
    capsys: pytest.CaptureFixture[str], stores: dict[str, Any], no_daemon: str
) -> None:
    doc = status_json(capsys)
    models = models_by_name(doc)
    assert set(models) == {"qwen2.5:7b", "hf.co/bartowski/Gemma-GGUF:Q4_K_M", "llama3.2:1b"}

    qwen = models["qwen2.5:7b"]
    assert qwen["size"] == stores["qwen"].size == sum(b.size for b in stores["qwen"].blobs)
    assert qwen["status"] == "ok" and qwen["problems"] == []
    assert qwen["source"] == "ollama://qwen2.5:7b"
    assert qwen["manifest_digest"] == stores["qwen"].digest
    assert {x["sha256"] for x in qwen["layers"]} == {b.hex for b in stores["qwen"].blobs}
    assert all(x["present"] for x in qwen["layers"])
    sizes = {x["sha256"]: x["size"] for x in qwen["layers"]}
    on_disk = {b.hex: info_size(b.digest) for b in stores["qwen"].blobs}
    assert sizes == on_disk

    llama = models["llama3.2:1b"]
    assert llama["status"] == "broken"
    assert llama["size"] == stores["llama"].size  # the manifest's size, blob missing or not
    missing = stores["missing"].hex
    assert [x["present"] for x in llama["layers"] if x["sha256"] == missing] == [False]
    assert len(llama["problems"]) == 1
    assert missing[:12] in llama["problems"][0] and "missing" in llama["problems"][0]

    repos = repos_by_id(doc)
    assert set(repos) == {"model/org/Repo", "model/other/thing", "dataset/org/data"}
    repo = repos["model/org/Repo"]
    expected = sum(len(b) for b in stores["repo_files"].values())
    assert repo["size"] == expected
    assert repo["status"] == "ok"
    assert repo["source"] == "hf://org/Repo"
    assert repo["refs"] == {"main": stores["repo"].commit}
    [rev] = repo["revisions"]
    assert rev == {
        "commit": stores["repo"].commit,
        "refs": ["main"],
        "size": expected,
        "files": 2,
        "dangling": [],
        "detached": False,
    }
    other = repos["model/other/thing"]
    assert other["size"] == 1234
    assert other["refs"] == {"main": stores["other"].commit, "v1": stores["other"].commit}
    assert other["revisions"][0]["refs"] == ["main", "v1"]
    dataset = repos["dataset/org/data"]
    assert dataset["size"] == 99
    assert dataset["source"] is None and dataset["declared_as"] is None

    text = status_text(capsys)
    assert "broken" in row(text, "llama3.2:1b")
    assert " ok " in row(text, "qwen2.5:7b")
    assert "4.7 kB" in row(text, "qwen2.5:7b")  # 4737 bytes: the builder's default model
    assert f"{missing[:12]} is missing" in text


def test_declared_as_matches_ollama_names_and_hf_repo_ids(
    capsys: pytest.CaptureFixture[str], stores: dict[str, Any], no_daemon: str
) -> None:
    spec = write_spec(SPEC_DECLARING)
    doc = status_json(capsys)
    assert doc["spec"]["path"] is not None
    assert Path(doc["spec"]["path"]).resolve() == spec.resolve()
    models = models_by_name(doc)
    assert models["qwen2.5:7b"]["declared_as"] == "qwen"
    assert models["hf.co/bartowski/Gemma-GGUF:Q4_K_M"]["declared_as"] == "gguf"
    assert models["llama3.2:1b"]["declared_as"] == "absent-one"  # full name form, ensure: absent
    repos = repos_by_id(doc)
    assert repos["model/org/Repo"]["declared_as"] == "small"
    assert repos["model/other/thing"]["declared_as"] is None
    assert repos["dataset/org/data"]["declared_as"] is None
    # Declared but not installed: nothing invented in the stores' lists.
    assert "nobody/nothing" not in json.dumps(doc["stores"])

    text = status_text(capsys)
    assert " qwen " in row(text, "qwen2.5:7b")
    assert " small " in row(text, "org/Repo")
    assert " - " in row(text, "other/thing")


def test_declared_but_missing_models_are_listed_with_their_source(
    capsys: pytest.CaptureFixture[str], stores: dict[str, Any], no_daemon: str
) -> None:
    lora = home() / "models" / "my-lora"
    write_spec(
        SPEC_DECLARING
        + "  pulled-later:\n    source: ollama://llama3.2:3b\n"
        + "  gone-absent:\n    source: ollama://gone:1b\n    ensure: absent\n"
        + "  lora:\n    source: file://~/models/my-lora\n"
        + "  pinned:\n    source: hf://org/pinned\n    revision: v1\n"
    )
    doc = status_json(capsys)
    assert doc["missing"] == [
        {
            "name": "never-installed",
            "source": "hf://nobody/nothing",
            "store": "huggingface",
            "revision": None,
        },
        {
            "name": "pulled-later",
            "source": "ollama://llama3.2:3b",
            "store": "ollama",
            "revision": None,
        },
        {"name": "lora", "source": f"file://{lora}", "store": "file", "revision": None},
        {"name": "pinned", "source": "hf://org/pinned", "store": "huggingface", "revision": "v1"},
    ]  # ensure: absent and installed models are not missing; mlx.yaml order
    lora.mkdir(parents=True)
    assert [m["name"] for m in status_json(capsys)["missing"]] == [
        "never-installed",
        "pulled-later",
        "pinned",
    ]
    text = status_text(capsys)
    assert text.count("Declared in mlx.yaml, not present") == 1
    assert row(text, "pulled-later").split() == ["pulled-later", "ollama://llama3.2:3b", "-"]
    assert row(text, "pinned").split() == ["pinned", "hf://org/pinned", "v1"]


def test_store_totals_count_each_blob_once(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    om = ollama_dir()
    shared = b"GGUF" + b"s" * 1000
    a = ob.add_model(om, "a:1b", [("model", shared), ("params", b'{"a": 1}')])
    b = ob.add_model(om, "b:1b", [("model", shared), ("params", b'{"b": 22}')])
    hb.add_revision(hf_dir(), "org/one", {"w.bin": b"w" * 300})
    hb.add_revision(hf_dir(), "org/two", {"w.bin": b"v" * 50, "c.json": b"{}"})
    blobs = {x.digest: info_size(x.digest) for m in (a, b) for x in (m.config, *m.layers)}
    assert len(blobs) == 5  # the model layer is shared
    doc = status_json(capsys)
    ollama, hf = doc["stores"]["ollama"], doc["stores"]["huggingface"]
    assert (ollama["count"], ollama["total_bytes"]) == (2, sum(blobs.values()))
    assert ollama["total_bytes"] < sum(m["size"] for m in ollama["models"])
    assert (hf["count"], hf["total_bytes"]) == (2, 352)
    text = status_text(capsys)
    assert f"total: 2 models, {human(sum(blobs.values()))}" in text
    assert "total: 2 repos, 352 B" in text


def human(n: int) -> str:
    return f"{n / 1000:.1f} kB" if n >= 1000 else f"{n} B"


def test_managed_only_for_sources_in_the_registry(
    capsys: pytest.CaptureFixture[str], stores: dict[str, Any], no_daemon: str
) -> None:
    write_spec(SPEC_DECLARING)
    with Registry.open(state_dir()) as registry:
        registry.add_model("ollama://qwen2.5:7b", "qwen", None, WS())
        registry.add_model("hf://org/Repo", "small", stores["repo"].commit, WS())
        registry.add_model("ollama://not-installed:1b", "ghost", None, WS())
    doc = status_json(capsys)
    managed = {name: m["managed"] for name, m in models_by_name(doc).items()}
    assert managed == {
        "qwen2.5:7b": True,
        "hf.co/bartowski/Gemma-GGUF:Q4_K_M": False,  # declared, but mlx did not install it
        "llama3.2:1b": False,
    }
    repos = {rid: r["managed"] for rid, r in repos_by_id(doc).items()}
    assert repos == {
        "model/org/Repo": True,
        "model/other/thing": False,
        "dataset/org/data": False,
    }
    text = status_text(capsys)
    assert " yes " in row(text, "qwen2.5:7b")
    assert " yes " not in row(text, "llama3.2:1b")
    assert " yes " in row(text, "org/Repo")


def test_status_without_registry_manages_nothing(
    capsys: pytest.CaptureFixture[str], stores: dict[str, Any], no_daemon: str
) -> None:
    doc = status_json(capsys)
    assert not any(m["managed"] for m in doc["stores"]["ollama"]["models"])
    assert not any(r["managed"] for r in doc["stores"]["huggingface"]["repos"])


def test_missing_config_blob_is_called_config(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    info = ob.add_model(ollama_dir(), "qwen2.5:7b")
    ob.remove_blob(ollama_dir(), info.config.digest)
    [model] = status_json(capsys)["stores"]["ollama"]["models"]
    assert model["status"] == "broken"
    assert model["problems"][0].startswith("config blob ")


def test_hf_repo_with_missing_blob_is_broken(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    rev = hb.add_revision(hf_dir(), "org/repo", {"a.json": b"{}", "w.safetensors": b"x" * 500})
    hb.remove_blob(rev, "w.safetensors")
    doc = status_json(capsys)
    repo = repos_by_id(doc)["model/org/repo"]
    assert repo["status"] == "broken"
    assert repo["revisions"][0]["dangling"] == ["w.safetensors"]
    assert repo["size"] == 2
    assert "broken" in row(status_text(capsys), "org/repo")


# --- reclaimable: partials, orphans, detached revisions ----------------------------------------


def test_reclaimable_counts_partials_orphans_and_detached_revisions(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    om, hf = ollama_dir(), hf_dir()
    ob.add_model(om, "qwen2.5:7b")
    partial = ob.write_partial(om, b"p" * 1000, parts=2)
    orphan = ob.add_orphan_blob(om, b"o" * 333)
    ollama_partial_bytes = 1000 + sum(p.stat().st_size for p in partial.part_paths)

    shared = {"config.json": b'{"v": 1}'}
    old = hb.add_revision(hf, "org/repo", {**shared, "w.safetensors": b"1" * 700}, refs=())
    new = hb.add_revision(hf, "org/repo", {**shared, "w.safetensors": b"2" * 900})
    incomplete = hb.add_incomplete(hf, "org/repo", b"i" * 123)
    hf_orphan = hb.add_orphan_blob(hf, "org/repo", b"z" * 77)
    # An interrupted first download (huggingface_hub writes the ref and the snapshot
    # folder before the blob): a repo with no file yet and one .incomplete.
    hb.set_ref(hf, "org/first", "main", "c" * 40)
    (hb.repo_dir(hf, "org/first") / "snapshots" / ("c" * 40)).mkdir(parents=True)
    first_incomplete = hb.add_incomplete(hf, "org/first", b"f" * 55)

    doc = status_json(capsys)
    ollama = doc["stores"]["ollama"]
    assert {Path(p["path"]) for p in ollama["partials"]} == {
        partial.partial_path,
        *partial.part_paths,
    }
    assert [Path(p["path"]) for p in ollama["orphans"]] == [orphan]
    assert ollama["orphans"][0]["size"] == 333
    assert ollama["orphans_known"] is True

    repo = repos_by_id(doc)["model/org/repo"]
    revs = {r["commit"]: r for r in repo["revisions"]}
    assert revs[old.commit]["detached"] is True and revs[old.commit]["refs"] == []
    assert revs[new.commit]["detached"] is False and revs[new.commit]["refs"] == ["main"]
    assert repo["refs"] == {"main": new.commit}
    assert [Path(f["path"]) for f in repo["incomplete"]] == [incomplete]
    assert [Path(f["path"]) for f in repo["orphans"]] == [hf_orphan]
    assert repo["size"] == len(b'{"v": 1}') + 700 + 900  # config.json stored once
    first = repos_by_id(doc)["model/org/first"]
    assert [Path(f["path"]) for f in first["incomplete"]] == [first_incomplete]
    assert first["status"] == "partial"

    reclaim = doc["reclaimable"]
    assert reclaim == {
        "duplicates": 0,
        "partials": ollama_partial_bytes + 123 + 55,
        "orphans": 333 + 77,
        "detached_revisions": 700,  # the shared config.json stays with main
        "total": ollama_partial_bytes + 123 + 55 + 333 + 77 + 700,
    }
    assert reclaim["total"] == sum(reclaim[k] for k in RECLAIM_KINDS)

    text = status_text(capsys)
    assert f"{old.commit[:8]} (detached)" in text
    assert f"{new.commit[:8]} (main)" in text
    assert re.search(r"Reclaimable: \S+ \S+ \(duplicates 0 B, partial downloads", text)
    assert "orphan blobs 410 B" in text
    assert "detached revisions 700 B" in text


def test_pinned_detached_revision_is_not_reclaimable(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    old = hb.add_revision(hf_dir(), "org/repo", {"w.safetensors": b"1" * 700}, refs=())
    hb.add_revision(hf_dir(), "org/repo", {"w.safetensors": b"2" * 900})
    write_spec(
        f"version: 1\nmodels:\n  pinned:\n    source: hf://org/repo\n    revision: {old.commit}\n"
    )
    assert status_json(capsys)["reclaimable"]["detached_revisions"] == 0


def test_unparseable_manifest_is_a_warning_and_orphans_are_unknown(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    om = ollama_dir()
    ob.add_model(om, "qwen2.5:7b")
    ob.add_orphan_blob(om, b"o" * 333)
    broken = ob.write_unparseable_manifest(om, "broken:latest")

    doc = status_json(capsys)
    ollama = doc["stores"]["ollama"]
    assert ollama["orphans_known"] is False
    assert ollama["orphans"] == []
    assert doc["reclaimable"]["orphans"] == 0
    assert [m["name"] for m in ollama["models"]] == ["qwen2.5:7b"]
    assert any(str(broken) in w for w in doc["warnings"])

    result = mlx(capsys, "status")
    assert result.code == 0
    no_traceback(result)
    # Warnings are logs: on stderr, one line each, after the tables on stdout.
    assert "warning:" not in result.out and "qwen2.5:7b" in result.out
    [line] = [x for x in result.err.splitlines() if "broken/latest" in x]
    assert all(x.startswith("warning: ") for x in result.err.splitlines())
    assert line.startswith(
        "warning: unreadable Ollama manifest ~/.ollama/models/manifests/"  # home as ~
        "registry.ollama.ai/library/broken/latest: "
    )


# --- duplicates and app folders -----------------------------------------------------------------


def test_lmstudio_copy_of_an_ollama_blob_is_a_duplicate_found_by_hash(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    info = ob.add_model(ollama_dir(), "qwen2.5:7b", ob.default_layers("q", 20_000))
    layer = info.layer("model")
    assert layer is not None
    blob = info.blob_path(layer)
    lms = home() / ".lmstudio" / "models"
    copy = lms / "Qwen" / "Qwen2.5-7B-GGUF" / "qwen2.5-7b.gguf"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(blob.read_bytes())
    # A symlink to the blob is the same file, not a duplicate.
    linked = lms / "Qwen" / "linked" / "linked.gguf"
    linked.parent.mkdir()
    os.symlink(blob, linked)

    doc = status_json(capsys)
    [group] = doc["duplicates"]
    assert group == {
        "sha256": sha256_hex(blob.read_bytes()),
        "size": 20_000,
        "paths": sorted([str(copy), str(blob)]),
        "reclaimable": 20_000,
        "found_by": "hash",
    }
    assert doc["reclaimable"]["duplicates"] == 20_000
    assert doc["reclaimable"]["total"] == 20_000
    [app] = doc["apps"]
    assert app["name"] == "lmstudio" and app["declared"] is False and app["exists"] is True
    assert app["path"] == str(lms)
    kinds = {Path(e["path"]): (e["kind"], e["managed"]) for e in app["entries"]}
    assert kinds == {copy: ("file", False), linked: ("link", False)}

    text = status_text(capsys)
    assert "lmstudio (found, not in mlx.yaml)" in text
    assert "Duplicates" in text and sha256_hex(blob.read_bytes())[:12] in text


def test_hf_gguf_equal_to_an_ollama_blob_is_a_duplicate_found_by_name(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    gguf = ob.fake_gguf("shared", 8000)
    ob.add_model(ollama_dir(), "hf.co/org/model-GGUF:Q4_K_M", [("model", gguf)])
    rev = hb.add_revision(hf_dir(), "org/model-GGUF", {"model.Q4_K_M.gguf": gguf})
    doc = status_json(capsys)
    [group] = doc["duplicates"]
    assert group["sha256"] == sha256_hex(gguf)
    assert group["found_by"] == "name"
    assert group["size"] == 8000 and group["reclaimable"] == 8000
    assert set(group["paths"]) == {
        str(ob.blob_path(ollama_dir(), sha256_hex(gguf))),
        str(rev.files["model.Q4_K_M.gguf"].blob_path),
    }


APP_SPEC = """\
version: 1
models:
  qwen:
    source: ollama://qwen2.5:7b
apps:
  myapp:
    path: ~/apps/myapp
    models: [qwen]
  lms:
    path: ~/.lmstudio/models
    layout: lmstudio
    models: [qwen]
  gone:
    path: ~/apps/not-there
"""


def test_declared_apps_links_dangling_and_foreign(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    info = ob.add_model(ollama_dir(), "qwen2.5:7b")
    layer = info.layer("model")
    assert layer is not None
    blob = info.blob_path(layer)
    app = home() / "apps" / "myapp"
    app.mkdir(parents=True)
    made = app / "qwen.gguf"
    os.symlink(blob, made)  # recorded in the registry below: managed
    handmade = app / "other.gguf"
    os.symlink(os.path.relpath(blob, app), handmade)  # a link mlx did not make
    dangling = app / "old.gguf"
    os.symlink(home() / "nowhere" / "old.gguf", dangling)
    foreign = app / "notes.txt"
    foreign.write_text("mine")
    lms_file = home() / ".lmstudio" / "models" / "pub" / "model" / "m.gguf"
    lms_file.parent.mkdir(parents=True)
    lms_file.write_bytes(b"tiny")
    write_spec(APP_SPEC)
    with Registry.open(state_dir()) as registry:
        registry.add_link(made, blob, "myapp", "qwen")

    doc = status_json(capsys)
    apps = {a["name"]: a for a in doc["apps"]}
    assert set(apps) == {"myapp", "lms", "gone"}  # LM Studio's folder is not listed twice
    assert all(a["declared"] for a in apps.values())
    assert apps["gone"]["exists"] is False and apps["gone"]["entries"] == []
    assert apps["lms"]["layout"] == "lmstudio"
    assert [Path(e["path"]) for e in apps["lms"]["entries"]] == [lms_file]
    entries = {Path(e["path"]).name: e for e in apps["myapp"]["entries"]}
    assert apps["myapp"]["layout"] == "dir" and apps["myapp"]["exists"] is True
    assert {n: (e["kind"], e["managed"]) for n, e in entries.items()} == {
        "qwen.gguf": ("link", True),
        "other.gguf": ("link", False),
        "old.gguf": ("dangling", False),
        "notes.txt": ("file", False),
    }
    assert Path(entries["qwen.gguf"]["target"]) == blob
    assert Path(entries["other.gguf"]["target"]) == blob  # relative links are resolved
    assert Path(entries["old.gguf"]["target"]) == home() / "nowhere" / "old.gguf"
    assert entries["notes.txt"]["target"] is None

    text = status_text(capsys)
    cells = row(text, "myapp").split()
    # LINKS 2 (qwen, other), MANAGED 1, DANGLING 1, FOREIGN 3 (everything mlx did not make)
    assert cells == ["myapp", "~/apps/myapp", "2", "1", "1", "3"]
    assert "(missing)" in row(text, "gone")
    assert "found, not in mlx.yaml" not in text


# --- the Ollama daemon --------------------------------------------------------------------------


def test_daemon_reachable_shows_version_and_running_models(
    capsys: pytest.CaptureFixture[str], ollama_server: FakeOllama
) -> None:
    ob.add_model(ollama_dir(), "qwen2.5:7b")
    ob.add_model(ollama_dir(), "llama3.2:1b")
    ollama_server.set_running("qwen2.5:7b", size_vram=1234)
    doc = status_json(capsys)
    daemon = doc["stores"]["ollama"]["daemon"]
    assert daemon["reachable"] is True
    assert daemon["version"] == DEFAULT_VERSION
    assert daemon["host"] == ollama_server.url.rstrip("/")
    assert daemon["error"] is None
    [running] = daemon["running"]
    assert running["name"] == "qwen2.5:7b" and running["size_vram"] == 1234
    text = flat(status_text(capsys))
    assert f"daemon {DEFAULT_VERSION} at" in text
    assert "running: qwen2.5:7b" in text
    assert "not reachable" not in text


def test_daemon_unreachable_is_reported_not_an_error(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    ob.add_model(ollama_dir(), "qwen2.5:7b")
    doc = status_json(capsys)
    daemon = doc["stores"]["ollama"]["daemon"]
    assert daemon["reachable"] is False and daemon["version"] is None
    assert daemon["host"] == no_daemon
    assert "ollama serve" in daemon["error"]
    assert [m["name"] for m in doc["stores"]["ollama"]["models"]] == ["qwen2.5:7b"]
    text = flat(status_text(capsys))
    assert f"not reachable at {no_daemon}" in text
    assert "`ollama serve`" in text
    assert "qwen2.5:7b" in text


# --- bad spec files -----------------------------------------------------------------------------


INVALID_SPEC = "version: 1\nmodels:\n  a:\n    sorce: ollama://qwen2.5:7b\n  b: {}\n"
INVALID_WARNING = (
    "warning: mlx.yaml is invalid (2 errors; `mlx validate` shows them): declared models "
    "not shown, stores at their default locations"
)


def test_invalid_spec_still_shows_the_inventory_with_a_warning(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    ob.add_model(ollama_dir(), "qwen2.5:7b")
    write_spec(INVALID_SPEC)
    result = mlx(capsys, "status")
    assert result.code == 0
    no_traceback(result)
    assert " - " in row(result.out, "qwen2.5:7b")  # listed, declared as nothing
    assert result.err.splitlines() == [INVALID_WARNING]

    result = mlx(capsys, "status", "--json")
    assert result.code == 0 and result.err == ""
    doc = json.loads(result.out)
    assert doc["spec"] == {"path": str(Path("mlx.yaml").absolute()), "valid": False}
    assert doc["warnings"] == [INVALID_WARNING.removeprefix("warning: ")]
    assert [m["name"] for m in doc["stores"]["ollama"]["models"]] == ["qwen2.5:7b"]


def test_validate_still_rejects_what_status_tolerates(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    write_spec(INVALID_SPEC)
    result = mlx(capsys, "validate")
    assert result.code == 1
    assert re.search(r"^mlx\.yaml:4:5: error: .*sorce", result.out, re.M)


def test_missing_file_exits_1(capsys: pytest.CaptureFixture[str], no_daemon: str) -> None:
    result = mlx(capsys, "status", "-f", "missing.yaml")
    assert result.code == 1
    no_traceback(result)
    assert "missing.yaml" in result.err
    assert "mlx init" in result.err
    result = mlx(capsys, "status", "--json", "-f", "missing.yaml")
    assert result.code == 1 and result.out.strip() == ""


def test_missing_mlx_file_env_exits_1(
    capsys: pytest.CaptureFixture[str], no_daemon: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLX_FILE", "nope.yaml")
    write_spec("version: 1\n")  # ./mlx.yaml exists, but $MLX_FILE names another file
    result = mlx(capsys, "status")
    assert result.code == 1
    assert "nope.yaml" in result.err


def test_spec_from_file_option_is_used(capsys: pytest.CaptureFixture[str], no_daemon: str) -> None:
    ob.add_model(ollama_dir(), "qwen2.5:7b")
    other = write_spec(
        "version: 1\nmodels:\n  elsewhere:\n    source: ollama://qwen2.5\n", Path("other.yaml")
    )
    write_spec("version: 1\nmodels:\n  here:\n    source: ollama://qwen2.5:7b\n")
    doc = status_json(capsys, "-f", str(other))
    assert doc["stores"]["ollama"]["models"][0]["declared_as"] is None  # :latest, not :7b
    doc = status_json(capsys)
    assert doc["stores"]["ollama"]["models"][0]["declared_as"] == "here"


# --- status is read-only ------------------------------------------------------------------------


def test_status_does_not_change_the_stores(
    capsys: pytest.CaptureFixture[str], no_daemon: str
) -> None:
    om, hf = ollama_dir(), hf_dir()
    info = ob.add_model(om, "qwen2.5:7b")
    ob.add_model(om, "llama3.2:1b")
    ob.write_partial(om, b"p" * 100)
    ob.add_orphan_blob(om, b"o" * 10)
    ob.add_junk_file(om, "COPY123")
    ob.write_unparseable_manifest(om)
    rev = hb.add_revision(hf, "org/repo", {"a.json": b"{}", "w.safetensors": b"w" * 50})
    hb.add_revision(hf, "org/repo", {"a.json": b"{}"}, refs=())
    hb.add_incomplete(hf, "org/repo", b"i" * 5)
    hb.add_orphan_blob(hf, "org/repo", b"z" * 7)
    hb.remove_blob(rev, "w.safetensors")
    layer = info.layer("model")
    assert layer is not None
    lms = home() / ".lmstudio" / "models" / "p" / "m"
    lms.mkdir(parents=True)
    (lms / "m.gguf").write_bytes(info.blob_path(layer).read_bytes())  # forces hashing
    write_spec(APP_SPEC.replace("~/apps/not-there", "~/apps/gone"))

    before = (tree_listing(om), tree_listing(hf), tree_listing(home() / ".lmstudio"))
    for args in ([], ["--json"], ["-v"]):
        assert mlx(capsys, "status", *args).code == 0
    after = (tree_listing(om), tree_listing(hf), tree_listing(home() / ".lmstudio"))
    assert after == before
    assert not (home() / "apps").exists()  # declared app folders are not created either


# --- the human output, as a snapshot ------------------------------------------------------------


def test_human_output_snapshot(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    ollama_server: FakeOllama,
    snapshot: SnapshotAssertion,
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setenv("MLX_HOST", "laptop")
    om, hf = ollama_dir(), hf_dir()
    ob.add_model(om, "qwen2.5:7b")
    ob.add_model(om, "llama3.2:1b")
    ob.add_model(om, "hf.co/bartowski/Gemma-GGUF:Q4_K_M")
    ob.add_orphan_blob(om, b"o" * 333)
    hb.add_revision(hf, "org/Repo", {"config.json": b"{}", "w.safetensors": b"w" * 3000})
    hb.add_revision(hf, "org/Repo", {"config.json": b"{}", "w.safetensors": b"v" * 700}, refs=())
    hb.add_revision(hf, "org/data", {"d.parquet": b"d" * 99}, repo_type="dataset")
    ollama_server.set_running("qwen2.5:7b")
    write_spec(
        "version: 1\nmodels:\n  qwen:\n    source: ollama://qwen2.5:7b\n"
        "  small:\n    source: hf://org/Repo\n"
        "  new:\n    source: hf://mlx-community/Qwen2.5-7B-Instruct-4bit\n    revision: v2\n"
    )
    with Registry.open(state_dir()) as registry:
        registry.add_model("ollama://qwen2.5:7b", "qwen", None, WS())
    # Every time that feeds LAST USED is three days and an hour before now: "3 days ago"
    # however long the run takes (ages are relative to now, so a fixed date would drift).
    then = time.time() - 3 * DAY - 3600
    for root in (om, hf):
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                os.utime(Path(dirpath, name), (then, then), follow_symlinks=False)

    result = mlx(capsys, "status")
    assert result.code == 0, result.err
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", result.out)
    assert "3 days ago" in text
    # The workspace is named after the test's temporary folder: the one machine-specific bit.
    assert re.sub(r"^Workspace: \S+", "Workspace: WORKSPACE", text, flags=re.M) == snapshot
