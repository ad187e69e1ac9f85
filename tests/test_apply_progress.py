"""The tqdm adapter reports real byte progress of a real snapshot_download."""

from __future__ import annotations

from pathlib import Path

from mlxstate.apply.hf_effects import HfEffects
from tests.fakes.hf_hub import FakeHfHub


def test_hf_download_progress_counts_each_byte_once(tmp_path: Path, fake_hub: FakeHfHub) -> None:
    fake_hub.add_repo("org/tiny", {"config.json": b"{}", "model.safetensors": b"x" * 300_000})
    seen: list[tuple[int, int | None]] = []
    effects = HfEffects(tmp_path / "hub", None, fake_hub.url)
    commit = effects.download("org/tiny", "main", None, None, lambda d, t: seen.append((d, t)))
    assert len(commit) == 40
    assert seen, "no progress reported"
    done, total = seen[-1]
    assert done == total == 300_002  # both files, counted once (not once per internal bar)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # never goes backwards


def test_hf_delete_frees_the_repo(tmp_path: Path, fake_hub: FakeHfHub) -> None:
    fake_hub.add_repo("org/tiny", {"config.json": b"{}", "model.safetensors": b"y" * 1000})
    effects = HfEffects(tmp_path / "hub", None, fake_hub.url)
    effects.download("org/tiny", "main", None, None, lambda d, t: None)
    assert (tmp_path / "hub" / "models--org--tiny").is_dir()
    assert effects.delete("org/tiny") == 1002
    assert not (tmp_path / "hub" / "models--org--tiny").exists()
    assert effects.delete("org/tiny") == 0  # already gone: a no-op
