"""App folders, links and dedup under hostile state (docs/: links and dedup).

- A file dedup replaced with a symlink stays readable when the kept copy goes: the model is
  removed (``ensure: absent`` or ``prune``) and the app file is a regular file again with the
  same bytes; a file the user changed meanwhile is left alone.
- Links: a symlink loop above the app folder, a read-only app folder and a symlinked
  subfolder pointing elsewhere never crash and never let mlx touch anything outside.
- Dedup: a duplicate whose folder was swapped for a link out of the store is refused.
- LM Studio: one entry per model; Ollama publishers derive from the source.

Real on-disk stores (tests/builders) and the real CLI; no daemon, no hub.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest

from mlxstate.apply.dedup_effects import restore_symlinked
from mlxstate.errors import ActionError
from mlxstate.registry import DedupRecord, read_facts
from tests.builders import ollama_store as ob
from tests.builders.common import sha256_hex
from tests.helpers import Result, dead_url, hf_dir, manage, mlx, ollama_dir, state_dir
from tests.helpers.apply import hub_offline
from tests.helpers.dedup import GGUF, QWEN, Copies, app_dir, dedups, make_copies, make_plan_for

QWEN_SRC = f"ollama://{QWEN}"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    hub_offline(monkeypatch)


def apply(capsys: pytest.CaptureFixture[str], code: int = 0) -> Result:
    result = mlx(capsys, "apply", "-y")
    assert "Traceback" not in result.out + result.err, result.err
    assert result.code == code, (result.out, result.err)
    return result


def write(text: str) -> Path:
    path = Path("mlx.yaml")
    path.write_text(text)
    return path


def dedup_spec(models: str, prune: bool = False) -> str:
    return (
        f"version: 1\nsettings:\n  dedup: symlink\n  prune: {str(prune).lower()}\n"
        f"models:\n{models}"
        f"apps:\n  myapp:\n    path: {app_dir()}\n    models: []\n"
    )


def symlinked_copies(capsys: pytest.CaptureFixture[str]) -> Copies:
    """The app copy and the HF blob deduplicated as symlinks to the Ollama blob."""
    copies = make_copies()
    write(dedup_spec(f"  qwen:\n    source: {QWEN_SRC}\n"))
    apply(capsys)
    assert copies.app.is_symlink() and copies.hf.is_symlink()
    return copies


def read_only(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``folder`` cannot be written: chmod, and (root ignores modes) every call that writes
    an entry below it fails with EACCES as it would for a user."""
    folder.chmod(0o555)
    if os.getuid() != 0:
        return

    def guard(real: Any, *which: int) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            for i in which:
                if i < len(args) and Path(os.path.abspath(args[i])).is_relative_to(folder):
                    raise PermissionError(13, "Permission denied", str(args[i]))
            return real(*args, **kwargs)

        return call

    for name, which in (
        ("symlink", (1,)),
        ("link", (1,)),
        ("replace", (0, 1)),
        ("unlink", (0,)),
        ("mkdir", (0,)),
        ("rmdir", (0,)),
    ):
        monkeypatch.setattr(os, name, guard(getattr(os, name), *which))
    monkeypatch.setattr(shutil, "copyfile", guard(shutil.copyfile, 1))


def regular_with_bytes(path: Path, data: bytes) -> bool:
    return (
        not path.is_symlink()
        and stat.S_ISREG(os.lstat(path).st_mode)
        and (path.read_bytes() == data)
    )


# --- 1. symlinked duplicates stay readable -------------------------------------------------


@pytest.mark.parametrize("how", ["absent", "prune"])
def test_removing_the_kept_model_restores_symlinked_duplicates(
    capsys: pytest.CaptureFixture[str], how: str
) -> None:
    copies = symlinked_copies(capsys)
    if how == "absent":
        write(dedup_spec(f"  qwen:\n    source: {QWEN_SRC}\n    ensure: absent\n"))
    else:
        manage(QWEN_SRC, "qwen")
        write(dedup_spec("  {}\n", prune=True).replace("models:\n  {}\n", "models: {}\n"))

    apply(capsys)

    assert not copies.ollama.exists()  # the model really went
    assert regular_with_bytes(copies.app, GGUF)
    assert regular_with_bytes(copies.hf, GGUF)
    assert copies.snapshot.read_bytes() == GGUF
    assert {str(d.path) for d in read_facts(state_dir()).dedups} == set()
    assert list(app_dir().glob(".*mlx-*")) == []


def test_a_symlink_the_user_changed_is_left_alone(capsys: pytest.CaptureFixture[str]) -> None:
    copies = symlinked_copies(capsys)
    mine = app_dir() / "mine.gguf"
    mine.write_bytes(b"user's own")
    copies.app.unlink()
    os.symlink(mine, copies.app)
    write(dedup_spec(f"  qwen:\n    source: {QWEN_SRC}\n    ensure: absent\n"))

    apply(capsys)

    assert os.readlink(copies.app) == str(mine)
    assert regular_with_bytes(copies.hf, GGUF)


def test_restore_refuses_when_the_file_cannot_be_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep = tmp_path / "store" / "blob"
    keep.parent.mkdir()
    keep.write_bytes(GGUF)
    app = tmp_path / "app"
    app.mkdir()
    dup = app / "model.gguf"
    os.symlink(keep, dup)
    record = DedupRecord(dup, keep, sha256_hex(GGUF), "symlink")
    with monkeypatch.context() as patch:
        read_only(app, patch)
        with pytest.raises(ActionError, match=r"cannot turn .*model.gguf back into a file"):
            restore_symlinked([keep.parent], [record])
        app.chmod(0o755)
    assert dup.is_symlink()
    assert restore_symlinked([keep], [record]) == [dup]
    assert regular_with_bytes(dup, GGUF)
    assert os.stat(dup).st_ino == os.stat(keep).st_ino  # same filesystem: a hardlink


def test_restore_copies_across_filesystems_keeping_the_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep = tmp_path / "blob"
    keep.write_bytes(GGUF)
    keep.chmod(0o640)
    dup = tmp_path / "app.gguf"
    os.symlink(keep, dup)

    def exdev(*_: object, **__: object) -> None:
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", exdev)
    assert restore_symlinked([keep], [DedupRecord(dup, keep, "x", "symlink")]) == [dup]
    assert regular_with_bytes(dup, GGUF)
    assert os.stat(dup).st_ino != os.stat(keep).st_ino
    assert stat.S_IMODE(os.stat(dup).st_mode) == 0o640


def test_a_dedup_of_another_mechanism_is_not_touched(tmp_path: Path) -> None:
    keep = tmp_path / "blob"
    keep.write_bytes(GGUF)
    dup = tmp_path / "app.gguf"
    os.link(keep, dup)
    assert restore_symlinked([keep], [DedupRecord(dup, keep, "x", "hardlink")]) == []


# --- 2. links: loops, read-only folders, confinement ---------------------------------------


def lms_spec(app: Path, *models: str, extra: str = "") -> Path:
    names = ", ".join(models)
    return write(
        f"version: 1\n{extra}models:\n  qwen:\n    source: {QWEN_SRC}\n"
        f"apps:\n  lms:\n    path: {app}\n    layout: lmstudio\n    models: [{names}]\n"
    )


def qwen_blob() -> Path:
    info = ob.add_model(ollama_dir(), QWEN, ob.default_layers("qwen", 4096))
    layer = info.layer("model")
    assert layer is not None
    return info.blob_path(layer)


def one_line_failure(result: Result, *words: str) -> None:
    """Exit 1, one 'failed:' line saying what, nothing else went wrong."""
    failed = [line for line in (result.out + result.err).splitlines() if "failed:" in line]
    assert failed, (result.out, result.err)
    assert all(word in failed[0] for word in words), failed


def tree(top: Path) -> dict[str, str]:
    """Every entry below ``top`` (links not followed): what a change outside would show."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in (*dirnames, *filenames):
            path = Path(dirpath, name)
            out[str(path)] = os.readlink(path) if path.is_symlink() else "entry"
    return out


def test_an_app_folder_under_a_symlink_loop_warns_and_fails_the_link_only(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    qwen_blob()
    loop = tmp_path / "loop"
    os.symlink(loop, loop)
    lms_spec(loop / "models", "qwen")

    plan = mlx(capsys, "plan")
    assert "Traceback" not in plan.out + plan.err
    assert plan.code == 0, (plan.out, plan.err)
    assert "cannot read" in plan.out + plan.err and "symbolic links" in plan.out + plan.err

    result = apply(capsys, code=1)
    one_line_failure(result, "symbolic links")
    assert os.path.islink(loop) and os.readlink(loop) == str(loop)


def test_a_read_only_app_folder_fails_the_link_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    qwen_blob()
    app = tmp_path / "lms"
    app.mkdir()
    lms_spec(app, "qwen")
    read_only(app, monkeypatch)

    result = apply(capsys, code=1)

    one_line_failure(result, "Permission denied", str(app))
    assert list(app.iterdir()) == []


def test_removing_a_link_from_a_read_only_app_folder_fails_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    qwen_blob()
    app = tmp_path / "lms"
    lms_spec(app, "qwen")
    apply(capsys)
    before = tree(app)
    assert any(Path(p).is_symlink() for p in before)
    lms_spec(app)
    for folder in [app, *(Path(p) for p, what in before.items() if what == "entry")]:
        read_only(folder, monkeypatch)

    result = apply(capsys, code=1)

    one_line_failure(result, "Permission denied")
    assert tree(app) == before


def test_a_symlinked_subfolder_never_lets_mlx_create_or_remove_outside(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    blob = qwen_blob()
    app = tmp_path / "lms"
    lms_spec(app, "qwen")
    apply(capsys)
    (link,) = [Path(p) for p, what in tree(app).items() if what != "entry"]
    publisher = link.parent.parent
    # The user moves the publisher folder elsewhere and leaves a link in its place.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.rename(publisher, elsewhere / publisher.name)
    os.symlink(elsewhere / publisher.name, publisher)
    outside = tree(elsewhere)

    # Removing the model from the app: mlx's link now sits outside the app folder.
    lms_spec(app)
    result = apply(capsys)
    assert tree(elsewhere) == outside
    assert link.is_symlink() and link.resolve() == blob.resolve()

    # Wanting it again: the publisher folder is a link, a conflict, never followed.
    os.unlink(elsewhere / publisher.name / link.parent.name / link.name)
    outside = tree(elsewhere)
    lms_spec(app, "qwen")
    result = apply(capsys, code=1)
    assert "Traceback" not in result.out + result.err
    assert tree(elsewhere) == outside


def test_link_effects_refuse_paths_outside_the_app_folder(tmp_path: Path) -> None:
    """The same at the effect level: the plan saw a folder, apply finds a link out."""
    from mlxstate.apply.link_effects import create_link, remove_link, retarget_link

    app, elsewhere = tmp_path / "app", tmp_path / "elsewhere"
    (elsewhere / "model").mkdir(parents=True)
    app.mkdir()
    os.symlink(elsewhere, app / "pub")
    target = tmp_path / "blob"
    target.write_bytes(b"x")
    theirs = elsewhere / "model" / "x.gguf"
    os.symlink(target, theirs)

    with pytest.raises(ActionError, match="leads outside the app folder"):
        create_link(app / "pub" / "model" / "new.gguf", target, app)
    with pytest.raises(ActionError, match="leads outside the app folder"):
        remove_link(app / "pub" / "model" / "x.gguf", target, app, {app / "pub" / "model"})
    with pytest.raises(ActionError, match="leads outside the app folder"):
        retarget_link(app / "pub" / "model" / "x.gguf", target, tmp_path / "other", app)
    assert sorted(os.listdir(elsewhere / "model")) == ["x.gguf"]
    assert os.readlink(theirs) == str(target)
    # An app folder that is itself a link (another disk) is fine.
    os.symlink(elsewhere, tmp_path / "app2")
    assert create_link(tmp_path / "app2" / "m" / "y.gguf", target, tmp_path / "app2")


def test_a_regular_file_or_foreign_link_is_never_replaced(tmp_path: Path) -> None:
    from mlxstate.apply.link_effects import create_link, retarget_link

    app = tmp_path / "app"
    app.mkdir()
    target = tmp_path / "blob"
    target.write_bytes(b"x")
    mine = app / "file.gguf"
    mine.write_bytes(b"user")
    foreign = app / "link.gguf"
    os.symlink(tmp_path / "theirs", foreign)
    with pytest.raises(ActionError, match="conflict"):
        create_link(mine, target, app)
    with pytest.raises(ActionError, match="conflict"):
        retarget_link(foreign, target, tmp_path / "new", app)
    with pytest.raises(ActionError, match="conflict"):
        retarget_link(mine, target, tmp_path / "new", app)
    assert mine.read_bytes() == b"user" and os.readlink(foreign) == str(tmp_path / "theirs")


def test_a_duplicate_whose_folder_now_leads_out_of_the_store_is_refused(tmp_path: Path) -> None:
    from mlxstate.apply.dedup_effects import dedup

    copies = make_copies()
    (action,) = [a for a in dedups(make_plan_for("hardlink")) if a.subject == str(copies.hf)]
    # Between plan and apply the blobs folder moves out of the cache, a link left behind:
    # same file (device, inode, size, mtime), but no longer in any store.
    blobs, moved = copies.hf.parent, tmp_path / "moved-blobs"
    os.rename(blobs, moved)
    os.symlink(moved, blobs)
    inode = os.stat(moved / copies.hf.name).st_ino

    with pytest.raises(ActionError, match="no longer inside a model store or app folder"):
        dedup(action, [ollama_dir(), hf_dir(), app_dir()])

    assert os.stat(moved / copies.hf.name).st_ino == inode
    assert os.stat(copies.ollama).st_nlink == 1


# --- 3. LM Studio: one entry per model, publishers from the source -------------------------

HF_PULL = "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"


def lms_links(app: Path) -> dict[str, str]:
    return {
        str(Path(p).relative_to(app)): os.readlink(p)
        for p, what in tree(app).items()
        if what != "entry"
    }


def test_ollama_models_are_filed_under_real_publishers(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    qwen = qwen_blob()
    info = ob.add_model(ollama_dir(), HF_PULL, ob.default_layers("llama-hf", 3000))
    layer = info.layer("model")
    assert layer is not None
    app = tmp_path / "lms"
    write(
        f"version: 1\nmodels:\n  qwen:\n    source: {QWEN_SRC}\n"
        f"  llama:\n    source: ollama://{HF_PULL}\n"
        f"apps:\n  lms:\n    path: {app}\n    layout: lmstudio\n    models: [qwen, llama]\n"
    )

    apply(capsys)

    assert lms_links(app) == {
        "ollama/qwen-7b-GGUF/qwen-7b.gguf": str(qwen),
        "bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf": str(
            info.blob_path(layer)
        ),
    }
    assert mlx(capsys, "plan", "--detailed-exitcode").code == 0


def test_a_model_the_app_already_holds_gets_no_second_entry(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The reported case: LM Studio's own download of the GGUF, deduplicated against the
    Ollama blob, plus mlx's link listed the model twice."""
    blob = qwen_blob()
    app = tmp_path / "lms"
    theirs = app / "lmstudio-community" / "Qwen-7B-GGUF" / "Qwen-7B-Q4_K_M.gguf"
    theirs.parent.mkdir(parents=True)
    theirs.write_bytes(blob.read_bytes())
    lms_spec(app, "qwen", extra="settings:\n  dedup: auto\n")

    apply(capsys)

    assert lms_links(app) == {}
    assert os.stat(theirs).st_ino == os.stat(blob).st_ino  # deduplicated, still a file
    assert mlx(capsys, "plan", "--detailed-exitcode").code == 0


def test_mlx_links_in_the_old_layout_move_and_do_not_stay_twice(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from mlxstate.registry import Registry

    blob = qwen_blob()
    app = tmp_path / "lms"
    old = app / "library" / "qwen-7b" / "qwen-7b.gguf"
    old.parent.mkdir(parents=True)
    os.symlink(blob, old)
    with Registry.open(state_dir()) as registry:
        registry.add_link(old, blob, "lms", "qwen")
        registry.add_dir(app / "library", "lms")
        registry.add_dir(old.parent, "lms")
    lms_spec(app, "qwen")
    plan = mlx(capsys, "plan")
    assert f"moved to {app / 'ollama/qwen-7b-GGUF/qwen-7b.gguf'}" in plan.out, plan.out

    result = apply(capsys)

    assert lms_links(app) == {"ollama/qwen-7b-GGUF/qwen-7b.gguf": str(blob)}
    assert not (app / "library").exists()
    assert {str(link.path) for link in read_facts(state_dir()).links} == {
        str(app / "ollama/qwen-7b-GGUF/qwen-7b.gguf")
    }
    assert "Traceback" not in result.out
    assert mlx(capsys, "plan", "--detailed-exitcode").code == 0
