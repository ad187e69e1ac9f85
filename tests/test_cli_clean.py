"""``mlx clean``: every cleanup at once, through the planner and the executor of apply."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.builders.common import make_old
from tests.helpers import Sentinel, hf_dir, mlx, ollama_dir, state_dir
from tests.helpers.apply import go_offline, no_traceback, tree_state

# Every cleanup off, a model declared and absent: clean must neither need the settings nor
# download anything.
SPEC = """\
version: 1
settings:
  cleanup: {partials: false, orphans: false, detached_revisions: false}
models:
  keep:
    source: ollama://keep:1
  absent:
    source: ollama://absent:1
"""


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    go_offline(monkeypatch)  # no daemon, no hub: a download attempt would fail the run


class Garbage:
    """A stale Ollama partial and orphan, a young partial, an HF orphan and incomplete, a
    detached revision next to a kept one."""

    def __init__(self) -> None:
        self.keep = ob.add_model(ollama_dir(), "keep:1", ob.default_layers("keep", 2048))
        self.partial = ob.write_partial(ollama_dir(), ob.fake_gguf("p", 4096), age=7200)
        self.young = ob.write_partial(ollama_dir(), ob.fake_gguf("y", 4096))
        self.orphan = ob.add_orphan_blob(ollama_dir(), ob.fake_gguf("o", 3000), age=7200)
        self.live = hb.add_revision(hf_dir(), "org/m", {"w.safetensors": b"live" * 500})
        self.old = hb.add_revision(
            hf_dir(), "org/m", {"w.safetensors": b"old!" * 600}, refs=(), mtime=1.0
        )
        self.hf_orphan = hb.add_orphan_blob(hf_dir(), "org/m", b"gone" * 400, age=7200)
        self.incomplete = hb.add_incomplete(hf_dir(), "org/m", b"half", age=7200)

    def gone(self) -> list[Path]:
        return [
            self.partial.partial_path,
            *self.partial.part_paths,
            self.orphan,
            self.hf_orphan,
            self.incomplete,
            self.old.snapshot_dir,
        ]

    def kept(self) -> list[Path]:
        return [
            self.keep.path,
            *(self.keep.blob_path(b) for b in self.keep.blobs),
            self.young.partial_path,
            self.live.snapshot_dir / "w.safetensors",
        ]


def _spec() -> None:
    Path("mlx.yaml").write_text(SPEC)


def test_clean_removes_every_kind_of_garbage_whatever_settings_cleanup_says(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _spec()
    g = Garbage()

    result = mlx(capsys, "clean", "-y")

    no_traceback(result)
    assert result.code == 0, (result.out, result.err)
    assert [p for p in g.gone() if p.exists() or p.is_symlink()] == []
    assert [p for p in g.kept() if not p.exists()] == []
    assert (g.live.snapshot_dir / "w.safetensors").read_bytes() == b"live" * 500
    assert not ob.manifest_path(ollama_dir(), "absent:1").exists()  # nothing downloaded
    assert "Clean complete! 6 removed" in result.out
    assert "ollama.pull" not in result.out


def test_dry_run_lists_the_cleanups_and_changes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _spec()
    Garbage()
    before = tree_state(ollama_dir(), hf_dir())

    text = mlx(capsys, "clean", "--dry-run")
    doc = mlx(capsys, "clean", "--dry-run", "--json")

    assert text.code == doc.code == 0, (text.err, doc.err)
    assert tree_state(ollama_dir(), hf_dir()) == before
    assert "6 to destroy" in text.out
    parsed = json.loads(doc.out)
    assert parsed["dry_run"] is True
    kinds = sorted(a["kind"] for a in parsed["actions"])
    assert kinds == ["cleanup.orphan"] * 2 + ["cleanup.partial"] * 3 + ["cleanup.revision"]
    assert {a["status"] for a in parsed["actions"]} == {"planned"}
    assert parsed["free_bytes"] == sum(a["free_bytes"] for a in parsed["actions"]) > 0


def test_without_yes_and_no_terminal_clean_refuses_and_changes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _spec()
    Garbage()
    before = tree_state(ollama_dir(), hf_dir())

    result = mlx(capsys, "clean")
    as_json = mlx(capsys, "clean", "--json")

    assert result.code == as_json.code == 1
    assert "refusing to clean without confirmation: no terminal to ask on" in result.err
    assert "--json leaves no place to ask" in as_json.err
    assert tree_state(ollama_dir(), hf_dir()) == before


def test_clean_json_reports_each_outcome_and_the_run_is_journaled(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _spec()
    g = Garbage()

    result = mlx(capsys, "clean", "-y", "--json")

    assert result.code == 0, result.err
    doc = json.loads(result.out)  # stdout holds the document alone
    assert doc["dry_run"] is False and doc["failed"] == 0
    assert {a["status"] for a in doc["actions"]} == {"done"}
    assert doc["freed_bytes"] == sum(a["free_bytes"] for a in doc["actions"]) > 0
    assert not g.orphan.exists()
    events = [json.loads(line) for line in (state_dir() / "journal.jsonl").read_text().splitlines()]
    done = {e["action"] for e in events if e["event"] == "done"}
    assert done == {a["id"] for a in doc["actions"]}
    assert events[-1]["event"] == "finished"


def test_nothing_to_clean(capsys: pytest.CaptureFixture[str]) -> None:
    _spec()
    ob.add_model(ollama_dir(), "keep:1", ob.default_layers("keep", 2048))
    before = tree_state(ollama_dir(), hf_dir())

    result = mlx(capsys, "clean")  # no confirmation needed: nothing would change

    assert (result.code, result.out) == (0, "Nothing to clean.\n")
    assert tree_state(ollama_dir(), hf_dir()) == before


def test_clean_without_mlx_yaml_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "clean", "-y")

    no_traceback(result)
    assert result.code == 1
    assert "mlx.yaml" in result.err


def test_hostile_garbage_linking_out_goes_without_its_targets(
    capsys: pytest.CaptureFixture[str], sentinel: Sentinel
) -> None:
    """Partials, orphans, incompletes and a detached snapshot that are links into the user's
    files: clean removes the links (the same confinement as apply), never what they point to."""
    _spec()
    ob.add_model(ollama_dir(), "keep:1", ob.default_layers("keep", 2048))
    blobs = ollama_dir() / "blobs"
    orphan = sentinel.link_from(blobs / sentinel.blob.name, sentinel.blob)
    partial = sentinel.link_from(blobs / f"sha256-{'1' * 64}-partial", sentinel.root / "weights")
    partial_dir = blobs / f"sha256-{'2' * 64}-partial-0"
    partial_dir.mkdir()
    (partial_dir / "user.txt").write_text("x")
    rev = hb.add_revision(hf_dir(), "org/h", {"config.json": b'{"a": 1}\n'})
    incomplete = sentinel.link_from(rev.repo_dir / "blobs" / "ab.0badc0de.incomplete")
    hf_orphan = sentinel.link_from(rev.repo_dir / "blobs" / ("e" * 64), sentinel.gguf)
    detached = sentinel.link_from(
        rev.repo_dir / "snapshots" / ("d" * 40), sentinel.root / "weights"
    )
    make_old(orphan, partial, partial_dir, incomplete, hf_orphan, detached, follow_symlinks=False)

    for args in (("clean", "--dry-run"), ("clean", "--dry-run", "--json"), ("clean", "-y")):
        result = mlx(capsys, *args)
        no_traceback(result)
        sentinel.check(f"after mlx {' '.join(args)}")

    assert (partial_dir / "user.txt").read_text() == "x"  # a folder is no partial file
    assert (rev.snapshot_dir / "config.json").read_bytes() == b'{"a": 1}\n'
