"""``mlx verify``: stored files against their names, read-only, cached, parallel."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from mlxstate.verify import digest_file
from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.builders.common import git_blob_sha1
from tests.helpers import hf_dir, mlx, ollama_dir
from tests.helpers.apply import no_traceback, tree_state


class Stores:
    def __init__(self) -> None:
        self.a = ob.add_model(ollama_dir(), "a:1", ob.default_layers("a", 8192))
        self.b = ob.add_model(ollama_dir(), "b:1", ob.default_layers("b", 4096))
        self.rev = hb.add_revision(
            hf_dir(),
            "org/m",
            {"model.safetensors": b"w" * 5000, "config.json": b'{"x": 1}\n'},
            lfs={"model.safetensors"},
        )

    @property
    def files(self) -> int:
        blobs = {b.hex for m in (self.a, self.b) for b in m.blobs}
        return len(blobs) + 2


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    result = mlx(capsys, "verify", "--json", *args)
    no_traceback(result)
    return result.code, json.loads(result.out)


def test_an_intact_store_verifies(capsys: pytest.CaptureFixture[str]) -> None:
    s = Stores()

    result = mlx(capsys, "verify")

    assert result.code == 0, (result.out, result.err)
    assert f"Verified {s.files} files" in result.out
    assert "all match their names" in result.out


def test_a_corrupt_ollama_blob_names_the_file_and_the_model_and_changes_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = Stores()
    weights = s.a.layers[0]
    bad = ob.corrupt_blob(ollama_dir(), weights.hex)
    before = tree_state(ollama_dir(), hf_dir())

    result = mlx(capsys, "verify")
    code, doc = _verify(capsys)

    assert result.code == code == 1
    assert f"corrupt: {bad}" in result.out.replace("~/", str(Path.home()) + "/")
    assert "breaks a:1" in result.out and "b:1" not in result.out
    problems = doc["problems"]
    assert isinstance(problems, list) and len(problems) == 1
    assert problems[0]["path"] == str(bad) and problems[0]["models"] == ["a:1"]
    assert problems[0]["expected"] == weights.hex
    assert problems[0]["actual"] == hashlib.sha256(bad.read_bytes()).hexdigest()
    assert tree_state(ollama_dir(), hf_dir()) == before  # read-only (the registry aside)


def test_hf_lfs_and_git_blobs_are_checked_by_their_own_hash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = Stores()
    small = s.rev.files["config.json"].blob_path
    os.chmod(small, 0o644)
    small.write_bytes(b'{"x": 2}\n')  # same size, other bytes: the git blob id no longer fits

    code, doc = _verify(capsys, "hf://org/m")

    assert code == 1
    problems = doc["problems"]
    assert isinstance(problems, list)
    assert [(p["algorithm"], p["path"]) for p in problems] == [("git-sha1", str(small))]
    assert problems[0]["models"] == [f"hf://org/m@{s.rev.commit[:12]}:config.json"]


def test_names_limit_what_is_verified_and_unknown_names_fail(
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = Stores()
    ob.corrupt_blob(ollama_dir(), s.a.layers[0].hex)
    Path("mlx.yaml").write_text("version: 1\nmodels:\n  bee:\n    source: ollama://b:1\n")

    by_name = _verify(capsys, "bee")
    by_source = _verify(capsys, "b:1", "org/m")
    unknown = mlx(capsys, "verify", "nope:1")

    assert by_name[0] == by_source[0] == 0
    assert by_name[1]["files"] == len(s.b.blobs)
    assert by_source[1]["files"] == len(s.b.blobs) + 2
    assert unknown.code == 1
    assert "not installed: nope:1" in unknown.err


def test_the_hash_cache_is_used_and_still_reports_a_corrupt_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = Stores()
    ob.corrupt_blob(ollama_dir(), s.a.layers[0].hex)

    first = _verify(capsys)
    second = _verify(capsys)
    fresh = _verify(capsys, "--rehash")

    sha256_files = s.files - 1  # config.json is checked by its git blob id, never cached
    assert first[1]["cached"] == 0 and first[1]["hashed_bytes"] == first[1]["bytes"]
    assert second[1]["cached"] == sha256_files
    assert fresh[1]["cached"] == 0
    assert first[0] == second[0] == fresh[0] == 1
    assert first[1]["problems"] == second[1]["problems"] == fresh[1]["problems"]


def test_a_fifo_or_missing_blob_is_reported_not_a_hang(
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = Stores()
    fifo = ob.remove_blob(ollama_dir(), s.a.layers[0].hex)
    os.mkfifo(fifo)
    gone = ob.remove_blob(ollama_dir(), s.b.layers[0].hex)

    code, doc = _verify(capsys, "-j", "2")

    assert code == 1
    problems = doc["problems"]
    assert isinstance(problems, list)
    assert {p["path"] for p in problems} == {str(fifo), str(gone)}
    assert {p["problem"] for p in problems} <= {"missing", "unreadable"}


def test_digest_file_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    with pytest.raises(OSError, match="not a regular file"):
        digest_file(fifo, "sha256")  # opened without blocking: no writer needed


def test_digest_file_matches_hashlib_and_git(tmp_path: Path) -> None:
    path = tmp_path / "f"
    data = os.urandom(3 << 20) + b"tail"
    path.write_bytes(data)

    assert digest_file(path, "sha256") == hashlib.sha256(data).hexdigest()
    assert digest_file(path, "git-sha1") == git_blob_sha1(data)


def test_a_blob_linked_to_an_endless_file_is_reported_not_read_forever(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # /proc/self/pagemap is a "regular file" of size 0 that reads on for hundreds of GB.
    s = Stores()
    blob = ob.remove_blob(ollama_dir(), s.a.layers[0].hex)
    blob.symlink_to("/proc/self/pagemap")

    code, doc = _verify(capsys, "a:1")

    assert code == 1
    problems = doc["problems"]
    assert isinstance(problems, list)
    assert [(p["path"], p["problem"]) for p in problems] == [(str(blob), "unreadable")]


def test_digest_file_stops_at_the_size_the_file_had(tmp_path: Path) -> None:
    endless = Path("/proc/self/pagemap")
    if not endless.is_file():
        pytest.skip("needs a Linux /proc")

    with pytest.raises(OSError, match="changed size while it was read"):
        digest_file(endless, "sha256")
