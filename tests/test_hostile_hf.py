"""The Hugging Face cache under hostile state, and the hub misbehaving.

- deletes (``hf.delete``, ``cleanup.revision``) stay inside the repo's own folder: snapshot
  links are unlinked, never followed; a blob goes only when it is this repo's and no other
  revision links to it; a case variant of the repo folder is another repo;
- unreadable refs (not UTF-8, dangling or looping links, a FIFO) keep every revision;
- a permission error fails that action with one line, the others go on;
- every hub failure is one line saying what to do (never exit 3), and a download is checked
  on disk before it counts;
- progress shows a byte total, never a running sum, and finished bars no "?" speed.
"""

from __future__ import annotations

import errno
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from mlxstate.apply.cleanup_effects import delete_revision, hf_blob_in_use
from mlxstate.apply.hf_effects import HfEffects
from mlxstate.apply.progress import HfProgress, speed_column
from mlxstate.errors import ActionError
from mlxstate.observe.hf_cache import scan_hf_cache
from tests.builders import hf_cache as hb
from tests.fakes.hf_hub import FakeHfHub
from tests.helpers import Result, dead_url, hf_dir, mlx, run_apply

TINY = "org/tiny"
WEIGHTS = b"\x00safetensors" + bytes(range(256)) * 20
CONFIG = b'{"model_type": "llama"}\n'
FILES = {"config.json": CONFIG, "model.safetensors": WEIGHTS}
FILES_V2 = {"config.json": CONFIG, "model.safetensors": WEIGHTS + b"v2"}


@pytest.fixture(autouse=True)
def no_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url())


def write_spec(models: str, settings: str = "") -> Path:
    path = Path("mlx.yaml")
    path.write_text(f"version: 1\n{settings}models:\n{models}")
    return path


CLEANUP = "settings:\n  cleanup:\n    detached_revisions: true\n    partials: true\n"
KEEP_TINY = f"  tiny:\n    source: hf://{TINY}\n"


def absent(*repos: str) -> str:
    return "".join(
        f"  m{i}:\n    source: hf://{repo}\n    ensure: absent\n" for i, repo in enumerate(repos)
    )


def apply_in_process(capsys: pytest.CaptureFixture[str], code: int) -> Result:
    result = mlx(capsys, "apply", "-y")
    assert "Traceback" not in result.out + result.err, result.err
    assert result.code == code, (result.out, result.err)
    return result


def failure_lines(out: str) -> list[str]:
    """The lines after apply's summary: one per failed action."""
    lines = out.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Apply "))
    return [ln.strip() for ln in lines[start + 1 :] if ln.strip()]


def resolves(path: Path) -> bool:
    return path.is_symlink() and path.resolve().is_file()


# --- 1. deletes stay inside the repo's folder --------------------------------------------------


def plant_hostile_links(snapshot: Path, outside: Path, foreign_blob: Path) -> None:
    """Snapshot links that point out of the repo, each in another way."""
    os.symlink(outside, snapshot / "absolute.bin")
    os.symlink(os.path.relpath(outside, snapshot), snapshot / "relative.bin")
    os.symlink(os.path.relpath(foreign_blob, snapshot), snapshot / "foreign.safetensors")
    # Starts like a blob link, then climbs out through blobs/.. into the other repo.
    sneaky = f"../../blobs/../../{foreign_blob.parent.parent.name}/blobs/{foreign_blob.name}"
    os.symlink(sneaky, snapshot / "sneaky.safetensors")


def test_detached_revision_cleanup_deletes_only_this_repos_unshared_blobs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    outside = tmp_path / "precious.bin"
    outside.write_bytes(b"the user's own file")
    other = hb.add_revision(hf_dir(), "user/other", {"w.safetensors": b"other" * 100})
    foreign = other.files["w.safetensors"].blob_path
    main = hb.add_revision(hf_dir(), TINY, FILES_V2)
    old = hb.add_revision(hf_dir(), TINY, FILES, refs=())  # shares config.json with main
    plant_hostile_links(old.snapshot_dir, outside, foreign)
    write_spec(KEEP_TINY, CLEANUP)

    apply_in_process(capsys, 0)

    assert not old.snapshot_dir.exists()
    assert not old.files["model.safetensors"].blob_path.exists()  # only this revision used it
    assert outside.read_bytes() == b"the user's own file"
    assert foreign.read_bytes() == b"other" * 100
    assert resolves(other.files["w.safetensors"].snapshot_path)
    assert all(resolves(f.snapshot_path) for f in main.files.values())


def test_a_blob_another_revision_links_to_is_kept(tmp_path: Path) -> None:
    main = hb.add_revision(hf_dir(), TINY, FILES_V2)
    old = hb.add_revision(hf_dir(), TINY, FILES, refs=())
    # A third, detached revision using the old weights too (through a subfolder).
    third = hb.add_revision(hf_dir(), TINY, {"sub/model.safetensors": WEIGHTS}, refs=())
    shared = old.files["model.safetensors"].blob_path
    assert third.files["sub/model.safetensors"].blob_path == shared

    freed = delete_revision(hf_dir(), "model", TINY, old.commit)

    assert not old.snapshot_dir.exists()
    assert shared.read_bytes() == WEIGHTS and resolves(
        third.files["sub/model.safetensors"].snapshot_path
    )
    assert all(resolves(f.snapshot_path) for f in main.files.values())
    assert freed == 0  # every blob it used is still used


def test_deleting_a_repo_never_follows_its_links(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    outside = tmp_path / "precious.bin"
    outside.write_bytes(b"the user's own file")
    other = hb.add_revision(hf_dir(), "user/other", {"w.safetensors": b"other" * 100})
    foreign = other.files["w.safetensors"].blob_path
    gone = hb.add_revision(hf_dir(), TINY, FILES)
    plant_hostile_links(gone.snapshot_dir, outside, foreign)
    os.symlink(tmp_path, gone.repo_dir / "refs" / "linked-folder")  # a link to a folder
    write_spec(absent(TINY))

    apply_in_process(capsys, 0)

    assert not gone.repo_dir.exists()
    assert outside.read_bytes() == b"the user's own file"
    assert foreign.read_bytes() == b"other" * 100 and resolves(
        other.files["w.safetensors"].snapshot_path
    )


def test_a_repo_folder_that_is_a_link_out_of_the_cache_is_left_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    elsewhere = hb.add_revision(tmp_path / "elsewhere", TINY, FILES)
    hf_dir().mkdir(parents=True, exist_ok=True)
    link = hf_dir() / hb.repo_folder_name(TINY)
    os.symlink(elsewhere.repo_dir, link)
    write_spec(absent(TINY))

    result = apply_in_process(capsys, 1)

    assert failure_lines(result.out) == [
        f"model/m0: {link} is a symlink: mlx does not delete through it; hf://{TINY} left alone"
    ]
    assert link.is_symlink()
    assert all(resolves(f.snapshot_path) for f in elsewhere.files.values())


# --- 7. the exact on-disk name of the repo ------------------------------------------------------


def test_delete_uses_the_exact_folder_name_never_a_case_variant() -> None:
    lower = hb.add_revision(hf_dir(), "org/tiny", FILES)
    effects = HfEffects(hf_dir(), None, dead_url())

    assert effects.delete("Org/Tiny") == 0
    assert effects.delete("ORG/TINY") == 0
    assert all(resolves(f.snapshot_path) for f in lower.files.values())


def test_two_case_variants_are_two_repos(capsys: pytest.CaptureFixture[str]) -> None:
    lower = hb.add_revision(hf_dir(), "org/tiny", FILES)
    upper = hb.add_revision(hf_dir(), "Org/Tiny", FILES_V2)
    if lower.repo_dir.samefile(upper.repo_dir):
        pytest.skip("case-insensitive filesystem")

    assert HfEffects(hf_dir(), None, dead_url()).delete("Org/Tiny") > 0

    assert not upper.repo_dir.exists()
    assert all(resolves(f.snapshot_path) for f in lower.files.values())


def test_a_revision_of_a_case_variant_is_not_touched() -> None:
    lower = hb.add_revision(hf_dir(), "org/tiny", FILES, refs=())
    assert delete_revision(hf_dir(), "model", "Org/Tiny", lower.commit) == 0
    assert lower.snapshot_dir.is_dir()


# --- 2. refs that cannot be read ---------------------------------------------------------------


def break_ref(refs: Path, how: str) -> None:
    if how == "not-utf8":
        (refs / "v1").write_bytes(b"\xff\xfe\x00garbage")
    elif how == "dangling-link":
        os.symlink(refs / "nowhere", refs / "v1")
    elif how == "looping-link":
        os.symlink("v1", refs / "v1")
    elif how == "folder-loop":
        os.symlink(".", refs / "v1")
    elif how == "fifo":
        os.mkfifo(refs / "v1")


BROKEN_REFS = ["not-utf8", "dangling-link", "looping-link", "folder-loop", "fifo"]


@pytest.mark.parametrize("how", BROKEN_REFS)
def test_an_unreadable_ref_keeps_every_revision(
    capsys: pytest.CaptureFixture[str], how: str
) -> None:
    main = hb.add_revision(hf_dir(), TINY, FILES_V2)
    old = hb.add_revision(hf_dir(), TINY, FILES, refs=())
    break_ref(main.repo_dir / "refs", how)
    write_spec(KEEP_TINY, CLEANUP)

    repo = scan_hf_cache(hf_dir()).find(TINY)
    assert repo is not None and not repo.refs_known and repo.detached == ()
    status = mlx(capsys, "status", "--json")
    assert status.code == 0, status.err
    warnings = json.loads(status.out)["warnings"]
    assert any("refs/v1" in w and "all are kept" in w for w in warnings), warnings
    plan = mlx(capsys, "plan", "--json")
    assert plan.code == 0, plan.err
    assert [a["kind"] for a in json.loads(plan.out)["actions"]] == []

    apply_in_process(capsys, 0)
    assert old.snapshot_dir.is_dir() and all(resolves(f.snapshot_path) for f in old.files.values())


@pytest.mark.parametrize("how", BROKEN_REFS)
def test_a_ref_broken_after_the_plan_keeps_the_revision(how: str) -> None:
    main = hb.add_revision(hf_dir(), TINY, FILES_V2)
    old = hb.add_revision(hf_dir(), TINY, FILES, refs=())
    break_ref(main.repo_dir / "refs", how)

    with pytest.raises(ActionError) as caught:
        delete_revision(hf_dir(), "model", TINY, old.commit)

    assert caught.value.message == (
        f"cannot read the ref {main.repo_dir / 'refs' / 'v1'}: the revisions of hf://{TINY} "
        "are kept (fix or delete that ref file)"
    )
    assert all(resolves(f.snapshot_path) for f in old.files.values())


def test_a_repo_with_an_unreadable_ref_can_still_be_deleted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gone = hb.add_revision(hf_dir(), TINY, FILES)
    break_ref(gone.repo_dir / "refs", "not-utf8")
    write_spec(absent(TINY))
    apply_in_process(capsys, 0)
    assert not gone.repo_dir.exists()


# --- 3. permission errors ----------------------------------------------------------------------


def refuse(monkeypatch: pytest.MonkeyPatch, name: str, *names: str) -> None:
    """``os.<name>`` raises EACCES for paths whose last part is one of ``names`` (the
    tests run as root, where chmod does not stop anything)."""
    real = getattr(os, name)

    def guarded(path: Any, *args: Any, **kwargs: Any) -> Any:
        if os.path.basename(os.fsdecode(path)) in names:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(os, name, guarded)


def test_a_read_only_repo_fails_its_delete_in_one_line_and_others_go_on(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = hb.add_revision(hf_dir(), TINY, FILES)
    gone = hb.add_revision(hf_dir(), "org/other", FILES_V2)
    real_rmdir = os.rmdir
    refuse(monkeypatch, "rmdir", stuck.commit)
    write_spec(absent(TINY, "org/other"))

    result = apply_in_process(capsys, 1)

    assert "1 done, 1 failed" in result.out
    assert failure_lines(result.out) == [
        f"model/m0: cannot delete hf://{TINY}: Permission denied: {stuck.commit} "
        "(make it writable, then apply again)"
    ]
    assert not gone.repo_dir.exists()
    # Back under its own name, refs gone first and every blob still there: nothing dangles,
    # and the next apply (once the folder is writable) deletes it.
    assert stuck.repo_dir.is_dir() and not (stuck.repo_dir / "refs").exists()
    assert all(f.blob_path.is_file() for f in stuck.files.values())
    assert not [p for p in hf_dir().iterdir() if p.name.startswith(".mlx-")]
    monkeypatch.setattr(os, "rmdir", real_rmdir)
    apply_in_process(capsys, 0)
    assert not stuck.repo_dir.exists()


def test_the_leftover_of_a_killed_delete_is_hidden_and_removed_by_the_next_delete(
    capsys: pytest.CaptureFixture[str],
) -> None:
    leftover = hb.add_revision(hf_dir(), "org/killed", FILES).repo_dir
    trash = leftover.rename(hf_dir() / f".mlx-deleting-{leftover.name}-0badc0de")
    gone = hb.add_revision(hf_dir(), TINY, FILES)
    status = mlx(capsys, "status", "--json")
    assert [w for w in json.loads(status.out)["warnings"] if str(trash) in w] == [
        f"{trash} was left by an interrupted delete: mlx removes it at its next HF delete"
    ]
    write_spec(absent(TINY))
    apply_in_process(capsys, 0)
    assert not trash.exists() and not gone.repo_dir.exists()


def test_a_read_only_snapshot_fails_its_cleanup_and_keeps_its_blobs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hb.add_revision(hf_dir(), TINY, FILES_V2)
    old = hb.add_revision(hf_dir(), TINY, FILES, refs=())
    partial = hb.add_incomplete(hf_dir(), TINY, b"half", age=7200)
    refuse(monkeypatch, "rmdir", old.commit)
    write_spec(KEEP_TINY, CLEANUP)

    result = apply_in_process(capsys, 1)

    assert "1 done, 1 failed" in result.out
    [line] = failure_lines(result.out)
    assert line.startswith(f"cleanup/{TINY}/{old.commit[:12]}: cannot delete hf://{TINY}: ")
    assert old.files["model.safetensors"].blob_path.read_bytes() == WEIGHTS
    assert not partial.exists()


def test_a_read_only_partial_fails_its_cleanup_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hb.add_revision(hf_dir(), TINY, FILES)
    partial = hb.add_incomplete(hf_dir(), TINY, b"half", age=7200)
    refuse(monkeypatch, "unlink", partial.name)
    write_spec(KEEP_TINY, CLEANUP)

    result = apply_in_process(capsys, 1)

    assert failure_lines(result.out) == [
        f"cleanup/{TINY}/{partial.name}: cannot delete {partial}: Permission denied "
        "(make its folder writable, then apply again)"
    ]
    assert partial.read_bytes() == b"half"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_really_read_only_folder_fails_the_delete_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stuck = hb.add_revision(hf_dir(), TINY, FILES)
    snapshots = stuck.repo_dir / "snapshots"
    snapshots.chmod(0o555)
    try:
        write_spec(absent(TINY))
        result = apply_in_process(capsys, 1)
    finally:
        snapshots.chmod(0o755)
    [line] = failure_lines(result.out)
    assert line.startswith(f"model/m0: cannot delete hf://{TINY}: Permission denied")
    assert all(f.blob_path.is_file() for f in stuck.files.values())


def test_orphan_checks_refuse_paths_outside_a_repos_blobs(tmp_path: Path) -> None:
    rev = hb.add_revision(hf_dir(), TINY, FILES)
    outside = tmp_path / "blobs" / "x"
    outside.parent.mkdir()
    outside.write_bytes(b"x")
    with pytest.raises(ActionError, match="is not a file in a repo of the HF cache"):
        hf_blob_in_use(hf_dir(), outside)
    assert hf_blob_in_use(hf_dir(), rev.files["config.json"].blob_path)
    orphan = hb.add_orphan_blob(hf_dir(), TINY, b"orphan")
    assert not hf_blob_in_use(hf_dir(), orphan)


# --- 4. hub errors, one line each, through `mlx apply` -------------------------------------------


def apply_subprocess(models: str) -> subprocess.CompletedProcess[str]:
    result = run_apply(write_spec(models))
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    assert result.returncode == 1, (result.stdout, result.stderr)
    return result


def the_failure(result: subprocess.CompletedProcess[str]) -> str:
    assert "Apply finished with errors: 0 done, 1 failed, 0 skipped" in result.stdout
    [line] = failure_lines(result.stdout)
    # Nothing of the library's own multi-line text anywhere.
    for noise in ("For more information", "Error while downloading", "\n\n"):
        assert noise not in result.stderr.replace("\n\n\n", ""), result.stderr
    return line


NOT_FOUND = (
    "model/m: hf://org/missing not found on the hub (check the id; private or gated repos "
    "need a token in $HF_TOKEN / settings.huggingface.token_env)"
)


@pytest.mark.parametrize("plain", [False, True], ids=["hub-404", "bare-404"])
def test_a_missing_repo_says_not_found(fake_hub: FakeHfHub, plain: bool) -> None:
    fake_hub.plain_404s = plain
    result = apply_subprocess("  m:\n    source: hf://org/missing\n")
    assert the_failure(result) == NOT_FOUND


def test_a_missing_revision_says_so(fake_hub: FakeHfHub) -> None:
    fake_hub.add_repo(TINY, FILES)
    result = apply_subprocess(f"  m:\n    source: hf://{TINY}\n    revision: v9\n")
    assert the_failure(result) == (
        f"model/m: hf://{TINY} has no revision 'v9' on the hub (check the model's revision)"
    )


def test_a_gated_repo_says_how_to_get_access(fake_hub: FakeHfHub) -> None:
    fake_hub.add_repo(TINY, FILES)
    fake_hub.gate(TINY)
    result = apply_subprocess(f"  m:\n    source: hf://{TINY}\n")
    assert the_failure(result) == (
        f"model/m: hf://{TINY} is gated: accept its terms on the hub, and put a token of that "
        "account in $HF_TOKEN / settings.huggingface.token_env"
    )


def test_a_rejected_token_says_check_the_token(
    fake_hub: FakeHfHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add_repo(TINY, FILES)
    fake_hub.require_token("the-right-one")
    monkeypatch.setenv("HF_TOKEN", "a-wrong-one")
    result = apply_subprocess(f"  m:\n    source: hf://{TINY}\n")
    assert the_failure(result) == (
        f"model/m: the hub at {fake_hub.url} rejected the token for hf://{TINY} (HTTP 401): "
        "check $HF_TOKEN / settings.huggingface.token_env"
    )


def test_an_unreachable_hub_names_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    url = dead_url()
    monkeypatch.setenv("HF_ENDPOINT", url)
    result = apply_subprocess(f"  m:\n    source: hf://{TINY}\n")
    assert the_failure(result) == (
        f"model/m: cannot reach the hub at {url} for hf://{TINY} (check the network or HF_ENDPOINT)"
    )


@pytest.mark.slow
def test_a_hub_that_truncates_every_body_fails_in_one_line(fake_hub: FakeHfHub) -> None:
    fake_hub.add_repo(TINY, FILES)
    fake_hub.truncate_bodies = True
    result = apply_subprocess(f"  m:\n    source: hf://{TINY}\n")
    assert the_failure(result) == (
        f"model/m: the hub at {fake_hub.url} cut off the download of hf://{TINY} (fewer bytes "
        "than announced); try again later, or check HF_ENDPOINT and any proxy"
    )
    snapshots = hb.repo_dir(hf_dir(), TINY) / "snapshots"
    assert not any(p.is_symlink() for p in snapshots.rglob("*"))


# --- 5. a download counts only once it is on disk -----------------------------------------------


def test_a_cached_snapshot_with_a_missing_blob_is_not_a_successful_download(
    fake_hub: FakeHfHub,
) -> None:
    """When the hub does not answer the file listing (a 403 here: an unreachable hub makes
    the library retry for ~25 s), the library returns the cached folder as it is."""
    rev = hb.add_revision(hf_dir(), TINY, FILES, tree=False)
    hb.remove_blob(rev, "model.safetensors")
    fake_hub.fail("/api/.*", 403)
    result = apply_subprocess(f"  m:\n    source: hf://{TINY}\n")
    assert the_failure(result) == (
        f"model/m: hf://{TINY}@{rev.commit[:12]} is incomplete after the download: missing "
        "model.safetensors; apply again (with the hub reachable)"
    )


def test_a_snapshot_the_library_reports_but_is_not_there_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    commit = "a" * 40
    monkeypatch.setattr(
        "huggingface_hub.snapshot_download",
        lambda *_a, **_k: str(hf_dir() / hb.repo_folder_name(TINY) / "snapshots" / commit),
    )
    with pytest.raises(ActionError) as caught:
        HfEffects(hf_dir(), None, dead_url()).download(TINY, "main", None, None, lambda *_: None)
    assert caught.value.message.startswith(
        f"hf://{TINY}: snapshot {commit[:12]} is not in the cache after the download"
    )


def test_a_download_missing_a_listed_file_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cached file list (trees/<commit>.json) names a file the snapshot lacks."""
    rev = hb.add_revision(hf_dir(), TINY, {"config.json": CONFIG}, remote_files=FILES)
    monkeypatch.setattr(
        "huggingface_hub.snapshot_download", lambda *_a, **_k: str(rev.snapshot_dir)
    )
    effects = HfEffects(hf_dir(), None, dead_url())
    with pytest.raises(ActionError, match=r"missing model\.safetensors"):
        effects.download(TINY, "main", None, None, lambda *_: None)
    assert effects.download(TINY, "main", ["*.json"], None, lambda *_: None) == rev.commit


# --- 6. progress ---------------------------------------------------------------------------------


def test_the_progress_total_is_the_bytes_to_fetch_from_the_start(fake_hub: FakeHfHub) -> None:
    # The small file first: the library's running total would read "2/2 bytes" for a while.
    fake_hub.add_repo(TINY, {"a.json": b"{}", "b.json": b"[1,2,3]", "w.bin": b"x" * 300_000})
    seen: list[tuple[int, int | None]] = []
    HfEffects(hf_dir(), None, fake_hub.url).download(
        TINY, "main", None, None, lambda d, t: seen.append((d, t))
    )
    assert seen[-1] == (300_009, 300_009)
    assert {t for _, t in seen} == {300_009}  # never a file count, never a partial sum
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_without_a_file_list_the_total_stays_unknown_until_the_end() -> None:
    seen: list[tuple[int, int | None]] = []
    bar = HfProgress(lambda d, t: seen.append((d, t)), lambda: None)
    files = bar.tqdm_class(total=2, desc="Fetching 2 files")  # the library's file-count bar
    files.update(1)
    data = bar.tqdm_class(name="huggingface_hub.snapshot_download", unit="B", total=0)
    data.total = 2  # the library adds each file's size as its download starts
    data.update(2)
    files.update(1)
    bar.finish()
    assert seen == [(2, None), (2, 2)]


def render_speed(completed: int, total: int, updates: int) -> str:
    from rich.console import Console
    from rich.progress import Progress

    progress = Progress(console=Console(file=io.StringIO()), auto_refresh=False)
    task = progress.add_task("x", total=total)
    for i in range(1, updates + 1):
        progress.update(task, completed=completed * i // updates)
    plain: str = speed_column().render(progress.tasks[0]).plain  # the column is typed Any
    return plain


def test_a_finished_bar_shows_a_speed_or_nothing_never_a_question_mark() -> None:
    one_update = render_speed(1000, 1000, 1)
    assert one_update == "" or one_update.endswith("/s"), one_update
    assert render_speed(0, 0, 1) == ""
    assert "?" not in render_speed(1000, 1000, 3)


def test_a_shared_xet_payload_goes_with_its_last_repo_only() -> None:
    first = hb.add_revision(hf_dir(), TINY, FILES, xet=["model.safetensors"])
    second = hb.add_revision(hf_dir(), "org/copy", FILES, xet=["model.safetensors"])
    store = first.files["model.safetensors"].store_path
    assert store is not None and store == second.files["model.safetensors"].store_path
    effects = HfEffects(hf_dir(), None, dead_url())

    effects.delete(TINY)
    assert store.read_bytes() == WEIGHTS and resolves(
        second.files["model.safetensors"].snapshot_path
    )

    assert effects.delete("org/copy") == len(CONFIG) + len(WEIGHTS)
    assert not store.exists()


# --- 3. partial downloads of a repo folder that is otherwise unreadable ------------------------


def _broken_repo_with_partial() -> tuple[hb.CachedRevision, Path]:
    """Refs and a stale ``.incomplete`` but no ``snapshots/``: no repo, still a partial."""
    hb.add_revision(hf_dir(), TINY, FILES)
    rev = hb.add_revision(hf_dir(), "org/broken", {"config.json": CONFIG})
    partial = hb.add_incomplete(hf_dir(), "org/broken", b"half a download", age=7200)
    for f in rev.files.values():
        f.snapshot_path.unlink()
    rev.snapshot_dir.rmdir()
    (rev.repo_dir / "snapshots").rmdir()
    return rev, partial


def test_partials_of_a_repo_without_snapshots_are_listed_and_cleaned(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rev, partial = _broken_repo_with_partial()
    write_spec(KEEP_TINY, CLEANUP)

    status = json.loads(mlx(capsys, "status", "--json").out)
    hf = status["stores"]["huggingface"]
    assert [f["path"] for f in hf["incomplete"]] == [str(partial)]
    assert status["reclaimable"]["partials"] == len(b"half a download")
    plan = json.loads(mlx(capsys, "plan", "--json").out)
    assert [(a["kind"], a["subject"]) for a in plan["actions"]] == [
        ("cleanup.partial", str(partial))
    ]

    apply_in_process(capsys, 0)
    assert not partial.exists()
    assert rev.files["config.json"].blob_path.is_file()  # nothing else of the repo goes


def _odd_partials(blobs: Path, outside: Path) -> list[Path]:
    """A link named like a partial pointing out of the cache, and a folder so named."""
    link = blobs / f"{'a' * 64}.0badc0de.incomplete"
    os.symlink(outside, link)
    folder = blobs / f"{'b' * 64}.0badc0de.incomplete"
    folder.mkdir()
    (folder / "inside").write_bytes(b"keep")
    return [link, folder]


@pytest.mark.parametrize("repo_state", ["fine", "no-snapshots", "blobs-linked-out"])
def test_odd_partials_are_never_listed_nor_deleted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, repo_state: str
) -> None:
    rev, partial = _broken_repo_with_partial()
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = outside / f"{'c' * 64}.0badc0de.incomplete"
    precious.write_bytes(b"not the cache's")
    make_old_tree = [precious]
    blobs = rev.repo_dir / "blobs"
    if repo_state == "fine":
        blobs = hb.repo_dir(hf_dir(), TINY) / "blobs"
    elif repo_state == "blobs-linked-out":
        partial.unlink()
        for p in blobs.iterdir():
            p.unlink()
        blobs.rmdir()
        os.symlink(outside, blobs)  # the whole blobs/ folder points out of the cache
    if repo_state != "blobs-linked-out":
        make_old_tree += _odd_partials(blobs, precious)
    for p in make_old_tree:
        os.utime(p, (1, 1), follow_symlinks=False)
    write_spec(KEEP_TINY, CLEANUP)

    plan = json.loads(mlx(capsys, "plan", "--json").out)
    subjects = [a["subject"] for a in plan["actions"]]
    assert all(
        (str(outside) not in s and ".incomplete" not in s) or s == str(partial) for s in subjects
    )
    scanned = scan_hf_cache(hf_dir())
    listed = [f.path for r in scanned.repos for f in r.incomplete] + [
        f.path for f in scanned.incomplete
    ]
    assert listed == ([partial] if repo_state != "blobs-linked-out" else [])
    apply_in_process(capsys, 0)
    assert precious.read_bytes() == b"not the cache's"
    if repo_state != "blobs-linked-out":
        assert (blobs / f"{'b' * 64}.0badc0de.incomplete" / "inside").read_bytes() == b"keep"
        assert (blobs / f"{'a' * 64}.0badc0de.incomplete").is_symlink()


@pytest.mark.parametrize("what", ["link", "folder", "not-a-partial-name", "outside"])
def test_a_forged_partial_cleanup_is_refused(tmp_path: Path, what: str) -> None:
    """The effect re-checks what the plan saw: a saved plan edited by hand, or a file
    replaced after the plan, never makes it delete a link's target, a folder, a blob."""
    from mlxstate.apply.cleanup_effects import delete_hf_file
    from mlxstate.plan.actions import Action
    from mlxstate.plan.params import FileCleanupParams

    rev, partial = _broken_repo_with_partial()
    blobs = rev.repo_dir / "blobs"
    precious = tmp_path / "precious"
    precious.write_bytes(b"keep")
    os.utime(precious, (1, 1))
    if what == "link":
        partial.unlink()
        os.symlink(precious, partial)
    elif what == "folder":
        partial.unlink()
        partial.mkdir()
    elif what == "not-a-partial-name":
        partial = rev.files["config.json"].blob_path
    else:
        partial = precious
    st = os.lstat(partial)
    action = Action(
        f"cleanup/org/broken/{partial.name}",
        "delete",
        "cleanup.partial",
        str(partial),
        0,
        st.st_size,
        "test",
        None,
        FileCleanupParams(mtime=st.st_mtime, size=st.st_size),
        "cleanup-partial",
    )
    with pytest.raises(ActionError):
        delete_hf_file(action, hf_dir(), now=st.st_mtime + 7200)
    assert os.path.lexists(partial) and precious.read_bytes() == b"keep"
    assert blobs.is_dir()


# --- 4. a refs folder that cannot be read at all ----------------------------------------------


@pytest.mark.parametrize("how", ["dangling", "looping"])
def test_a_refs_folder_that_is_a_broken_link_keeps_every_revision(
    capsys: pytest.CaptureFixture[str], how: str
) -> None:
    main = hb.add_revision(hf_dir(), TINY, FILES_V2)
    old = hb.add_revision(hf_dir(), TINY, FILES, refs=())
    refs = main.repo_dir / "refs"
    for ref in refs.iterdir():
        ref.unlink()
    refs.rmdir()
    os.symlink(refs.parent / "nowhere" if how == "dangling" else "refs", refs)
    write_spec(KEEP_TINY, CLEANUP)

    repo = scan_hf_cache(hf_dir()).find(TINY)
    assert repo is not None and not repo.refs_known and repo.detached == ()
    status = json.loads(mlx(capsys, "status", "--json").out)
    (shown,) = status["stores"]["huggingface"]["repos"]
    assert [r["detached"] for r in shown["revisions"]] == [False, False]
    assert status["reclaimable"]["detached_revisions"] == 0
    assert any("cannot read refs in" in w for w in status["warnings"]), status["warnings"]
    plan = json.loads(mlx(capsys, "plan", "--json").out)
    # The model's ref is unknown, so it may be fetched again; nothing is deleted.
    assert [a["kind"] for a in plan["actions"] if a["op"] == "delete"] == []
    with pytest.raises(ActionError):  # and a saved plan that says otherwise is refused
        delete_revision(hf_dir(), "model", TINY, old.commit)
    assert all(resolves(f.snapshot_path) for f in old.files.values())
