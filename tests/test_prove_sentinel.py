"""The ``sentinel`` fixture: a tree of user files outside every store and app folder.

First, that its check can fail: each kind of change a buggy command could make (content,
mode, deletion, a link retargeted, a file replaced by a hardlink or a copy, a temp file made
and removed in one of its folders) is reported with the path. Then the adoption pattern in
a real run: stores whose entries link into the tree, an apply with prune, every cleanup and
dedup, and the tree unchanged afterwards.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.builders.common import make_old
from tests.helpers import Sentinel, hf_dir, manage, mlx, ollama_dir
from tests.helpers.apply import go_offline, no_traceback


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    go_offline(monkeypatch)  # no daemon, no hub


def _rewrite(s: Sentinel) -> None:
    (s.root / "notes.txt").write_text("changed\n")


def _same_bytes_new_mtime(s: Sentinel) -> None:
    path = s.root / "notes.txt"
    os.utime(path, ns=(0, 0))


def _chmod(s: Sentinel) -> None:
    (s.root / "notes.txt").chmod(0o600)


def _delete(s: Sentinel) -> None:
    (s.root / "weights" / "nested" / "deep" / "config.json").unlink()


def _retarget(s: Sentinel) -> None:
    (s.root / "loop").unlink()
    os.symlink("blobs", s.root / "loop")


def _hardlink_over(s: Sentinel) -> None:
    other = s.root.parent / "other-copy"
    shutil.copy(s.gguf, other)
    os.replace(other, s.gguf)  # same bytes, another inode: what a dedup over it would do


def _temp_file(s: Sentinel) -> None:
    tmp = s.root / "weights" / ".tmp-mlx"
    tmp.write_bytes(b"x")
    tmp.unlink()


def _readonly_written(s: Sentinel) -> None:
    path = s.root / "readonly.bin"
    path.chmod(0o644)
    path.write_bytes(b"overwritten")
    path.chmod(0o444)


CHANGES: dict[str, tuple[Callable[[Sentinel], None], str]] = {
    "content": (_rewrite, "notes.txt"),
    "mtime": (_same_bytes_new_mtime, "notes.txt"),
    "mode": (_chmod, "notes.txt"),
    "deleted": (_delete, "weights/nested/deep/config.json"),
    "link": (_retarget, "loop"),
    "replaced": (_hardlink_over, "weights/model.gguf"),
    "temp-file": (_temp_file, "weights"),
    "read-only": (_readonly_written, "readonly.bin"),
}


@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_the_sentinel_check_reports_every_kind_of_change(sentinel: Sentinel, kind: str) -> None:
    sentinel.check()  # untouched: passes
    change, path = CHANGES[kind]

    change(sentinel)

    with pytest.raises(AssertionError) as failure:
        sentinel.check()
    assert path in str(failure.value)


def test_links_into_the_sentinel_from_a_store_are_remembered(sentinel: Sentinel) -> None:
    link = sentinel.link_from(ollama_dir() / "blobs" / "sha256-x", sentinel.gguf)

    assert link.is_symlink() and link.resolve() == sentinel.gguf
    assert sentinel.links == [link]
    sentinel.check()


def test_the_sentinel_lies_outside_the_stores(sentinel: Sentinel) -> None:
    for store in (ollama_dir(), hf_dir(), Path.home()):
        assert not sentinel.root.is_relative_to(store)


def test_a_full_apply_with_links_into_the_sentinel_leaves_it_unchanged(
    capsys: pytest.CaptureFixture[str], sentinel: Sentinel
) -> None:
    """The adoption pattern: build stores that point into the tree, run, check."""
    gone = ob.add_model(ollama_dir(), "gone:1", ob.default_layers("gone", 1024))
    weights = gone.blob_path(gone.layers[0])
    weights.unlink()
    sentinel.link_from(weights, sentinel.gguf)
    manage("ollama://gone:1", "gone")
    data = ob.fake_gguf("dup", 2048)
    ob.add_model(ollama_dir(), "keep:1", [("model", data)])
    rev = hb.add_revision(hf_dir(), "user/dup", {"m.gguf": data})
    sentinel.link_from(rev.snapshot_dir / "mine.gguf", sentinel.root / "readonly.bin")
    stale = sentinel.link_from(ollama_dir() / "blobs" / f"sha256-{'5' * 64}-partial")
    make_old(stale, follow_symlinks=False)
    Path("mlx.yaml").write_text(
        "version: 1\nsettings:\n  prune: true\n  dedup: auto\n"
        "  cleanup: {partials: true, orphans: true, detached_revisions: true}\n"
        "models:\n  keep:\n    source: ollama://keep:1\n"
    )

    result = mlx(capsys, "apply", "-y")

    no_traceback(result)
    assert result.code == 0, (result.out, result.err)
    assert not gone.path.exists()
    assert (rev.snapshot_dir / "m.gguf").read_bytes() == data
    sentinel.check()
