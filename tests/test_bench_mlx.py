"""The MLX engine for real: a tiny random llama model built with mlx, cached like the hub
leaves it, loaded and measured by mlx-lm on this machine's CPU (or Metal on a Mac)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlxstate.bench.engines.base import BenchTarget, EngineError
from mlxstate.bench.engines.mlx import MISSING_EXTRA, MlxEngine
from tests.builders.hf_cache import add_revision
from tests.builders.tiny_mlx import CONTEXT_LENGTH, TinyMlxModel, add_tiny_mlx_model, model_files
from tests.helpers import hf_dir, mlx
from tests.helpers.bench_run import SEAMS, write_bench_spec

_NO_MLX = "mlx / mlx-lm not installed (the mlx extra): uv sync --extra mlx"
PROMPT = "How fast can a tiny model write a sentence about local language models?"


def _need_mlx() -> None:
    for module in ("mlx.core", "mlx_lm", "tokenizers"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            pytest.skip(_NO_MLX)
    pytest.importorskip("mlx.core", reason=_NO_MLX)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> TinyMlxModel:
    """Built once per session (per xdist worker): tests copy it or only read it."""
    _need_mlx()
    return add_tiny_mlx_model(tmp_path_factory.mktemp("tiny-mlx") / "hub")


def target_of(model: TinyMlxModel) -> BenchTarget:
    source = f"hf://{model.repo_id}"
    return BenchTarget(
        name="tiny",
        source=source,
        ref=str(model.snapshot_dir),
        path=model.snapshot_dir,
        revision=model.commit,
    )


def test_load_reports_identity(tiny_cache: TinyMlxModel) -> None:
    engine = MlxEngine()
    with engine.load(target_of(tiny_cache)) as session:
        identity = session.loaded.identity
    assert identity["revision"] == tiny_cache.commit
    assert identity["context_length"] == CONTEXT_LENGTH
    assert identity["quantization"] is None
    assert identity["load_ms"] > 0
    # embeddings (tied) + 2 layers of attention, MLP and norms + the final norm
    vocab, hidden = int(str(tiny_cache.config["vocab_size"])), 64
    layer = 4 * hidden * hidden + 3 * hidden * 4 * hidden + 2 * hidden
    assert identity["parameter_count"] == vocab * hidden + 2 * layer + hidden
    assert engine.version() == __import__("mlx_lm").__version__
    assert engine.conditions() == {}


def test_same_seed_same_text_and_positive_figures(tiny_cache: TinyMlxModel) -> None:
    with MlxEngine().load(target_of(tiny_cache)) as session:
        first = session.generate(PROMPT, max_tokens=8, seed=7)
        second = session.generate(PROMPT, max_tokens=8, seed=7)
    assert first.text == second.text
    assert first.text != ""
    assert first.prompt_tokens == second.prompt_tokens > 5
    assert 1 <= first.gen_tokens <= 8
    for measured in (first, second):
        assert measured.ttft_ms > 0
        assert measured.prompt_tps is not None and measured.prompt_tps > 0
        assert measured.gen_tps is not None and measured.gen_tps > 0
        assert measured.peak_memory_bytes is not None and measured.peak_memory_bytes > 0
    # the first generation after the load carries it (cold); the model stays loaded
    assert first.load_ms > 0
    assert second.load_ms == 0


def test_quantization_from_config(tmp_path: Path) -> None:
    _need_mlx()
    # Only config.json says 4-bit: mlx-lm quantizes no layer whose weights lack scales.
    files = model_files(quantization={"bits": 4, "group_size": 64})
    model = add_tiny_mlx_model(tmp_path / "hub", "org/tiny-4bit", files=files)
    with MlxEngine().load(target_of(model)) as session:
        identity = session.loaded.identity
    assert identity["quantization"] == "4-bit (group size 64)"
    assert identity["parameter_size"].endswith("K")


def test_not_installed(tmp_path: Path) -> None:
    _need_mlx()
    target = BenchTarget("t", "hf://org/absent", "", path=tmp_path / "absent")
    with pytest.raises(EngineError) as caught, MlxEngine().load(target):
        pass
    assert str(caught.value) == "hf://org/absent is not installed here: run mlx apply first"


def test_gguf_only_repo_is_not_an_mlx_model(tmp_path: Path) -> None:
    revision = add_revision(
        tmp_path / "hub", "org/tiny-GGUF", {"model.Q4_K_M.gguf": b"GGUF" + bytes(64)}
    )
    target = BenchTarget(
        "g", "hf://org/tiny-GGUF", "", path=revision.snapshot_dir, revision=revision.commit
    )
    _need_mlx()
    with pytest.raises(EngineError) as caught, MlxEngine().load(target):
        pass
    assert str(caught.value) == ("hf://org/tiny-GGUF is not an MLX model: it has no config.json")


def test_pytorch_only_repo_is_not_an_mlx_model(tmp_path: Path) -> None:
    files = {"config.json": b"{}", "pytorch_model.bin": bytes(64)}
    revision = add_revision(tmp_path / "hub", "org/tiny-pt", files)
    target = BenchTarget("p", "hf://org/tiny-pt", "", path=revision.snapshot_dir)
    _need_mlx()
    with pytest.raises(EngineError) as caught, MlxEngine().load(target):
        pass
    assert str(caught.value) == (
        "hf://org/tiny-pt is not an MLX model: no weights, no model*.safetensors"
    )


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # None in sys.modules makes `import mlx_lm` raise ImportError, as when not installed.
    monkeypatch.setitem(sys.modules, "mlx_lm", None)
    target = BenchTarget("t", "hf://org/repo", "", path=tmp_path)
    engine = MlxEngine()
    with pytest.raises(EngineError) as caught, engine.load(target):
        pass
    assert str(caught.value) == MISSING_EXTRA
    assert "uv sync --extra mlx" in MISSING_EXTRA
    with pytest.raises(EngineError, match="mlx extra"):
        engine.version()


def test_other_modules_do_not_import_mlx() -> None:
    import subprocess

    code = (
        "import sys, mlxstate.bench.engines.mlx, mlxstate.bench.runner, mlxstate.cli.bench; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlx', 'mlx_lm')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_model_files_are_deterministic() -> None:
    _need_mlx()
    assert model_files(seed=3) == model_files(seed=3)


E2E_PROMPTS = ["Say hello to the disks.", "Write one line about local models."]


def _install(model: TinyMlxModel) -> Path:
    """Copy the session's model into this test's HF cache (relative links copied as links)."""
    repo = model.revision.repo_dir
    shutil.copytree(repo, hf_dir() / repo.name, symlinks=True)
    return hf_dir() / repo.name / "snapshots" / model.commit


def _bench_run(capsys: pytest.CaptureFixture[str], spec: Path, *args: str) -> tuple[int, Any]:
    result = mlx(capsys, "bench", "run", "--json", "-f", str(spec), *args, seams=SEAMS)
    assert "Traceback" not in result.err
    return result.code, json.loads(result.out)


def test_bench_run_end_to_end(
    capsys: pytest.CaptureFixture[str], tiny_cache: TinyMlxModel, tmp_path: Path
) -> None:
    _install(tiny_cache)
    spec = write_bench_spec(
        tmp_path / "mlx.yaml",
        {"tiny": f"hf://{tiny_cache.repo_id}"},
        {"smoke": ["tiny"]},
        runs=2,
        warmup=1,
        max_tokens=8,
        prompts=E2E_PROMPTS,
    )

    code, doc = _bench_run(capsys, spec, "smoke")

    assert code == 0
    (run,) = doc["runs"]
    assert (run["status"], run["engine"], run["model"], run["benchmark"]) == (
        "ok",
        "mlx",
        "tiny",
        "smoke",
    )
    assert run["source"] == f"hf://{tiny_cache.repo_id}"
    assert run["engine_version"] == __import__("mlx_lm").__version__
    assert run["identity"]["revision"] == tiny_cache.commit
    assert run["identity"]["context_length"] == CONTEXT_LENGTH
    assert (run["settings"]["runs"], run["settings"]["warmup"]) == (2, 1)
    assert run["settings"]["max_tokens"] == 8
    samples = run["samples"]
    # the first warm-up follows the load: kept as the cold sample; then 2 runs per prompt
    assert [s["prompt_index"] for s in samples] == [0, 0, 0, 1, 1]
    assert samples[0]["load_ms"] > 0
    assert [s["load_ms"] for s in samples[1:]] == [0.0] * 4
    for sample in samples:
        assert sample["ttft_ms"] > 0 and sample["prompt_tokens"] > 0
        assert 1 <= sample["gen_tokens"] <= 8
        assert sample["gen_tps"] > 0 and sample["prompt_tps"] > 0
        assert sample["peak_memory_bytes"] > 0
    # greedy and seeded: a prompt's runs generate the same number of tokens
    assert samples[1]["gen_tokens"] == samples[2]["gen_tokens"]
    assert run["summary"]["gen_tps"]["median"] > 0

    history = mlx(capsys, "bench", "history", "--json", "-f", str(spec), seams=SEAMS)
    assert history.code == 0
    assert [r["id"] for r in json.loads(history.out)["runs"]] == [run["id"]]


def test_bench_run_gguf_repo_fails_that_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _need_mlx()
    add_revision(hf_dir(), "org/tiny-GGUF", {"tiny.Q4_K_M.gguf": b"GGUF" + bytes(64)})
    spec = write_bench_spec(
        tmp_path / "mlx.yaml", {"g": "hf://org/tiny-GGUF"}, {"smoke": ["g"]}, prompts=["hi"]
    )

    code, doc = _bench_run(capsys, spec)

    assert code == 1
    (run,) = doc["runs"]
    assert (run["status"], run["reason"]) == (
        "failed",
        "hf://org/tiny-GGUF is not an MLX model: it has no config.json",
    )


def test_bench_run_without_the_extra_names_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    add_revision(hf_dir(), "org/tiny", {"config.json": b"{}", "model.safetensors": b"w"})
    spec = write_bench_spec(
        tmp_path / "mlx.yaml", {"t": "hf://org/tiny"}, {"smoke": ["t"]}, prompts=["hi"]
    )
    monkeypatch.setitem(sys.modules, "mlx_lm", None)  # as if the extra were not installed

    code, doc = _bench_run(capsys, spec)

    assert code == 1
    (run,) = doc["runs"]
    assert (run["status"], run["reason"]) == ("failed", MISSING_EXTRA)


def _config(change: dict[str, object]) -> Callable[[dict[str, bytes]], None]:
    def edit(files: dict[str, bytes]) -> None:
        files["config.json"] = json.dumps({**json.loads(files["config.json"]), **change}).encode()

    return edit


@pytest.mark.parametrize(
    ("spoil", "said"),
    [
        (lambda f: f.update({"model.safetensors": f["model.safetensors"][:200]}), "JSON header"),
        (lambda f: f.update({"model.safetensors": b"\xff" * 100}), "json header length"),
        (lambda f: f.update({"config.json": b"[1, 2]"}), "'list' object"),
        (_config({"model_type": "frobnicator"}), "Model type frobnicator not supported."),
    ],
)
def test_a_broken_snapshot_fails_the_run_with_one_line(
    tmp_path: Path, spoil: Callable[[dict[str, bytes]], None], said: str
) -> None:
    _need_mlx()
    files = model_files()
    spoil(files)
    revision = add_revision(tmp_path / "hub", "org/broken", files)
    target = BenchTarget("b", "hf://org/broken", "", path=revision.snapshot_dir)
    with pytest.raises(EngineError) as caught, MlxEngine().load(target):
        pass
    message = str(caught.value)
    assert message.startswith("mlx-lm cannot load hf://org/broken: ") and said in message
    assert "\n" not in message


def test_an_error_while_generating_fails_the_run(
    tiny_cache: TinyMlxModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mlx_lm

    def broken(*_: object, **__: object) -> Iterator[object]:
        raise RuntimeError("[metal::malloc] out of memory\nmore detail")
        yield  # a generator, as stream_generate

    with MlxEngine().load(target_of(tiny_cache)) as session:
        monkeypatch.setattr(mlx_lm, "stream_generate", broken)
        with pytest.raises(EngineError) as caught:
            session.generate(PROMPT, max_tokens=4, seed=1)
    assert str(caught.value) == "mlx-lm failed to generate: [metal::malloc] out of memory"
