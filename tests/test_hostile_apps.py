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
from tests.builders.common import sha256_hex
from tests.helpers import Result, mlx
from tests.test_cli_apply import dead_url, hub_offline, manage, state_dir
from tests.test_dedup import GGUF, QWEN, Copies, app_dir, make_copies

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
