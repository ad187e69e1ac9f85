"""Zero-copy Ollama pulls from Hugging Face: a GGUF already in the HF cache is hardlinked
into Ollama's store before `ollama pull`, so that layer is never downloaded again."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.builders import hf_cache as hb
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import mlx

GGUF = b"GGUF" + bytes(range(256)) * 80
SPEC = "version: 1\nsettings: {disk: {min_free: 0}}\nmodels:\n  g: {source: 'ollama://hf.co/org/g-GGUF:Q4_K_M'}\n"


def _hf_cache() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def test_plan_says_the_gguf_will_be_linked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hb.add_revision(_hf_cache(), "org/g-GGUF", {"g.Q4_K_M.gguf": GGUF}, lfs={"g.Q4_K_M.gguf"})
    (tmp_path / "mlx.yaml").write_text(SPEC)
    result = mlx(capsys, "plan")
    assert "is in the HF cache and will be linked, not downloaded" in result.out
    other = SPEC.replace("Q4_K_M", "Q8_0")  # a quant the cache does not hold
    (tmp_path / "mlx.yaml").write_text(other)
    assert "will be linked" not in mlx(capsys, "plan").out


def test_apply_links_the_hf_blob_and_pulls_only_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ollama_server: FakeOllama
) -> None:
    hb.add_revision(_hf_cache(), "org/g-GGUF", {"g.Q4_K_M.gguf": GGUF}, lfs={"g.Q4_K_M.gguf"})
    ollama_server.publish("hf.co/org/g-GGUF:Q4_K_M", layers=[("model", GGUF), ("template", b"t")])
    (tmp_path / "mlx.yaml").write_text(SPEC)
    result = mlx(capsys, "apply", "-y")
    assert result.code == 0, result.out + result.err
    digest = hashlib.sha256(GGUF).hexdigest()
    ollama_blob = ollama_server.models_dir / "blobs" / f"sha256-{digest}"
    hf_blob = _hf_cache() / "models--org--g-GGUF" / "blobs" / digest
    assert os.stat(ollama_blob).st_ino == os.stat(hf_blob).st_ino  # one copy on disk
    assert hf_blob.read_bytes() == GGUF  # the HF copy is intact
    assert not list(ollama_server.models_dir.glob(".mlx-seed-*"))  # no temp left behind
    assert mlx(capsys, "plan", "--detailed-exitcode").code == 0
