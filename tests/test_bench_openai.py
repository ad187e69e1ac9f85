"""The OpenAI-compatible engine against a loopback server speaking the streaming API."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlxstate.bench.engines.base import BenchTarget, EngineError
from mlxstate.bench.engines.openai import OpenAIEngine
from tests.builders import hf_cache, ollama_store
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import hf_dir, mlx
from tests.helpers.bench_run import SEAMS, write_bench_spec


@pytest.fixture(name="server")
def server_fixture() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(["mlx-community/Qwen2.5-0.5B-Instruct-4bit"]) as fake:
        yield fake


def _target(ref: str = "mlx-community/Qwen2.5-0.5B-Instruct-4bit") -> BenchTarget:
    return BenchTarget("qwen", f"hf://{ref}", ref)


def test_counts_come_from_usage_and_rates_from_the_stream(server: FakeOpenAI) -> None:
    server.token_delay = 0.01  # 10 ms between tokens: at most 100 tok/s on the wall clock
    engine = OpenAIEngine(server.url)
    with engine.load(_target()) as session:
        m = session.generate("say four words please", max_tokens=6, seed=1)
    assert (m.prompt_tokens, m.gen_tokens) == (4, 6)
    assert m.gen_tps is not None and 0 < m.gen_tps <= 100
    assert m.prompt_tps is not None and m.prompt_tps > 0 and m.ttft_ms > 0
    assert len(m.text.split()) == 6
    sent = json.loads(next(r for r in server.requests if r.path == "/v1/chat/completions").body)
    assert (sent["temperature"], sent["seed"], sent["max_tokens"]) == (0, 1, 6)
    assert sent["stream_options"] == {"include_usage": True} and sent["stream"] is True
    assert engine.version() is None  # not llama-server: no standard version


def test_llama_server_timings_are_believed(server: FakeOpenAI) -> None:
    server.llama_server = "b4567-abcdef"
    engine = OpenAIEngine(server.url + "/v1/")
    with engine.load(_target()) as session:
        m = session.generate("hello there", max_tokens=3, seed=7)
    assert (m.gen_tps, m.prompt_tps) == (50.0, 400.0)
    assert engine.version() == "b4567-abcdef"


def test_no_usage_counts_deltas(server: FakeOpenAI) -> None:
    server.send_usage = False
    with OpenAIEngine(server.url).load(_target()) as session:
        m = session.generate("hello", max_tokens=5, seed=1)
    assert (m.gen_tokens, m.prompt_tokens, m.prompt_tps) == (5, 0, None)


def test_model_matched_by_repo_name_or_case(server: FakeOpenAI) -> None:
    engine = OpenAIEngine(server.url)
    with engine.load(_target("MLX-Community/qwen2.5-0.5b-instruct-4bit")) as session:
        assert session.model == "mlx-community/Qwen2.5-0.5B-Instruct-4bit"
    with engine.load(_target("Qwen2.5-0.5B-Instruct-4bit")) as session:
        assert session.loaded.identity["served_as"] == session.model


def test_model_not_served_is_one_line(server: FakeOpenAI) -> None:
    with (
        pytest.raises(EngineError, match=r"does not serve org/other \(it serves: mlx-community"),
        OpenAIEngine(server.url).load(_target("org/other")),
    ):
        pass


def test_error_event_mid_stream(server: FakeOpenAI) -> None:
    server.error_after = 2
    with (
        OpenAIEngine(server.url).load(_target()) as session,
        pytest.raises(EngineError, match="the server: the model crashed"),
    ):
        session.generate("hello", max_tokens=5, seed=1)


def test_server_down() -> None:
    with FakeOpenAI([]) as gone:
        url = gone.url
    with pytest.raises(EngineError, match=r"no server answers at http://127\.0\.0\.1:\d+/v1"):
        OpenAIEngine(url).models()


def test_bench_run_on_an_endpoint(
    capsys: pytest.CaptureFixture[str], server: FakeOpenAI, tmp_path: Path
) -> None:
    """`--endpoint`: the installed models run on the server; a model not installed is still
    skipped (nothing is fetched), and one the server does not serve fails with its name."""
    server.llama_server = "b4567"
    ollama_store.add_model(Path(os.environ["OLLAMA_MODELS"]), "qwen2.5:7b")
    server.models.append("qwen2.5:7b")
    hf_cache.add_revision(
        hf_dir(), "mlx-community/Qwen2.5-0.5B-Instruct-4bit", {"config.json": b"{}"}
    )
    spec = write_bench_spec(
        tmp_path / "mlx.yaml",
        {
            "qwen": "ollama://qwen2.5:7b",
            "small": "hf://mlx-community/Qwen2.5-0.5B-Instruct-4bit",
            "absent": "ollama://llama3:8b",
        },
        {"nightly": ["qwen", "small", "absent"]},
        runs=2,
        warmup=0,
        prompts=["hello there"],
    )
    result = mlx(
        capsys, "bench", "run", "--json", "--endpoint", server.url, "-f", str(spec), seams=SEAMS
    )
    assert result.code == 0, result.err
    runs = {r["model"]: r for r in json.loads(result.out)["runs"]}
    assert [runs[m]["status"] for m in ("qwen", "small", "absent")] == ["ok", "ok", "skipped"]
    assert runs["qwen"]["engine"] == "openai" and runs["qwen"]["engine_version"] == "b4567"
    assert runs["small"]["summary"]["gen_tps"]["median"] == 50.0
    assert runs["small"]["identity"]["served_as"] == "mlx-community/Qwen2.5-0.5B-Instruct-4bit"

    server.models.remove("qwen2.5:7b")
    again = mlx(capsys, "bench", "run", "--endpoint", server.url, "-f", str(spec), seams=SEAMS)
    assert again.code == 1 and "does not serve qwen2.5:7b" in again.out + again.err


def test_endpoint_must_be_a_url(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    spec = write_bench_spec(tmp_path / "mlx.yaml", {"q": "ollama://qwen2.5:7b"}, {"b": ["q"]})
    result = mlx(capsys, "bench", "run", "--endpoint", "localhost:1234", "-f", str(spec))
    assert result.code == 1 and "--endpoint 'localhost:1234' is not an http(s) URL" in result.err


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999/v1", "http://h:abc/"])
def test_a_malformed_endpoint_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, url: str
) -> None:
    spec = write_bench_spec(tmp_path / "mlx.yaml", {"q": "ollama://qwen2.5:7b"}, {"n": ["q"]})
    result = mlx(capsys, "bench", "run", "--endpoint", url, "-f", str(spec))
    assert result.code == 1
    assert result.err.startswith(f"error: --endpoint {url!r} is not an http(s) URL")
