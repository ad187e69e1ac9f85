"""A blob in the shared Xet store is a link; observers keep the first hop (parity with
scan_cache_dir) and also where the bytes really are, which app links point at."""

from __future__ import annotations

import os
from pathlib import Path

from mlxstate.observe.hf_cache import scan_hf_cache
from tests.builders import hf_cache as hb


def test_xet_blob_records_its_payload(tmp_path: Path) -> None:
    cache = tmp_path / "hub"
    data = b"GGUF" + b"x" * 4000
    hb.add_revision(
        cache,
        "org/g-GGUF",
        {"g.Q4_K_M.gguf": data, "config.json": b"{}"},
        lfs={"g.Q4_K_M.gguf"},
        xet={"g.Q4_K_M.gguf"},
    )
    [repo] = scan_hf_cache(cache).repos
    [rev] = repo.revisions
    by_path = {f.path: f for f in rev.files}
    gguf, config = by_path["g.Q4_K_M.gguf"], by_path["config.json"]
    assert Path(gguf.blob_file).is_symlink()  # the first hop, as scan_cache_dir reports
    assert gguf.real_file and not Path(gguf.real_file).is_symlink()
    assert Path(gguf.real_file).read_bytes() == data
    assert os.path.realpath(gguf.blob_file) == gguf.real_file
    assert config.real_file == ""  # a plain blob: blob_file is the file


def test_copies_reached_through_a_link_are_not_reclaimable() -> None:
    from mlxstate.facts import DuplicateGroup

    real = (1, 10, 100, 5, False)
    linked = (1, 11, 100, 5, True)  # e.g. an HF blob that links into the Xet store
    group = DuplicateGroup(
        "ab" * 32,
        100,
        (Path("/a"), Path("/b"), Path("/c")),
        "name",
        (real, (1, 12, 100, 5, False), linked),
    )
    assert group.reclaimable == 100  # two real copies: one can go; the linked one cannot
    assert DuplicateGroup("ab" * 32, 100, (Path("/a"), Path("/b"))).reclaimable == 100
