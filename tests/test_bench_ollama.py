"""The Ollama benchmark engine against the loopback fake Ollama: figures are the fake's
counters exactly; cold, cached-prompt and failure cases."""

from __future__ import annotations

import json

import pytest

from mlxstate.bench.engines.base import BenchTarget, EngineError
from mlxstate.bench.engines.ollama import KEEP_ALIVE, OllamaEngine
from tests.builders import ollama_store
from tests.fakes.ollama_server import FakeOllama, fake_tokens
from tests.helpers import dead_url
from tests.helpers.bench_run import expected_gen_tps, expected_prompt_tps, fast_fake

PROMPT = "why is the sky blue on a clear day"


def _target(name: str = "qwen2.5:7b") -> BenchTarget:
    return BenchTarget("qwen", f"ollama://{name}", name)


def test_figures_are_the_counters_and_the_first_run_is_cold(ollama_server: FakeOllama) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    fast_fake(ollama_server, eval_ns=12_500_000, prompt_ns=1_250_000)  # 80 and 800 tok/s
    engine = OllamaEngine(ollama_server.url)

    with engine.load(_target()) as session:
        cold = session.generate(PROMPT, max_tokens=6, seed=7)
        warm = session.generate(PROMPT, max_tokens=6, seed=7)

    assert (cold.load_ms, warm.load_ms) == (250.0, 0.0)
    for got in (cold, warm):
        assert got.gen_tokens == 6 and got.prompt_tokens == len(PROMPT.split())
        assert got.gen_tps == pytest.approx(expected_gen_tps(ollama_server), rel=1e-12)
        assert got.prompt_tps == pytest.approx(expected_prompt_tps(ollama_server), rel=1e-12)
        assert got.text == "".join(fake_tokens("qwen2.5:7b", PROMPT, 6))
        assert got.ttft_ms > 0
    body = json.loads(ollama_server.requests[-1].body)
    assert body["options"] == {"temperature": 0, "seed": 7, "num_predict": 6}
    assert (body["stream"], body["keep_alive"]) == (True, KEEP_ALIVE)


def test_identity_version_and_other_loaded_models(ollama_server: FakeOllama) -> None:
    models = ollama_server.models_dir
    info = ollama_store.add_model(models, "qwen2.5:7b")
    ollama_store.add_model(models, "llama3:8b")
    ollama_server.set_running("llama3:8b", size_vram=123)
    ollama_server.set_running("qwen2.5:7b")
    engine = OllamaEngine(ollama_server.url)

    assert engine.version() == ollama_server.version
    with engine.load(_target()) as session:
        conditions = engine.conditions()
    assert session.loaded.identity == {
        "digest": info.digest,
        "format": "gguf",
        "family": "llama",
        "quantization": "Q4_K_M",
        "parameter_size": "7B",
        "context_length": ollama_server.context_length,
    }
    (other,) = conditions["ollama_loaded"]  # the model measured is not "another model"
    assert (other["name"], other["size_vram"]) == ("llama3:8b", 123)


def test_cached_prompt_has_no_prompt_rate(ollama_server: FakeOllama) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    ollama_server.prompt_cache = True
    with OllamaEngine(ollama_server.url).load(_target()) as session:
        first = session.generate(PROMPT, max_tokens=3, seed=1)
        again = session.generate(PROMPT, max_tokens=3, seed=1)
        other = session.generate("a different prompt", max_tokens=3, seed=1)
    assert first.prompt_tps is not None and first.prompt_tokens > 0
    assert (again.prompt_tokens, again.prompt_tps) == (0, None)  # cached: not measured
    assert again.gen_tps == pytest.approx(expected_gen_tps(ollama_server))
    assert other.prompt_tokens == 3


def test_real_delays_show_in_time_to_first_token(ollama_server: FakeOllama) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    ollama_server.generate_first_delay = 0.05
    with OllamaEngine(ollama_server.url).load(_target()) as session:
        got = session.generate(PROMPT, max_tokens=2, seed=1)
    assert got.ttft_ms >= 50  # the fake slept that long before the first token


def test_daemon_down_is_one_actionable_line() -> None:
    url = dead_url()
    with pytest.raises(EngineError) as caught, OllamaEngine(url).load(_target()):
        pass
    assert str(caught.value) == (
        f"Ollama is not running at {url}; start it (`ollama serve`, or open the Ollama app) "
        "and run the benchmark again"
    )
    assert OllamaEngine(url).version() is None


def test_model_missing_is_404(ollama_server: FakeOllama) -> None:
    with pytest.raises(EngineError) as caught, OllamaEngine(ollama_server.url).load(_target()):
        pass
    assert str(caught.value) == (
        f"model qwen2.5:7b is not in Ollama at {ollama_server.url}; install it with `mlx apply`"
    )


def test_error_line_mid_stream_and_http_errors(ollama_server: FakeOllama) -> None:
    ollama_store.add_model(ollama_server.models_dir, "qwen2.5:7b")
    ollama_server.generate_error_after = 2
    with OllamaEngine(ollama_server.url).load(_target()) as session:
        with pytest.raises(EngineError) as caught:
            session.generate(PROMPT, max_tokens=5, seed=1)
        assert str(caught.value) == f"Ollama: {ollama_server.generate_error_message}"
        ollama_server.generate_error_after = None
        ollama_server.fail("/api/generate", 500, times=1, message="llama runner crashed")
        with pytest.raises(EngineError) as crashed:
            session.generate(PROMPT, max_tokens=5, seed=1)
        assert str(crashed.value) == "Ollama answered HTTP 500: llama runner crashed"
        ollama_server.drop("/api/generate", after_bytes=40)
        with pytest.raises(EngineError, match="lost the connection to Ollama"):
            session.generate(PROMPT, max_tokens=5, seed=1)
