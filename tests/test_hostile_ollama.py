"""The Ollama store and daemon as an adversary: what mlx reads is checked, what it deletes
stays inside the store, and what the daemon says is checked against the disk.

- digests that are not ``sha256:`` + 64 lowercase hex never become paths (a ``..`` in one
  once made the on-disk delete remove a file outside the store);
- manifests or stream lines nested 100k deep, not UTF-8, or cut short are a warning or a
  failed action, never exit 3;
- read-only folders make one clear failed action while the others go on;
- a pull the daemon calls a success must be in the store; a delete must be gone from it;
- names match ignoring case, but an on-disk delete never guesses between case variants.

Stores are written by ``tests.builders.ollama_store``; the daemon is the loopback fake.
"""

from __future__ import annotations

import errno
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlxstate.apply.ollama_effects import OllamaEffects
from mlxstate.errors import ActionError
from mlxstate.observe.ollama_store import read_one_model, scan_ollama_store
from mlxstate.sources import OllamaSource, parse_source
from tests.builders import ollama_store as ob
from tests.builders.common import HOUR, sha256_hex
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import Result, dead_url, mlx, ollama_dir, run_apply

QWEN = "qwen2.5:0.5b"
OLD = "llama2:7b"
ELSEWHERE = "is the daemon using another OLLAMA_MODELS?"
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0

PULL_SPEC = f"version: 1\nmodels:\n  qwen:\n    source: ollama://{QWEN}\n"
ABSENT_SPEC = f"""\
version: 1
models:
  old:
    source: ollama://{OLD}
    ensure: absent
"""
TWO_ABSENT_SPEC = ABSENT_SPEC + "  phi:\n    source: ollama://phi3:mini\n    ensure: absent\n"
CLEANUP_SPEC = "version: 1\nsettings:\n  cleanup:\n    partials: true\n    orphans: true\n"


@pytest.fixture(autouse=True)
def daemon_down(monkeypatch: pytest.MonkeyPatch) -> None:
    """No daemon unless a test asks for the fake (whose fixture overrides this)."""
    monkeypatch.setenv("OLLAMA_HOST", dead_url())


@pytest.fixture
def restore_modes() -> Iterator[list[Path]]:
    """Folders a test made read-only get their write bit back (pytest must clean up)."""
    folders: list[Path] = []
    yield folders
    for folder in folders:
        folder.chmod(0o755)


def spec(text: str) -> Path:
    path = Path("mlx.yaml")
    path.write_text(text)
    return path


def sane(result: Result | object) -> None:
    """No traceback and no internal error (exit 3) in what mlx printed."""
    out = f"{getattr(result, 'out', '')}{getattr(result, 'stdout', '')}"
    err = f"{getattr(result, 'err', '')}{getattr(result, 'stderr', '')}"
    err = re.sub(r"-{40}\nException occurred during processing.*?-{40}\n", "", err, flags=re.S)
    assert "Traceback" not in out + err and "internal error" not in out + err, out + err
    code = getattr(result, "code", getattr(result, "returncode", None))
    assert code in (0, 1), (code, out, err)


def src(name: str) -> OllamaSource:
    parsed = parse_source(f"ollama://{name}")
    assert isinstance(parsed, OllamaSource)
    return parsed


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file (content) and link (target) below ``root``."""
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                out[os.fsdecode(path)] = os.readlink(os.fsdecode(path))
            elif os.path.isfile(path):
                with open(path, "rb") as f:
                    out[os.fsdecode(path)] = f.read()
    return out


def traversal_digest(victim_name: str) -> str:
    """``sha256:x/././…/../../../<victim_name>``, 64 characters after ``sha256:``: joined
    below ``blobs/`` (with a folder ``blobs/sha256-x``) it names a file beside the store."""
    tail = "../../../" + victim_name
    pad = 64 - 2 - len(tail)
    assert pad >= 0 and pad % 2 == 0, victim_name
    return "sha256:x/" + "./" * (pad // 2) + tail


# --- 1. digests never become paths unchecked ----------------------------------------------------


@pytest.mark.parametrize(
    "digest",
    [
        traversal_digest("victim-file.x"),
        "sha256:" + "/" * 64,
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63 + "\n",
        "sha256-" + "a" * 64,
        "sha256:" + "a" * 65,
        "sha256:" + "\udcff" * 64,
        123,
        ["sha256:" + "a" * 64],
    ],
    ids=["dotdot", "slashes", "upper", "newline", "dash", "long", "surrogates", "int", "list"],
)
def test_a_manifest_with_an_invalid_digest_is_unreadable_with_a_warning(
    tmp_path: Path, digest: object
) -> None:
    info = ob.add_model(tmp_path / "m", OLD)
    ob.add_raw_layer(info, digest)
    ob.add_orphan_blob(tmp_path / "m", b"would be an orphan")

    store = scan_ollama_store(tmp_path / "m")

    assert store.models == ()
    assert not store.orphans_known and store.orphans == ()
    assert any("bad layer digest" in w and str(info.path) in w for w in store.warnings)
    assert read_one_model(tmp_path / "m", ("registry.ollama.ai", "library", "llama2", "7b")) is None


def _traversal_store() -> tuple[ob.ManifestInfo, Path]:
    """OLD installed, plus a layer whose digest climbs out of blobs/ to a user's file of the
    manifest's size; returns the manifest and that file."""
    info = ob.add_model(ollama_dir(), OLD, [("model", ob.fake_gguf("old", 2048))])
    victim = ollama_dir().parent / "victim-file.x"
    victim.write_bytes(b"precious")
    (ollama_dir() / "blobs" / "sha256-x").mkdir()  # makes the joined path resolve
    ob.add_raw_layer(info, traversal_digest(victim.name), size=len(b"precious"))
    return info, victim


def test_apply_never_deletes_outside_the_store_through_a_digest(
    capsys: pytest.CaptureFixture[str],
) -> None:
    info, victim = _traversal_store()
    before = info.path.read_bytes()
    spec(ABSENT_SPEC)

    result = mlx(capsys, "apply", "-y")

    sane(result)
    assert result.code == 0
    assert victim.read_bytes() == b"precious"
    assert info.path.read_bytes() == before  # unreadable: left alone, reported
    status = mlx(capsys, "status")
    assert "bad layer digest" in (status.out + status.err).replace("\n", "")


def test_the_on_disk_delete_refuses_a_manifest_with_an_invalid_digest() -> None:
    _info, victim = _traversal_store()
    before = tree(ollama_dir())

    with pytest.raises(ActionError, match=r"cannot read the manifest .*bad layer digest"):
        OllamaEffects(dead_url(), ollama_dir()).delete(src(OLD))

    assert victim.read_bytes() == b"precious"
    assert tree(ollama_dir()) == before


def test_an_on_disk_delete_through_a_symlinked_manifests_folder_is_refused(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    ob.add_model(outside, OLD)
    library = ollama_dir() / "manifests" / "registry.ollama.ai" / "library"
    library.parent.mkdir(parents=True)
    library.symlink_to(outside / "manifests" / "registry.ollama.ai" / "library")
    before = tree(outside)

    with pytest.raises(ActionError, match=r"^refusing to delete .*: it resolves outside "):
        OllamaEffects(dead_url(), ollama_dir()).delete(src(OLD))

    assert tree(outside) == before


def test_a_symlinked_blob_is_deleted_as_a_link_never_its_target(tmp_path: Path) -> None:
    gguf = ob.fake_gguf("linked", 2048)
    info = ob.add_model(ollama_dir(), OLD, [("model", gguf)])
    elsewhere = tmp_path / "hf-copy.gguf"
    elsewhere.write_bytes(gguf)
    weights = info.layer("model")
    assert weights is not None
    link = ob.link_blob(ollama_dir(), weights.digest, elsewhere)

    how = OllamaEffects(dead_url(), ollama_dir()).delete(src(OLD))

    assert how == "deleted on disk (Ollama daemon not running)"
    assert not os.path.lexists(link) and not info.path.exists()
    assert elsewhere.read_bytes() == gguf


@pytest.mark.parametrize(
    "parts",
    [
        ("registry.ollama.ai", "..", "x", "latest"),
        ("registry.ollama.ai", "library", "a/b", "latest"),
        ("registry.ollama.ai", "library", "x", "latest\n"),
        ("..", "library", "x", "latest"),
    ],
    ids=["dotdot", "slash", "newline", "host-dotdot"],
)
def test_an_invalid_name_is_never_joined_into_a_path(
    tmp_path: Path, parts: tuple[str, str, str, str]
) -> None:
    victim = ollama_dir() / "x" / "latest"
    victim.parent.mkdir(parents=True)
    victim.write_text("not a manifest")

    with pytest.raises(ActionError, match=r"^refusing to delete .*: not a valid Ollama name$"):
        OllamaEffects(dead_url(), ollama_dir()).delete_on_disk(OllamaSource(*parts))

    assert victim.read_text() == "not a manifest"
    assert read_one_model(ollama_dir(), parts) is None


def test_a_cleanup_action_outside_the_blob_names_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A cleanup deletes only names Ollama gives partials and orphans, in blobs/ itself."""
    from mlxstate.apply.cleanup_effects import delete_ollama_file
    from mlxstate.plan.actions import Action
    from mlxstate.plan.params import FileCleanupParams

    user = ollama_dir() / "blobs" / "notes.txt"
    user.parent.mkdir(parents=True)
    user.write_text("mine")
    action = Action(
        "cleanup/ollama/notes.txt",
        "delete",
        "cleanup.orphan",
        str(user),
        0,
        4,
        "x",
        None,
        FileCleanupParams(mtime=user.stat().st_mtime, size=4),
    )
    with pytest.raises(ActionError, match=r"^refusing to delete .*notes\.txt: not an Ollama"):
        delete_ollama_file(action, ollama_dir())
    assert user.read_text() == "mine"


# --- 2 and 3. deeply nested, non-UTF-8 and truncated input ------------------------------------


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (ob.nested_json(), "nested too deeply"),
        (b'{"layers":[{"digest":"\xff\xfe"}]}', "not UTF-8"),
        (b'{"schemaVersion":2,"layers":[{"digest":"sha256:', "not JSON"),
    ],
    ids=["nested-100k", "not-utf8", "truncated"],
)
def test_a_hostile_manifest_is_a_warning_in_status_plan_and_apply(
    capsys: pytest.CaptureFixture[str], content: bytes, why: str
) -> None:
    ob.add_model(ollama_dir(), "phi3:mini")
    bad = ob.write_unparseable_manifest(ollama_dir(), "broken:latest", content)
    old = ob.add_model(ollama_dir(), OLD)
    spec(ABSENT_SPEC)

    for args in (("status",), ("status", "--json"), ("plan",), ("apply", "-y")):
        result = mlx(capsys, *args)
        sane(result)
        assert result.code == 0, (args, result.out, result.err)
        if args[0] in ("status", "plan"):  # both show the stores' warnings
            flat = (result.out + result.err).replace("\n", "")  # status wraps long lines
            # Human output shows the home folder as ~; JSON has the absolute path.
            shown = str(bad).replace(str(Path.home()), "~") if "--json" not in args else str(bad)
            assert shown in flat and why in flat, (args, result.out, result.err)

    assert not old.path.exists()
    assert bad.read_bytes() == content
    assert all(old.blob_path(b).exists() for b in old.blobs)  # kept: the broken one may use them


def test_a_manifest_with_a_non_utf8_file_name_is_left_alone_and_its_blobs_kept(
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = ob.add_model(ollama_dir(), "phi3:mini")
    raw = info.path.read_bytes()
    info.path.unlink()
    odd = ob.write_manifest_at(
        ollama_dir(), [b"registry.ollama.ai", b"library", b"m\xffx", b"7b"], raw
    )
    ob.write_manifest_at(ollama_dir(), ["registry.ollama.ai", "library", "K\u212aimi", "7b"], raw)
    (ollama_dir() / "blobs" / "sha256-\udcff").write_bytes(b"x")
    spec(CLEANUP_SPEC)

    store = scan_ollama_store(ollama_dir())
    assert store.models == () and store.orphans_known and store.orphans == ()
    assert sum("invalid name" in w for w in store.warnings) == 2
    for args in (("status",), ("status", "--json"), ("plan", "--json"), ("apply", "-y")):
        result = mlx(capsys, *args)
        sane(result)
        assert result.code == 0, (args, result.out, result.err)

    assert os.path.isfile(odd)
    assert all(info.blob_path(b).exists() for b in info.blobs)


@pytest.mark.parametrize(
    "garbage",
    [b"[" * 100_000, b'{"status":"pulling 1234', b'\xff\xfe{"status":\xff}\n', b"[1, 2]\n"],
    ids=["nested-100k", "truncated", "not-utf8", "not-an-object"],
)
def test_a_hostile_stream_line_fails_that_pull_cleanly(
    ollama_server: FakeOllama, garbage: bytes
) -> None:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    ollama_server.pull_garbage_after = 2
    ollama_server.pull_garbage = garbage

    result = run_apply(spec(PULL_SPEC))

    sane(result)
    assert result.returncode == 1, result.stderr
    assert re.search(
        r"model/qwen: pull of qwen2\.5:0\.5b: (Ollama sent a line that is not JSON|"
        r"unexpected reply from Ollama)",
        result.stdout,
    ), result.stdout


# --- 4. read-only folders -----------------------------------------------------------------------


def _deny_unlink(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """os.unlink of anything directly in ``folder`` fails as on a read-only folder (root
    ignores chmod, so this is how the message is proven everywhere)."""
    real = os.unlink

    def unlink(path: os.PathLike[str] | str, *args: object, **kwargs: object) -> None:
        if Path(path).parent == folder:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        real(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "unlink", unlink)


def _two_to_delete() -> tuple[ob.ManifestInfo, ob.ManifestInfo]:
    old = ob.add_model(ollama_dir(), OLD, [("model", ob.fake_gguf("old", 2048))])
    phi = ob.add_model(ollama_dir(), "phi3:mini", [("model", ob.fake_gguf("phi", 2048))])
    spec(TWO_ABSENT_SPEC)
    return old, phi


def _read_only_manifest_folder_fails_one_delete(
    capsys: pytest.CaptureFixture[str], old: ob.ManifestInfo, phi: ob.ManifestInfo
) -> None:
    before = old.path.read_bytes()
    result = mlx(capsys, "apply", "-y")
    sane(result)
    assert result.code == 1
    assert f"  model/old: cannot delete {old.path}: permission denied\n" in result.out
    assert "1 done, 1 failed" in result.out
    assert old.path.read_bytes() == before and all(old.blob_path(b).exists() for b in old.blobs)
    assert not phi.path.exists() and not any(phi.blob_path(b).exists() for b in phi.blobs)


def test_an_unlink_denied_in_manifests_fails_that_delete_and_the_others_go_on(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old, phi = _two_to_delete()
    _deny_unlink(monkeypatch, old.path.parent)
    _read_only_manifest_folder_fails_one_delete(capsys, old, phi)


@pytest.mark.skipif(IS_ROOT, reason="root ignores folder permissions")
def test_a_read_only_manifest_folder_fails_that_delete_and_the_others_go_on(
    capsys: pytest.CaptureFixture[str], restore_modes: list[Path]
) -> None:
    old, phi = _two_to_delete()
    old.path.parent.chmod(0o555)
    restore_modes.append(old.path.parent)
    _read_only_manifest_folder_fails_one_delete(capsys, old, phi)


def _read_only_blobs_fail_the_delete_clearly(
    capsys: pytest.CaptureFixture[str], old: ob.ManifestInfo
) -> None:
    result = mlx(capsys, "apply", "-y")
    sane(result)
    assert result.code == 1
    first = ob.blob_path(ollama_dir(), min(b.hex for b in old.blobs))
    line = next(ln for ln in result.out.splitlines() if ln.startswith("  model/old: "))
    assert line.startswith(f"  model/old: {OLD}: manifest deleted, but cannot delete {first}: ")
    assert line.endswith("permission denied (and 4 more)"), line
    assert not old.path.exists() and all(old.blob_path(b).exists() for b in old.blobs)


def test_an_unlink_denied_in_blobs_is_one_clear_failed_action(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    old = ob.add_model(ollama_dir(), OLD)
    spec(ABSENT_SPEC)
    _deny_unlink(monkeypatch, ollama_dir() / "blobs")
    _read_only_blobs_fail_the_delete_clearly(capsys, old)


@pytest.mark.skipif(IS_ROOT, reason="root ignores folder permissions")
def test_a_read_only_blobs_folder_is_one_clear_failed_action(
    capsys: pytest.CaptureFixture[str], restore_modes: list[Path]
) -> None:
    old = ob.add_model(ollama_dir(), OLD)
    spec(ABSENT_SPEC)
    (ollama_dir() / "blobs").chmod(0o555)
    restore_modes.append(ollama_dir() / "blobs")
    _read_only_blobs_fail_the_delete_clearly(capsys, old)


def _garbage() -> tuple[Path, Path]:
    orphan = ob.add_orphan_blob(ollama_dir(), b"orphan bytes", age=2 * HOUR)
    partial = ob.write_partial(ollama_dir(), b"partial bytes" * 10, age=2 * HOUR)
    return orphan, partial.partial_path


def _cleanups_fail_clearly(capsys: pytest.CaptureFixture[str], orphan: Path) -> None:
    before = tree(ollama_dir())
    spec(CLEANUP_SPEC)
    result = mlx(capsys, "apply", "-y")
    sane(result)
    assert result.code == 1
    assert f"cannot delete {orphan}: permission denied" in result.out.replace(
        "Permission", "permission"
    )
    assert "0 done, 3 failed" in result.out
    assert tree(ollama_dir()) == before


def test_cleanups_with_unlink_denied_fail_clearly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    orphan, _partial = _garbage()
    _deny_unlink(monkeypatch, ollama_dir() / "blobs")
    _cleanups_fail_clearly(capsys, orphan)


@pytest.mark.skipif(IS_ROOT, reason="root ignores folder permissions")
def test_cleanups_in_a_read_only_blobs_folder_fail_clearly(
    capsys: pytest.CaptureFixture[str], restore_modes: list[Path]
) -> None:
    orphan, _partial = _garbage()
    (ollama_dir() / "blobs").chmod(0o555)
    restore_modes.append(ollama_dir() / "blobs")
    _cleanups_fail_clearly(capsys, orphan)


# --- 5. the store, not the daemon, has the last word --------------------------------------------


def test_a_pull_that_says_success_without_installing_fails(ollama_server: FakeOllama) -> None:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    ollama_server.pull_success_only = True

    result = run_apply(spec(PULL_SPEC))

    sane(result)
    assert result.returncode == 1
    assert (
        f"  model/qwen: ollama said success but {QWEN} is not in {ollama_dir()}; {ELSEWHERE}\n"
        in result.stdout
    ), result.stdout
    assert "0 done, 1 failed" in result.stdout


@pytest.fixture
def other_daemon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    """A daemon serving another models folder than the one mlx looks at."""
    with FakeOllama(tmp_path / "other-models") as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        yield server


def test_a_pull_into_another_models_folder_fails(other_daemon: FakeOllama) -> None:
    other_daemon.publish(QWEN, ob.default_layers(QWEN, 2048))

    result = run_apply(spec(PULL_SPEC))

    sane(result)
    assert result.returncode == 1
    assert f"ollama said success but {QWEN} is not in {ollama_dir()}; {ELSEWHERE}" in result.stdout
    assert ob.manifest_path(other_daemon.models_dir, QWEN).is_file()  # where it went


def test_a_pull_that_leaves_a_broken_model_fails(ollama_server: FakeOllama) -> None:
    model = ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    ollama_server.pull_success_only = True
    ob.write_manifest(ollama_dir(), QWEN, model.manifest)  # the manifest but no blobs

    result = run_apply(spec(PULL_SPEC))

    sane(result)
    assert result.returncode == 1
    assert re.search(
        rf"ollama said success but {re.escape(QWEN)} in {re.escape(str(ollama_dir()))} is "
        rf"broken \(\w+ blob sha256-[0-9a-f]{{12}} is missing\); {re.escape(ELSEWHERE)}",
        result.stdout,
    ), result.stdout


def test_a_delete_whose_connection_drops_before_deleting_fails(
    ollama_server: FakeOllama,
) -> None:
    old = ob.add_model(ollama_dir(), OLD)
    before = tree(ollama_dir())
    ollama_server.delete_drop = "before"

    result = run_apply(spec(ABSENT_SPEC))

    sane(result)
    assert result.returncode == 1
    assert re.search(
        rf"  model/old: delete of {OLD} failed \(\w+\) and left its manifest "
        rf"{re.escape(str(old.path))}\n",
        result.stdout,
    ), result.stdout
    assert tree(ollama_dir()) == before


def test_a_delete_whose_connection_drops_after_deleting_is_done(
    ollama_server: FakeOllama,
) -> None:
    old = ob.add_model(ollama_dir(), OLD)
    ollama_server.delete_drop = "after"

    result = run_apply(spec(ABSENT_SPEC))

    sane(result)
    assert result.returncode == 0, result.stdout
    assert not old.path.exists()


def test_a_delete_by_a_daemon_serving_another_folder_fails(other_daemon: FakeOllama) -> None:
    ob.add_model(other_daemon.models_dir, OLD)
    old = ob.add_model(ollama_dir(), OLD)
    before = tree(ollama_dir())

    result = run_apply(spec(ABSENT_SPEC))

    sane(result)
    assert result.returncode == 1
    assert (
        f"  model/old: ollama said it deleted {OLD} but left its manifest {old.path}; "
        f"{ELSEWHERE}\n" in result.stdout
    ), result.stdout
    assert tree(ollama_dir()) == before


def test_a_404_from_a_daemon_serving_another_folder_fails(other_daemon: FakeOllama) -> None:
    old = ob.add_model(ollama_dir(), OLD)

    result = run_apply(spec(ABSENT_SPEC))

    sane(result)
    assert result.returncode == 1
    assert f"ollama said it has no {OLD} but left its manifest {old.path}" in result.stdout
    assert old.path.exists()


# --- 6. case -------------------------------------------------------------------------------------


def test_two_case_variants_on_disk_refuse_the_on_disk_delete(
    capsys: pytest.CaptureFixture[str],
) -> None:
    upper = ob.add_model(ollama_dir(), "Llama2:7b", [("model", ob.fake_gguf("upper", 2048))])
    lower = ob.add_model(ollama_dir(), OLD, [("model", ob.fake_gguf("lower", 2048))])
    if upper.path == lower.path or os.path.samefile(upper.path, lower.path):
        pytest.skip("case-insensitive file system")
    before = tree(ollama_dir())
    spec(ABSENT_SPEC)

    result = mlx(capsys, "apply", "-y")

    sane(result)
    assert result.code == 1
    assert (
        f"  model/old: cannot delete {OLD} on disk: 2 manifests match it ignoring case "
        f"({upper.path}, {lower.path}); remove the one you do not want by hand, then apply "
        "again\n" in result.out
    ), result.out
    assert tree(ollama_dir()) == before


def test_an_on_disk_delete_never_matches_a_name_through_unicode_case_folding() -> None:
    # KELVIN SIGN lowercases to an ASCII "k": a naive case-insensitive match would take it.
    kelvin = ["registry.ollama.ai", "library", "\u212aimi", "latest"]
    raw = ob.add_model(ollama_dir(), "other:1").raw
    path = ob.write_manifest_at(ollama_dir(), kelvin, raw)

    assert OllamaEffects(dead_url(), ollama_dir()).delete(src("kimi")) == "already gone"

    assert os.path.isfile(path)


def test_an_on_disk_delete_in_another_case_deletes_only_that_model() -> None:
    old = ob.add_model(ollama_dir(), "Llama2:7B", [("model", ob.fake_gguf("old", 2048))])
    near = ob.add_model(ollama_dir(), "llama2:7b-q4", [("model", ob.fake_gguf("near", 2048))])
    kept = tree(near.path.parent.parent)
    kept = {k: v for k, v in kept.items() if "7b-q4" in k}

    OllamaEffects(dead_url(), ollama_dir()).delete(src("llama2:7b"))

    assert not old.path.exists()
    assert {k: v for k, v in tree(near.path.parent.parent).items() if "7b-q4" in k} == kept
    assert all(near.blob_path(b).exists() for b in near.blobs)


def test_read_one_model_prefers_the_exact_spelling(tmp_path: Path) -> None:
    ob.add_model(tmp_path, "Llama2:7b", [("model", ob.fake_gguf("upper", 2048))])
    lower = ob.add_model(tmp_path, OLD, [("model", ob.fake_gguf("lower", 2048))])
    model = read_one_model(tmp_path, ("registry.ollama.ai", "library", "llama2", "7b"))
    assert model is not None and model.manifest_digest == sha256_hex(lower.raw)


# --- the other ways in: probe, odd stream values, the zero-copy seed -----------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/version", b"[" * 100_000),
        ("/api/ps", b'{"models":' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ("/api/ps", b'{"models":[{"name":"\xff","size":"big","size_vram":1e400,"expires_at":7}]}'),
        ("/api/version", b'["not", "an", "object"]'),
    ],
    ids=["version-nested", "ps-nested", "ps-odd-values", "version-list"],
)
def test_the_probe_survives_a_hostile_daemon(path: str, body: bytes) -> None:
    import httpx

    from mlxstate.observe.ollama_api import probe_daemon

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == path:
            return httpx.Response(200, content=body)
        if request.url.path == "/api/version":
            return httpx.Response(200, json={"version": "0.33.0"})
        return httpx.Response(200, json={"models": []})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        daemon = probe_daemon("http://127.0.0.1:11434", client)

    assert daemon.reachable or "not an Ollama API" in str(daemon.error)
    assert all(m.size == 0 and m.size_vram == 0 for m in daemon.running)


def test_odd_numbers_in_progress_lines_are_ignored_not_fatal(ollama_server: FakeOllama) -> None:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    ollama_server.pull_garbage_after = 1
    ollama_server.pull_garbage = b'{"status":"x","digest":["a"],"total":1e400,"completed":"x"}\n'

    result = run_apply(spec(PULL_SPEC))

    sane(result)
    assert result.returncode == 1
    assert f"pull of {QWEN} ended before Ollama reported success" in result.stdout


@pytest.mark.parametrize(
    "digest", ["../../../../victim", "A" * 64, "a" * 63, "sha256:" + "a" * 63 + "/"]
)
def test_a_zero_copy_seed_with_a_bad_digest_places_nothing(tmp_path: Path, digest: str) -> None:
    from mlxstate.apply.hf_effects import seed_ollama_blob
    from mlxstate.plan.actions import Action
    from mlxstate.plan.params import PullParams

    gguf = tmp_path / "hf-blob"
    gguf.write_bytes(b"GGUF bytes")
    seed = PullParams(seed_blob=str(gguf), seed_sha256=digest, seed_size=len(b"GGUF bytes"))
    action = Action("model/q", "create", "ollama.pull", f"ollama://{QWEN}", None, 0, "", "q", seed)
    models = tmp_path / "models"
    models.mkdir()

    said = seed_ollama_blob(action, models)

    assert said == "cannot place the GGUF in Ollama's store: downloading instead"
    assert tree(tmp_path) == {str(gguf): b"GGUF bytes"}


def test_an_api_delete_with_two_case_variants_on_disk_names_the_one_left(
    ollama_server: FakeOllama,
) -> None:
    upper = ob.add_model(ollama_dir(), "Llama2:7b", [("model", ob.fake_gguf("upper", 2048))])
    lower = ob.add_model(ollama_dir(), OLD, [("model", ob.fake_gguf("lower", 2048))])
    if os.path.samefile(upper.path, lower.path):
        pytest.skip("case-insensitive file system")

    result = run_apply(spec(ABSENT_SPEC))

    sane(result)
    assert result.returncode == 1
    assert (
        f"  model/old: ollama said it deleted {OLD} but left its manifest {upper.path}; "
        "2 case variants of the name were on disk; remove the rest by hand\n" in result.stdout
    ), result.stdout
    assert upper.path.exists() and not lower.path.exists()
