"""Hostile locks, hubs, registries and hosts against mlx.lock and `when:`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

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
