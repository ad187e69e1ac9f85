"""`mlx bench run` and the runner against the fake Ollama and built stores: the records,
their figures, skips and failures, the lock, the --json document and the exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from mlxstate.apply.lock import apply_lock
from mlxstate.bench.engines.base import Engine, EngineError, Measurement
from mlxstate.bench.history import query_runs
from mlxstate.bench.prompts import prompts_sha256, standard_prompts
from mlxstate.bench.runner import run_benchmarks, skipped_run
from mlxstate.registry import Registry
from tests.builders import hf_cache, ollama_store
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import dead_url, hf_dir, mlx, state_dir
from tests.helpers.bench_run import (
    CONDITIONS,
    SEAMS,
    RecordingEngine,
    bench_session,
    expected_gen_tps,
    expected_prompt_tps,
    write_bench_spec,
)

PROMPTS = ["hello there", "write a haiku about disks", "why is the sky blue"]
MODELS = {
    "qwen": "ollama://qwen2.5:7b",
    "absent": "ollama://llama3:8b",
    "mlx-small": "hf://mlx-community/tiny-4bit",
}


def _spec(tmp_path: Path, **kwargs: Any) -> Path:
    kwargs.setdefault("prompts", PROMPTS)
    return write_bench_spec(
        tmp_path / "mlx.yaml", MODELS, {"nightly": ["qwen", "absent", "mlx-small"]}, **kwargs
    )


def _bench(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    result = mlx(capsys, "bench", "run", "--json", *args, seams=SEAMS)
    assert "Traceback" not in result.err, result.err
    return result.code, json.loads(result.out) if result.out else {}, result.err


def test_run_records_the_counters_and_keeps_the_cold_run_out(
    capsys: pytest.CaptureFixture[str], ollama_server: FakeOllama, tmp_path: Path
) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    spec = _spec(tmp_path, runs=3, warmup=1, max_tokens=4)

    code, doc, _ = _bench(capsys, "nightly", "-f", str(spec))

    assert code == 0 and doc["format_version"] == "1"
    qwen, absent, small = doc["runs"]
    assert (qwen["status"], qwen["engine"], qwen["model"], qwen["benchmark"]) == (
        "ok",
        "ollama",
        "qwen",
        "nightly",
    )
    assert qwen["engine_version"] == ollama_server.version
    assert qwen["settings"] == {
        "runs": 3,
        "warmup": 1,
        "max_tokens": 4,
        "prompts_sha256": prompts_sha256(PROMPTS),
        "prompts": "custom",
        "seed": 42,
        "temperature": 0.0,
    }
    samples = qwen["samples"]
    # 3 measured per prompt, plus the warm-up that loaded the model (cold, kept as a sample)
    assert [s["prompt_index"] for s in samples] == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert [s["load_ms"] for s in samples] == [250.0] + [0.0] * 9
    assert {s["gen_tps"] for s in samples} == {round(expected_gen_tps(ollama_server), 3)}
    assert [s["prompt_tokens"] for s in samples[1:]] == [2] * 3 + [5] * 3 + [5] * 3
    assert qwen["summary"]["gen_tps"]["median"] == expected_gen_tps(ollama_server)
    assert qwen["summary"]["prompt_tps"]["median"] == expected_prompt_tps(ollama_server)
    assert qwen["identity"]["quantization"] == "Q4_K_M"
    assert qwen["conditions"]["memory_pressure"] == CONDITIONS.memory_pressure
    assert qwen["conditions"]["ollama_loaded"] == []
    assert set(qwen["host"]) == {"name", "os", "arch", "cpu", "memory_bytes"}
    # Never downloaded: models not present are skipped with the reason.
    assert (absent["status"], absent["samples"]) == ("skipped", [])
    assert absent["reason"] == "llama3:8b is not installed in Ollama (run `mlx apply`)"
    assert (small["status"], small["engine"]) == ("skipped", "mlx")
    assert "is not in the Hugging Face cache" in small["reason"]
    assert ollama_server.count("POST", "/api/pull") == 0
    # 3 prompts x (1 warm-up + 3 runs): nothing more was generated
    assert ollama_server.count("POST", "/api/generate") == 12

    with Registry.open(state_dir()) as registry:
        saved = query_runs(registry, model="qwen")
    assert len(saved) == 1 and saved[0].id == qwen["id"] and len(saved[0].samples) == 10
    assert saved[0].document()["summary"] == qwen["summary"]


def test_cached_prompts_and_a_cold_measured_run(
    capsys: pytest.CaptureFixture[str], ollama_server: FakeOllama, tmp_path: Path
) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    ollama_server.prompt_cache = True
    spec = _spec(tmp_path, runs=2, warmup=0)

    code, doc, _ = _bench(capsys, "nightly", "-f", str(spec))

    assert code == 0
    samples = doc["runs"][0]["samples"]
    assert samples[0]["load_ms"] == 250.0  # no warm-up: the first measured run is cold
    assert [s["prompt_tps"] is None for s in samples] == [False, True] * 3  # 2nd: cached
    summary = doc["runs"][0]["summary"]
    # Warm samples only: the cold one is out; cached prompts have no prompt rate.
    assert summary["prompt_tps"] == {
        "median": expected_prompt_tps(ollama_server),
        "mad": 0.0,
        "min": expected_prompt_tps(ollama_server),
        "max": expected_prompt_tps(ollama_server),
        "p95": expected_prompt_tps(ollama_server),
    }


def test_daemon_down_fails_that_run_and_the_others_go_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ollama_store.add_model(Path(str(tmp_path / "unused")), "x:1")  # another store: unused
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    from tests.helpers import ollama_dir

    ollama_store.add_model(ollama_dir(), "qwen2.5:7b")
    spec = _spec(tmp_path)

    code, doc, _ = _bench(capsys, "-f", str(spec))

    assert code == 1
    assert [r["status"] for r in doc["runs"]] == ["failed", "skipped", "skipped"]
    assert doc["runs"][0]["reason"].startswith("Ollama is not running at http://127.0.0.1:")
    with Registry.open(state_dir()) as registry:
        assert [r.status for r in query_runs(registry)] == ["failed", "skipped", "skipped"]


def test_error_mid_stream_is_a_failed_run(
    capsys: pytest.CaptureFixture[str], ollama_server: FakeOllama, tmp_path: Path
) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    ollama_server.generate_error_after = 1
    result = mlx(capsys, "bench", "run", "-f", str(_spec(tmp_path)), seams=SEAMS)
    assert result.code == 1
    assert f"qwen: failed: Ollama: {ollama_server.generate_error_message}\n" in result.out


def test_model_option_uses_the_default_settings_and_standard_prompts(
    capsys: pytest.CaptureFixture[str], ollama_server: FakeOllama, tmp_path: Path
) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    ollama_server.generate_tokens = 2
    code, doc, _ = _bench(capsys, "--model", "qwen", "-f", str(_spec(tmp_path)))
    assert code == 0
    (run,) = doc["runs"]
    assert (run["benchmark"], run["status"]) == ("", "ok")
    assert run["settings"]["prompts"] == "standard-v1"
    assert run["settings"]["prompts_sha256"] == prompts_sha256(standard_prompts())
    assert (run["settings"]["runs"], run["settings"]["warmup"]) == (5, 1)
    assert run["settings"]["max_tokens"] == 128
    assert len(run["samples"]) == 10 * 5 + 1  # plus the cold warm-up
    assert ollama_server.count("POST", "/api/generate") == 10 * 6


def test_unknown_names_are_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], ollama_server: FakeOllama, tmp_path: Path
) -> None:
    spec = str(_spec(tmp_path))
    result = mlx(capsys, "bench", "run", "weekly", "-f", spec)
    assert result.code == 1 and result.out == ""
    first = result.err.splitlines()[0]
    assert first.endswith(f"no benchmark 'weekly' in {spec} (known: nightly)")
    result = mlx(capsys, "bench", "run", "--model", "nope", "-f", spec)
    assert result.code == 1 and "no model 'nope' in" in result.err
    assert ollama_server.count("POST", "/api/generate") == 0


def test_lock_busy(
    capsys: pytest.CaptureFixture[str], ollama_server: FakeOllama, tmp_path: Path
) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    spec = str(_spec(tmp_path))
    with apply_lock(state_dir()):
        result = mlx(capsys, "bench", "run", "--lock-timeout", "0", "-f", spec)
    assert result.code == 1 and "another mlx apply is running" in result.err
    assert ollama_server.count("POST", "/api/generate") == 0


def test_results_table(
    capsys: pytest.CaptureFixture[str], ollama_server: FakeOllama, tmp_path: Path
) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    result = mlx(capsys, "bench", "run", "-f", str(_spec(tmp_path)), seams=SEAMS)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == [
        "model", "engine", "gen", "tok/s", "p95", "prompt", "tok/s", "TTFT", "load", "status"
    ]  # fmt: skip
    qwen = lines[1].split()
    assert qwen[:6] == ["qwen", "ollama", "50.0", "±", "0.0", "50.0"]
    assert qwen[6] == "500.0" and "0.25" in qwen and qwen[-1] == "ok"
    assert "absent: skipped: llama3:8b is not installed in Ollama" in result.out


def test_skipped_run_is_a_record_not_saved(ollama_server: FakeOllama, tmp_path: Path) -> None:
    session, loaded = bench_session(_spec(tmp_path))
    record = skipped_run(session, loaded, "nightly", "qwen", "schedule", "on battery")
    assert (record.status, record.reason, record.trigger) == ("skipped", "on battery", "schedule")
    assert record.settings.prompts_sha256 == prompts_sha256(PROMPTS)
    with Registry.open(state_dir()) as registry:
        assert query_runs(registry) == []


def test_runner_api_without_recording(ollama_server: FakeOllama, tmp_path: Path) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    session, loaded = bench_session(_spec(tmp_path))
    records = run_benchmarks(session, loaded, models=["qwen"], record=False, trigger="catch-up")
    assert [(r.status, r.trigger) for r in records] == [("ok", "catch-up")]
    with Registry.open(state_dir()) as registry:
        assert query_runs(registry) == []


def test_hf_model_runs_from_its_cached_snapshot(ollama_server: FakeOllama, tmp_path: Path) -> None:
    cached = hf_cache.add_revision(
        hf_dir(), "mlx-community/tiny-4bit", {"config.json": b"{}", "model.safetensors": b"w"}
    )
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    session, loaded = bench_session(_spec(tmp_path, runs=2, warmup=1))
    engine = RecordingEngine()

    def factory(name: str) -> Engine:
        if name == "ollama":  # a failing engine fails its run; the others go on
            raise EngineError("no Ollama here")
        return engine

    qwen, absent, small = run_benchmarks(session, loaded, engines=factory)

    assert (qwen.status, qwen.reason, absent.status) == ("failed", "no Ollama here", "skipped")
    assert (small.status, small.engine, small.engine_version) == ("ok", "mlx", "0.0-test")
    (target,) = engine.targets
    assert target.path == cached.snapshot_dir and target.revision == cached.commit
    assert small.identity["revision"] == cached.commit
    assert engine.prompts == [p for p in PROMPTS for _ in range(3)]  # 1 warm-up + 2 runs
    assert len(small.samples) == 6 and small.samples[0].peak_memory_bytes == 1 << 20


def test_missing_extra_fails_only_that_run(ollama_server: FakeOllama, tmp_path: Path) -> None:
    hf_cache.add_revision(hf_dir(), "mlx-community/tiny-4bit", {"config.json": b"{}"})
    session, loaded = bench_session(_spec(tmp_path))
    engine = RecordingEngine(fail="hf:// models run with mlx-lm; install the extra")
    (record,) = run_benchmarks(session, loaded, models=["mlx-small"], engines=lambda _: engine)
    assert (record.status, record.reason) == ("failed", engine.fail)


class _InfiniteRates(RecordingEngine):
    def generate(self, prompt: str, *, max_tokens: int, seed: int) -> Measurement:
        return Measurement(10.0, 3, float("inf"), max_tokens, float("nan"))


def test_non_finite_rates_of_an_engine_are_unknown(
    ollama_server: FakeOllama, tmp_path: Path
) -> None:
    hf_cache.add_revision(hf_dir(), "mlx-community/tiny-4bit", {"config.json": b"{}"})
    session, loaded = bench_session(_spec(tmp_path))
    (record,) = run_benchmarks(
        session, loaded, models=["mlx-small"], engines=lambda _: _InfiniteRates()
    )
    assert record.status == "ok" and record.samples
    assert {(s.gen_tps, s.prompt_tps) for s in record.samples} == {(None, None)}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_names_model_prompt_and_run_on_a_terminal_only() -> None:
    """What the progress line says while a benchmark runs (it draws on a terminal only)."""
    from mlxstate.cli.bench import _Progress

    screen = _Terminal()
    with _Progress(screen, no_color=True, enabled=True) as progress:
        progress.model_started("nightly", "qwen", prompts=3, runs=5)
        progress.generation(1, 1, warmup=True)
        progress._bar.refresh()
        warm = screen.getvalue()
        progress.generation(2, 4, warmup=False)
        progress._bar.refresh()
    assert "nightly/qwen  prompt 1/3  warm-up" in warm
    assert "nightly/qwen  prompt 2/3  run 4/5" in screen.getvalue()
    piped = io.StringIO()  # a pipe or a log file: nothing but the results
    with _Progress(piped, no_color=True, enabled=True) as progress:
        progress.model_started("", "qwen", prompts=3, runs=5)
        progress.generation(1, 1, warmup=False)
    assert piped.getvalue() == ""
