"""Hostile locks, hubs, registries and hosts against mlx.lock and `when:`."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from mlxstate.lock.model import Lockfile, dump_lock
from tests.builders.hf_cache import repo_dir
from tests.fakes.hf_hub import FakeHfHub
from tests.helpers import hf_dir
from tests.helpers.apply import TINY, TINY_FILES
from tests.helpers.locked import (
    HF_MODEL,
    cache_content,
    cache_files,
    hf_entry,
    run,
    snapshots,
    spec,
    write_lock,
)
from tests.test_locked import WEIGHTS, hub, offline

__all__ = ["hub", "offline"]


def test_a_hub_answering_another_commit_for_the_locked_one_keeps_the_installed_revision(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    spec(HF_MODEL)
    old = hub.repo(TINY).refs["main"]
    run(capsys, "apply", "-y", code=0)
    before = cache_files()
    new = hub.push(TINY, {**TINY_FILES, "config.json": b'{"v": 2}\n'}, lfs={WEIGHTS})
    write_lock(tiny=hf_entry(hub, new))
    hub.repo(TINY).refs[new] = old  # asked for the locked commit, the hub says `old`
    out = run(capsys, "apply", "--locked", "-y", code=1).out
    assert "is not in the cache after the download" in out and "removed what this" in out
    assert cache_content(cache_files()) == cache_content(before) and snapshots() == {old}


def test_a_locked_snapshot_is_not_a_detached_revision(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    # A locked download is made by commit: no ref names it, but mlx.lock pins it.
    Path("mlx.yaml").write_text(
        "version: 1\nsettings:\n  cleanup:\n    detached_revisions: true\nmodels:\n" + HF_MODEL
    )
    locked = hub.repo(TINY).refs["main"]
    write_lock(tiny=hf_entry(hub, locked))
    hub.push(TINY, {**TINY_FILES, "config.json": b'{"v": 2}\n'}, lfs={WEIGHTS})
    run(capsys, "apply", "--locked", "-y", code=0)
    assert snapshots() == {locked}
    assert "No changes" in run(capsys, "plan", "--locked", code=0).out
    run(capsys, "apply", "--locked", "-y", code=0)
    assert snapshots() == {locked}


def test_a_locked_snapshot_survives_plain_apply_and_clean(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    """Without --locked the lock is not followed, but what it pins is still not garbage:
    neither the detached-revision cleanup of a plain apply nor `mlx clean` deletes it."""
    Path("mlx.yaml").write_text(
        "version: 1\nsettings:\n  cleanup:\n    detached_revisions: true\nmodels:\n" + HF_MODEL
    )
    locked = hub.repo(TINY).refs["main"]
    write_lock(tiny=hf_entry(hub, locked))
    newer = hub.push(TINY, {**TINY_FILES, "config.json": b'{"v": 2}\n'}, lfs={WEIGHTS})
    run(capsys, "apply", "--locked", "-y", code=0)
    run(capsys, "apply", "-y", code=0)  # plain: installs main, keeps the locked commit
    assert snapshots() == {locked, newer}
    run(capsys, "clean", "-y", code=0)
    assert snapshots() == {locked, newer}
    Path("mlx.lock").unlink()  # no lock: the old commit is a detached revision again
    run(capsys, "clean", "-y", code=0)
    assert snapshots() == {newer}


def test_an_app_links_the_locked_snapshot(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    apps = "version: 1\napps:\n  play:\n    path: play\n    models: [tiny]\nmodels:\n"
    Path("mlx.yaml").write_text(apps + HF_MODEL)
    old = hub.repo(TINY).refs["main"]
    run(capsys, "apply", "-y", code=0)  # main, linked
    new = hub.push(TINY, {**TINY_FILES, "config.json": b'{"v": 2}\n'}, lfs={WEIGHTS})
    write_lock(tiny=hf_entry(hub, new))
    run(capsys, "apply", "--locked", "-y", code=0)
    assert snapshots() == {old, new}
    assert Path(os.readlink("play/tiny")).name == new  # the locked bytes, not main's
    assert "No changes" in run(capsys, "plan", "--locked", code=0).out
    Path("play/tiny").unlink()
    shutil.rmtree(repo_dir(hf_dir(), TINY))
    run(capsys, "apply", "--locked", "-y", code=0)  # a fresh install, linked in the same apply
    assert Path(os.readlink("play/tiny")).name == new and Path("play/tiny/config.json").exists()


def _unblock_later(fifo: Path) -> threading.Thread:
    """Opens the FIFO for writing after a while, so a reader that blocks on it fails the test
    instead of hanging it."""

    where = fifo.resolve()  # the test's folder: the thread may outlive its chdir

    def writer() -> None:
        time.sleep(8)
        with contextlib.suppress(OSError):
            if stat.S_ISFIFO(os.lstat(where).st_mode):
                with open(where, "wb") as handle:
                    handle.write(b"{}")

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("args", [("plan", "--locked"), ("lock", "--check"), ("lock",)])
def test_a_lock_that_is_a_fifo_or_a_device_is_refused_not_read(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub, args: tuple[str, ...]
) -> None:
    spec(HF_MODEL)
    os.mkfifo("mlx.lock")
    _unblock_later(Path("mlx.lock"))
    err = run(capsys, *args, code=1).err
    assert "mlx.lock is not a regular file" in err and stat.S_ISFIFO(os.lstat("mlx.lock").st_mode)
    os.unlink("mlx.lock")
    os.symlink("/dev/zero", "mlx.lock")  # never ends; and must never be replaced
    assert "mlx.lock is not a regular file" in run(capsys, *args, code=1).err
    assert os.path.islink("mlx.lock") and stat.S_ISCHR(os.stat("/dev/zero").st_mode)


def test_a_lock_with_an_absurd_size_is_malformed_not_a_crash(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    spec(HF_MODEL)
    entry = hf_entry(hub, hub.repo(TINY).refs["main"])
    raw = dump_lock(Lockfile({"tiny": entry})).replace(b'"size": 5132', b'"size": 1' + b"0" * 400)
    Path("mlx.lock").write_bytes(raw)
    err = run(capsys, "plan", "--locked", code=1).err
    assert "a malformed entry (expected a size, got 1000" in err


@pytest.mark.parametrize(
    ("sibling", "why"),
    [
        ({"rfilename": "../evil"}, "file path '../evil' is not a path inside the repo"),
        ({"rfilename": "/abs"}, "file path '/abs' is not a path inside the repo"),
        ({"blobId": "../../x"}, "blob_id '../../x' is not 40 hex digits"),
        ({"size": -5}, "size -5 is not a file size"),
        ({"size": "abc"}, "sent a bad file list for hf://org/tiny"),
    ],
)
def test_mlx_lock_refuses_what_a_hostile_hub_lists(
    capsys: pytest.CaptureFixture[str],
    hub: FakeHfHub,
    monkeypatch: pytest.MonkeyPatch,
    sibling: dict[str, object],
    why: str,
) -> None:
    """A lock plan and apply would refuse is never written: `mlx lock --upgrade`, the fix the
    refusal names, would only write it again."""
    real = FakeHfHub._info

    def info(*args: Any) -> dict[str, object]:
        doc = real(*args)
        siblings = doc["siblings"]
        assert isinstance(siblings, list)
        siblings[0].update(sibling)  # config.json, a git (non-LFS) file
        return doc

    monkeypatch.setattr(FakeHfHub, "_info", staticmethod(info))
    spec(HF_MODEL)
    err = run(capsys, "lock", code=1).err
    assert why in err and "models.tiny:" in err and not Path("mlx.lock").exists()


def test_a_saved_plan_for_a_host_runs_there_whatever_the_case_of_its_name(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec(HF_MODEL + "    when: {hosts: [studio]}\n")
    run(capsys, "plan", "--host", "Studio", "--out", "p.json", code=0)
    monkeypatch.setenv("MLX_HOST", "laptop")
    assert "saved plan was made for host 'Studio'" in run(capsys, "apply", "p.json", code=1).err
    monkeypatch.setenv("MLX_HOST", "STUDIO")
    run(capsys, "apply", "p.json", code=0)
    assert snapshots() == {hub.repo(TINY).refs["main"]}
