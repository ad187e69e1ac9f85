"""Deduplication (issue 6, "Deduplication"; SPEC §3 ``settings.dedup``, §4, §7; FORMATS.md
"Deduplication facts").

- Planning (pure): the same GGUF in the Ollama store, the HF cache and a declared app folder
  is one group; every copy but the Ollama blob becomes a ``dedup.link`` freeing its size;
  ``dedup: off``, already-hardlinked copies and symlinked copies plan nothing; ``hardlink``
  across filesystems is a warning (device numbers faked in hand-built facts).
- ``mlx apply -y``: hardlinks share one inode, symlinks are absolute links to the kept file,
  the registry records every replacement, and ``plan`` converges. Every path reads the same
  bytes before and after (hashed through every path, links followed).
- Re-checks right before replacing: a copy changed since the plan is left alone ("changed
  since the plan"); a blob whose bytes do not match its sha256 name is corrupt, never linked;
  clone on a filesystem that cannot clone leaves the files as they are.
- Crash safety: SIGKILL at the executor's fail points (and between the link and the rename)
  during a dedup apply, then the next apply converges and no file lost a byte.
- A hypothesis property: whatever the duplicates, apply never changes any path's bytes.

Expectations are computed here from the bytes the builders wrote, never from mlxstate's own
helpers. Tests that pin a known bug are strict xfails: fixing the bug makes them fail until
the marker is removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlxstate.facts import DuplicateGroup, HfCache, Observed, OllamaStore
from mlxstate.mlxyaml.load import parse_spec
from mlxstate.mlxyaml.models import Spec
from mlxstate.plan.dedup import plan_dedup
from mlxstate.plan.params import DedupParams
from mlxstate.registry import read_facts
from mlxstate.seams import Seams
from mlxstate.settings import read_environment
from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.builders.common import git_blob_sha1, sha256_hex
from tests.helpers import (
    Result,
    dead_url,
    hf_dir,
    mlx,
    ollama_dir,
    race_before_actions,
    run_apply,
    state_dir,
)
from tests.helpers.apply import check_hf_cache, check_ollama_store, hub_offline
from tests.helpers.dedup import (
    GGUF,
    Copies,
    app_dir,
    dedups,
    make_copies,
    make_plan_for,
    write_spec,
)

DIGEST = sha256_hex(GGUF)
KILLED = -signal.SIGKILL
TEMP_GLOB = ".*.mlx-dedup-*"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No daemon, no hub: dedup needs neither."""
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    hub_offline(monkeypatch)


# --- the world: one GGUF in three places (tests/helpers/dedup.py) --------------------------------


def roots() -> tuple[Path, ...]:
    return (ollama_dir(), hf_dir(), app_dir())


def through_every_path(*tops: Path) -> dict[str, str]:
    """sha256 of what a reader gets through every file and link below ``tops`` (links
    followed, dangling links noted): the view of Ollama, the HF library and an app."""
    out: dict[str, str] = {}
    for top in tops:
        for dirpath, dirnames, filenames in os.walk(top):
            for name in (*dirnames, *filenames):
                path = Path(dirpath, name)
                if path.is_dir():
                    continue
                try:
                    out[str(path)] = sha256_hex(path.read_bytes())
                except FileNotFoundError:
                    out[str(path)] = "dangling"
    return out


def temp_files(*tops: Path) -> list[Path]:
    return sorted(p for top in tops if top.exists() for p in top.rglob(TEMP_GLOB))


def inode(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def apply(
    capsys: pytest.CaptureFixture[str], *args: str, code: int = 0, seams: Seams | None = None
) -> Result:
    result = mlx(capsys, "apply", *args, seams=seams)
    assert "Traceback" not in result.out + result.err, result.err
    assert result.code == code, (result.out, result.err)
    return result


def said(result: Result) -> str:
    """What mlx printed, with the test's folder (whose name may hold any word) cut out."""
    return (result.out + result.err).replace(str(Path.cwd()) + "/", "")


def plan_code(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    return mlx(capsys, "plan", "--detailed-exitcode", *args)


def journal_details() -> dict[str, str]:
    """action id -> the detail of its last done/failed line."""
    out: dict[str, str] = {}
    path = state_dir() / "journal.jsonl"
    for line in path.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") in ("done", "failed"):
            out[event["action"]] = event.get("detail", "")
    return out


def dedup_rows() -> set[tuple[str, str, str, str]]:
    return {
        (str(d.path), str(d.canonical), d.sha256, d.mechanism)
        for d in read_facts(state_dir()).dedups
    }


# --- planning ------------------------------------------------------------------------------------


def test_three_copies_plan_two_links_keeping_the_ollama_blob() -> None:
    copies = make_copies()
    before = through_every_path(*roots())

    plan = make_plan_for("auto")

    actions = dedups(plan)
    assert sorted(a.subject for a in actions) == sorted([str(copies.hf), str(copies.app)])
    for action in actions:
        assert (action.op, action.symbol) == ("update", "~")
        assert action.params_as(DedupParams).canonical == str(copies.ollama)
        assert action.params_as(DedupParams).sha256 == DIGEST
        assert action.params_as(DedupParams).mechanism == "hardlink"  # one filesystem here
        assert (action.free_bytes, action.download_bytes) == (len(GGUF), 0)
    assert plan.summary()["free_bytes"] == 2 * len(GGUF)
    assert [a for a in plan.actions if a.kind != "dedup.link"] == []
    assert through_every_path(*roots()) == before  # planning touched nothing


def test_cli_plan_shows_the_dedups_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    copies = make_copies()
    write_spec("auto")
    result = plan_code(capsys, "--json")
    assert result.code == 2, result.err
    doc = json.loads(result.out)
    kinds = {(a["kind"], a["subject"], a["free_bytes"]) for a in doc["actions"]}
    assert kinds == {
        ("dedup.link", str(copies.hf), len(GGUF)),
        ("dedup.link", str(copies.app), len(GGUF)),
    }
    assert doc["summary"]["free_bytes"] == 2 * len(GGUF)


@pytest.mark.parametrize("mode", ["off", "false"])
def test_dedup_off_plans_nothing(capsys: pytest.CaptureFixture[str], mode: str) -> None:
    make_copies()
    assert dedups(make_plan_for(mode)) == []
    result = plan_code(capsys)
    assert result.code == 0, (result.out, result.err)


@pytest.mark.parametrize("mode", ["auto", "hardlink", "clone", "symlink"])
def test_already_hardlinked_copies_plan_nothing(mode: str) -> None:
    copies = make_copies()
    for path in (copies.hf, copies.app):
        path.unlink()
        os.link(copies.ollama, path)
    assert dedups(make_plan_for(mode)) == []


@pytest.mark.parametrize("mode", ["auto", "hardlink", "clone", "symlink"])
def test_a_symlinked_copy_is_never_replaced(mode: str) -> None:
    """HF's Xet layout: the repo blob is a link into the shared store, a separate file with
    the same bytes. The group is found, but the link never becomes an action; the plain app
    copy still does."""
    copies = make_copies(xet=True)
    assert copies.hf.is_symlink() and inode(copies.hf) != inode(copies.ollama)

    actions = dedups(make_plan_for(mode))

    assert [a.subject for a in actions] == [str(copies.app)]


def test_an_app_link_to_a_separate_copy_is_never_replaced(tmp_path: Path) -> None:
    copies = make_copies()
    elsewhere = tmp_path / "elsewhere.gguf"
    elsewhere.write_bytes(GGUF)
    copies.app.unlink()
    os.symlink(elsewhere, copies.app)
    subjects = [a.subject for a in dedups(make_plan_for("hardlink"))]
    assert subjects == [str(copies.hf)]


# Hand-built observations: device numbers that this machine cannot produce on demand.

OLLAMA_ROOT = Path("/stores/ollama")
HF_ROOT = Path("/stores/hub")
O_BLOB = OLLAMA_ROOT / "blobs" / f"sha256-{DIGEST}"
H_BLOB = HF_ROOT / "models--org--repo" / "blobs" / DIGEST
A_FILE = Path("/apps/myapp/a.gguf")
B_FILE = Path("/apps/myapp/b.gguf")


def spec_with(mode: str) -> Spec:
    text = f"version: 1\nsettings:\n  dedup: {mode}\n"
    return parse_spec(text, file="mlx.yaml", base_dir=Path("/"), env=read_environment()).spec


def observed_with(facts: dict[Path, tuple[int, int, bool]], how: str = "name") -> Observed:
    """One group of identical files; ``facts`` is path -> (st_dev, st_ino, is_symlink)."""
    paths = tuple(sorted(facts))
    group = DuplicateGroup(
        DIGEST,
        1000,
        paths,
        "hash" if how == "hash" else "name",
        tuple(
            (facts[p][0], facts[p][1], 1000, 1_700_000_000_000_000_000, facts[p][2]) for p in paths
        ),
    )
    return Observed(
        OllamaStore(OLLAMA_ROOT, True), HfCache(HF_ROOT, True), None, duplicates=(group,)
    )


def test_hardlink_across_filesystems_is_a_warning_not_an_action() -> None:
    observed = observed_with({O_BLOB: (1, 10, False), H_BLOB: (2, 20, False)})
    actions, warnings = plan_dedup(spec_with("hardlink"), observed)
    assert actions == []
    assert len(warnings) == 1 and str(H_BLOB) in warnings[0]
    assert "filesystem" in warnings[0]


def test_hardlink_mode_links_same_device_copies_and_warns_about_the_others() -> None:
    observed = observed_with(
        {O_BLOB: (1, 10, False), H_BLOB: (2, 20, False), A_FILE: (1, 30, False)}, "hash"
    )
    actions, warnings = plan_dedup(spec_with("hardlink"), observed)
    assert [(a.subject, a.params_as(DedupParams).mechanism) for a in actions] == [
        (str(A_FILE), "hardlink")
    ]
    assert len(warnings) == 1 and str(H_BLOB) in warnings[0]


def test_auto_across_filesystems_is_a_clone() -> None:
    observed = observed_with(
        {O_BLOB: (1, 10, False), H_BLOB: (2, 20, False), A_FILE: (1, 30, False)}, "hash"
    )
    actions, warnings = plan_dedup(spec_with("auto"), observed)
    got = {
        (a.subject, a.params_as(DedupParams).mechanism, a.params_as(DedupParams).canonical)
        for a in actions
    }
    assert got == {(str(H_BLOB), "clone", str(O_BLOB)), (str(A_FILE), "hardlink", str(O_BLOB))}
    assert warnings == []


@pytest.mark.parametrize("mode", ["symlink", "clone"])
def test_forced_symlink_and_clone_work_across_filesystems(mode: str) -> None:
    observed = observed_with({O_BLOB: (1, 10, False), H_BLOB: (2, 20, False)})
    actions, warnings = plan_dedup(spec_with(mode), observed)
    assert [(a.subject, a.params_as(DedupParams).mechanism) for a in actions] == [
        (str(H_BLOB), mode)
    ]
    assert warnings == []


@pytest.mark.parametrize("mode", ["auto", "hardlink", "clone", "symlink"])
def test_hand_built_symlinked_copy_is_never_an_action(mode: str) -> None:
    observed = observed_with({O_BLOB: (1, 10, False), H_BLOB: (1, 20, True)})
    assert plan_dedup(spec_with(mode), observed) == ([], [])


@pytest.mark.parametrize(
    ("facts", "keep"),
    [
        ({H_BLOB: (1, 20, False), A_FILE: (1, 30, False)}, H_BLOB),  # no Ollama copy: HF
        ({B_FILE: (1, 30, False), A_FILE: (1, 40, False)}, A_FILE),  # apps only: the first
    ],
    ids=["hf-before-app", "first-app-file"],
)
def test_which_copy_is_kept(facts: dict[Path, tuple[int, int, bool]], keep: Path) -> None:
    actions, _ = plan_dedup(spec_with("auto"), observed_with(facts, "hash"))
    assert len(actions) == 1
    assert actions[0].params_as(DedupParams).canonical == str(keep)
    assert actions[0].subject != str(keep)
    # The plan carries the facts apply re-checks.
    assert list(actions[0].params_as(DedupParams).keep)[:2] == list(facts[keep][:2])


# --- apply ---------------------------------------------------------------------------------------


def test_apply_hardlinks_every_copy(capsys: pytest.CaptureFixture[str]) -> None:
    copies = make_copies()
    before = through_every_path(*roots())
    write_spec("auto")

    apply(capsys, "-y")

    assert len({inode(p) for p in copies.all}) == 1
    assert os.stat(copies.ollama).st_nlink == 3
    assert all(not p.is_symlink() for p in copies.all)
    assert through_every_path(*roots()) == before
    assert copies.snapshot.read_bytes() == GGUF
    assert plan_code(capsys).code == 0
    assert dedup_rows() == {
        (str(copies.hf), str(copies.ollama), DIGEST, "hardlink"),
        (str(copies.app), str(copies.ollama), DIGEST, "hardlink"),
    }
    assert temp_files(*roots()) == []
    check_ollama_store()
    check_hf_cache()


def test_apply_symlink_mode_makes_absolute_links_to_the_kept_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    copies = make_copies()
    before = through_every_path(*roots())
    write_spec("symlink")

    apply(capsys, "-y")

    for path in (copies.hf, copies.app):
        assert path.is_symlink()
        target = os.readlink(path)
        assert os.path.isabs(target) and Path(target) == copies.ollama
    assert not copies.ollama.is_symlink() and os.stat(copies.ollama).st_nlink == 1
    assert through_every_path(*roots()) == before
    assert plan_code(capsys).code == 0
    assert {row[3] for row in dedup_rows()} == {"symlink"}
    check_ollama_store()


# --- re-checks right before replacing ------------------------------------------------------------


def _bump_mtime(path: Path) -> None:
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def _touch(path: Path) -> None:
    _bump_mtime(path)


def _rewrite_same_size(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    _bump_mtime(path)  # coarse kernel timestamps: make the change visible for sure


def _grow(path: Path) -> None:
    with path.open("ab") as fh:
        fh.write(b"more")


CHANGES = {"touched": _touch, "rewritten": _rewrite_same_size, "grown": _grow}


def _saved_plan(capsys: pytest.CaptureFixture[str], mode: str = "hardlink") -> Path:
    write_spec(mode)
    out = Path("plan.json").resolve()
    result = mlx(capsys, "plan", "--out", str(out))
    assert result.code == 0, result.err
    return out


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_copy_changed_since_the_plan_is_left_alone(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    copies = make_copies()
    seen: list[tuple[bytes, tuple[int, int]]] = []

    def meanwhile() -> None:
        CHANGES[change](copies.app)
        seen.append((copies.app.read_bytes(), inode(copies.app)))

    write_spec("hardlink")
    race_before_actions(monkeypatch, meanwhile)
    result = apply(capsys, "-y", code=1)

    assert "changed since the plan" in said(result)
    assert [(copies.app.read_bytes(), inode(copies.app))] == seen
    assert os.stat(copies.app).st_nlink == 1
    # The other copy was independent: it is linked.
    assert inode(copies.hf) == inode(copies.ollama)
    assert copies.ollama.read_bytes() == GGUF
    assert {row[0] for row in dedup_rows()} == {str(copies.hf)}
    assert temp_files(*roots()) == []


def test_the_kept_copy_changed_since_the_plan_stops_every_link(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    copies = make_copies()
    seen: list[Any] = []

    def meanwhile() -> None:
        _touch(copies.ollama)
        seen.extend([through_every_path(*roots()), [inode(p) for p in copies.all]])

    write_spec("hardlink")
    race_before_actions(monkeypatch, meanwhile)
    result = apply(capsys, "-y", code=1)

    assert said(result).count("changed since the plan") >= 2
    assert [inode(p) for p in copies.all] == seen[1]
    assert through_every_path(*roots()) == seen[0]
    assert dedup_rows() == set()


def test_same_stat_facts_but_different_bytes_is_caught_by_the_hash(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: bytes changed with size and mtime restored pass the re-stat; the
    re-hash still refuses. (A saved plan would not help: its fingerprint holds stat facts
    only, so it is the executor's re-hash that catches this.)"""
    copies = make_copies()
    planfile = _saved_plan(capsys)
    st = os.stat(copies.app)
    data = bytearray(GGUF)
    data[100] ^= 0xFF

    def meanwhile() -> None:
        with copies.app.open("r+b") as fh:  # in place: same inode and size
            fh.write(bytes(data))
        os.utime(copies.app, ns=(st.st_atime_ns, st.st_mtime_ns))

    race_before_actions(monkeypatch, meanwhile)
    apply(capsys, str(planfile), code=1)

    assert copies.app.read_bytes() == bytes(data)
    assert inode(copies.app) == (st.st_dev, st.st_ino)
    assert {row[0] for row in dedup_rows()} == {str(copies.hf)}


@pytest.mark.parametrize("which", ["duplicate", "kept"])
def test_a_copy_deleted_since_the_plan_is_a_clear_failure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, which: str
) -> None:
    copies = make_copies()
    write_spec("hardlink")
    race_before_actions(monkeypatch, (copies.app if which == "duplicate" else copies.ollama).unlink)
    result = mlx(capsys, "apply", "-y")
    assert result.code == 1, (result.out, result.err)
    assert "gone since the plan" in said(result)
    assert "internal error" not in said(result)


def test_a_corrupt_kept_blob_is_reported_and_nothing_is_linked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The Ollama blob (the copy dedup keeps) no longer hashes to its name; the HF blob and
    the app copy are intact."""
    copies = make_copies()
    ob.corrupt_blob(ollama_dir(), DIGEST)
    before = through_every_path(*roots())
    inodes = [inode(p) for p in copies.all]
    write_spec("hardlink")

    result = apply(capsys, "-y", code=1)

    assert "corrupt" in said(result)
    assert [inode(p) for p in copies.all] == inodes
    assert through_every_path(*roots()) == before
    assert dedup_rows() == set()


def _corrupt_hf_blob_apply(capsys: pytest.CaptureFixture[str]) -> tuple[Copies, Result]:
    copies = make_copies()
    os.chmod(copies.hf, 0o644)
    with copies.hf.open("r+b") as fh:
        fh.write(b"\xff")  # same size; no longer hashes to its name
    write_spec("hardlink")
    return copies, apply(capsys, "-y", code=1)


def test_a_corrupt_duplicate_blob_is_never_linked(capsys: pytest.CaptureFixture[str]) -> None:
    copies, _ = _corrupt_hf_blob_apply(capsys)
    corrupt = copies.hf.read_bytes()
    assert corrupt != GGUF and sha256_hex(corrupt) != DIGEST
    assert os.stat(copies.hf).st_nlink == 1
    assert inode(copies.app) == inode(copies.ollama)  # the intact copy was deduplicated
    assert {row[0] for row in dedup_rows()} == {str(copies.app)}


def test_a_corrupt_duplicate_blob_is_reported_as_corrupt(
    capsys: pytest.CaptureFixture[str],
) -> None:
    copies, result = _corrupt_hf_blob_apply(capsys)
    hf = str(copies.hf.relative_to(Path.cwd()))
    lines = [ln for ln in said(result).splitlines() if hf in ln]
    assert any("corrupt" in ln for ln in lines), result.out


# --- clone ---------------------------------------------------------------------------------------


def can_clone(folder: Path) -> bool:
    """Whether this filesystem makes copy-on-write clones (probed independently of mlx)."""
    src, dst = folder / ".clone-probe-src", folder / ".clone-probe-dst"
    src.write_bytes(b"x" * 8192)
    try:
        if sys.platform == "darwin":
            return subprocess.run(["cp", "-c", src, dst], capture_output=True).returncode == 0
        with src.open("rb") as fin, dst.open("wb") as fout:
            try:
                fcntl.ioctl(fout.fileno(), 0x40049409, fin.fileno())  # FICLONE
            except OSError as exc:
                if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL):
                    return False
                raise
        return True
    finally:
        for path in (src, dst):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def test_clone_makes_a_clone_or_leaves_the_files_as_they_are(
    capsys: pytest.CaptureFixture[str],
) -> None:
    copies = make_copies()
    before = through_every_path(*roots())
    inodes = [inode(p) for p in copies.all]
    write_spec("clone")

    apply(capsys, "-y")

    assert through_every_path(*roots()) == before
    details = journal_details()
    assert len(details) == 2
    if can_clone(ollama_dir()):
        # Each duplicate was replaced by a clone: a new file (inode) of its own.
        assert inode(copies.ollama) == inodes[0]
        assert inode(copies.hf) not in inodes and inode(copies.app) not in inodes
        assert len({inode(p) for p in copies.all}) == 3
        assert {row[3] for row in dedup_rows()} == {"clone"}
        assert all(d.startswith("now a clone") for d in details.values()), details
    else:
        assert [inode(p) for p in copies.all] == inodes
        assert all(d.startswith("left as is") for d in details.values()), details
        # nothing was replaced; recorded as "unsupported" so later plans stop proposing it
        assert {row[3] for row in dedup_rows()} == {"unsupported"}
    assert temp_files(*roots()) == []


def _fake_clone(src: Path, dst: Path) -> None:
    """A clone as the filesystem would make it: its own inode, the same bytes."""
    shutil.copyfile(src, dst)


@pytest.mark.parametrize("fs", ["this-fs", "cloning-fs"])
def test_clone_mode_converges(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fs: str
) -> None:
    make_copies()
    write_spec("clone")
    apply(capsys, "-y", seams=Seams(clone=_fake_clone) if fs == "cloning-fs" else None)
    assert plan_code(capsys).code == 0


def test_apply_says_why_a_clone_was_left_as_is(capsys: pytest.CaptureFixture[str]) -> None:
    if can_clone(Path.cwd()):
        pytest.skip("this filesystem clones")
    make_copies()
    write_spec("clone")
    result = apply(capsys, "-y")
    assert "left as is" in said(result)
    assert "0 changed" in result.out


# --- crash safety: kill -9 during a dedup apply --------------------------------------------------


def _env(failpoint: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("MLX_FAILPOINT", None)
    if failpoint is not None:
        env["MLX_FAILPOINT"] = failpoint
    return env


# SIGKILL itself right before the rename of the temp link over the duplicate: the one moment
# no fail point covers (after os.link/symlink/clone made the temp, before os.replace).
KILL_BEFORE_RENAME = """
import os, signal, sys
real_replace = os.replace
def replace(src, dst, *args, **kwargs):
    if ".mlx-dedup-" in os.fspath(src):
        os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace
from mlxstate.cli.main import entry_point
entry_point()
"""


def run_apply_killed_before_rename(spec: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", KILL_BEFORE_RENAME, "apply", "-y", "-f", str(spec)],
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def converge(
    capsys: pytest.CaptureFixture[str], spec: Path, copies: Copies, before: dict[str, str]
) -> None:
    """The next apply succeeds; every copy shares the kept file; no byte changed."""
    second = run_apply(spec)
    assert second.returncode == 0, (second.stdout, second.stderr)
    assert "Traceback" not in second.stdout + second.stderr
    assert plan_code(capsys).code == 0
    temps = {str(p) for p in temp_files(*roots())}  # judged in their own test
    after = {k: v for k, v in through_every_path(*roots()).items() if k not in temps}
    assert after == before
    for path in (copies.hf, copies.app):
        assert path.resolve() == copies.ollama or inode(path) == inode(copies.ollama)
    assert copies.ollama.read_bytes() == GGUF
    check_stores()


def check_stores() -> None:
    """The crash-safety checks of both stores. In symlink mode an HF blob may be a link to the
    kept Ollama blob (by design), which the HF check's 'resolves into its own blobs/' rule
    does not foresee: there, every snapshot link must still read a blob named by its hash."""
    check_ollama_store()
    hf_links = [p for p in hf_dir().rglob("*") if "snapshots" in p.parts and p.is_symlink()]
    if any(p.resolve().is_relative_to(ollama_dir()) for p in hf_links):
        for link in hf_links:
            blob = link.parent.joinpath(os.readlink(link))
            data, name = link.read_bytes(), Path(os.path.normpath(blob)).name
            assert name in (sha256_hex(data), git_blob_sha1(data)), link
    else:
        check_hf_cache()


KILL_CASES = [
    ("hardlink", "journal.started:1"),
    ("hardlink", "effect.done:1"),
    ("hardlink", "registry.recorded:1"),
    ("hardlink", "journal.started:2"),
    ("hardlink", "effect.done:2"),
    ("symlink", "effect.done:1"),
    ("symlink", "registry.recorded:2"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("mode", "failpoint"), KILL_CASES, ids=[f"{m}-{f}" for m, f in KILL_CASES])
def test_kill_during_dedup_then_apply_converges(
    capsys: pytest.CaptureFixture[str], mode: str, failpoint: str
) -> None:
    copies = make_copies()
    before = through_every_path(*roots())
    spec = write_spec(mode)

    first = run_apply(spec, failpoint)

    assert first.returncode == KILLED, (first.returncode, first.stdout, first.stderr)
    # Right after the kill: every path still reads the same bytes, nothing half-made shows.
    assert through_every_path(*roots()) == before
    assert temp_files(*roots()) == []
    check_stores()

    converge(capsys, spec, copies, before)
    assert through_every_path(*roots()) == before
    assert temp_files(*roots()) == []


@pytest.mark.slow
def test_kill_after_the_effect_still_records_the_dedup(
    capsys: pytest.CaptureFixture[str],
) -> None:
    copies = make_copies()
    spec = write_spec("hardlink")
    assert run_apply(spec, "effect.done:1").returncode == KILLED
    assert run_apply(spec).returncode == 0
    assert {row[0] for row in dedup_rows()} == {str(copies.hf), str(copies.app)}


@pytest.mark.slow
def test_kill_between_link_and_rename_loses_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    copies = make_copies()
    before = through_every_path(*roots())
    spec = write_spec("hardlink")

    first = run_apply_killed_before_rename(spec)

    assert first.returncode == KILLED, (first.returncode, first.stdout, first.stderr)
    for path in copies.all:
        assert path.read_bytes() == GGUF
    converge(capsys, spec, copies, before)
    for path in copies.all:
        assert path.read_bytes() == GGUF


@pytest.mark.slow
def test_kill_between_link_and_rename_leaves_no_temp_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    make_copies()
    spec = write_spec("hardlink")
    assert run_apply_killed_before_rename(spec).returncode == KILLED
    assert run_apply(spec).returncode == 0
    assert temp_files(*roots()) == []


# --- property: dedup never changes any file's bytes as seen through any path ---------------------

POOL = (
    ob.fake_gguf("p0", 3000),
    ob.fake_gguf("p1", 3000),  # same size as p0, other bytes
    ob.fake_gguf("p2", 1200),
    b"tiny\n" * 3,
)
INDEX = st.integers(0, len(POOL) - 1)


@dataclass(frozen=True)
class World:
    mode: str
    ollama: tuple[int, ...]  # one model per entry, its weights = POOL[i]
    hf: tuple[tuple[int, bool], ...]  # (content, is LFS) per file, spread over two repos
    app: tuple[int, ...]  # plain copies in the app folder
    app_links: tuple[int, ...]  # app symlinks to the HF snapshot files


@st.composite
def worlds(draw: Any) -> World:
    hf = tuple(draw(st.lists(st.tuples(INDEX, st.booleans()), max_size=4)))
    return World(
        draw(st.sampled_from(["auto", "hardlink", "symlink", "clone"])),
        tuple(draw(st.lists(INDEX, max_size=3))),
        hf,
        tuple(draw(st.lists(INDEX, max_size=3))),
        tuple(draw(st.lists(st.integers(0, max(len(hf) - 1, 0)), max_size=2))) if hf else (),
    )


def build(world: World, base: Path) -> tuple[Path, tuple[Path, ...]]:
    models, hub, app, state = base / "ollama", base / "hub", base / "app", base / "state"
    for i, content in enumerate(world.ollama):
        ob.add_model(models, f"m{i}:latest", [("model", POOL[content]), ("params", b"{}")])
    snapshots: list[Path] = []
    for r in range(2):
        files = {f"f{i}.bin": POOL[c] for i, (c, _) in enumerate(world.hf) if i % 2 == r}
        if files:
            lfs = {f"f{i}.bin" for i, (_, x) in enumerate(world.hf) if x and i % 2 == r}
            rev = hb.add_revision(hub, f"org/repo{r}", files, lfs=lfs)
            snapshots += [rev.files[name].snapshot_path for name in sorted(files)]
    app.mkdir()
    for i, content in enumerate(world.app):
        (app / f"c{i}.gguf").write_bytes(POOL[content])
    by_name = {p.name: p for p in snapshots}
    for j, i in enumerate(world.app_links):
        os.symlink(by_name[f"f{i}.bin"], app / f"link{j}.gguf")
    spec = base / "mlx.yaml"
    spec.write_text(
        f"version: 1\nsettings:\n  dedup: {world.mode}\n  state_dir: {state}\n"
        f"  ollama:\n    models_dir: {models}\n  huggingface:\n    cache_dir: {hub}\n"
        f"apps:\n  myapp:\n    path: {app}\n    models: []\n"
    )
    return spec, (models, hub, app)


@pytest.mark.slow
@settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=worlds())
def test_dedup_never_changes_what_any_path_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], world: World
) -> None:
    base = Path(tempfile.mkdtemp(dir=tmp_path))
    spec, tops = build(world, base)
    before = through_every_path(*tops)

    result = mlx(capsys, "apply", "-y", "-f", str(spec))

    assert result.code == 0, (world, result.out, result.err)
    assert through_every_path(*tops) == before, world
    assert temp_files(*tops) == []
    if world.mode != "clone":  # clone: see test_clone_mode_converges
        again = mlx(capsys, "plan", "--detailed-exitcode", "-f", str(spec))
        assert again.code == 0, (world, again.out)
    shutil.rmtree(base)
