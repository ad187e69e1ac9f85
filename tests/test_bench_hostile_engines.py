"""Engines against hostile servers: streams that never end, absurd counters, odd JSON.
Each is a failed run with one line (EngineError) or an unknown figure, never a hang or a
crash."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from mlxstate.bench.engines.base import EngineError, Loaded
from mlxstate.bench.engines.ollama import OllamaEngine, OllamaSession, measurement
from mlxstate.bench.engines.openai import OpenAIEngine, OpenAISession
from mlxstate.cli.bench import results_table
from tests.helpers.bench import make_run


def _client(lines: Callable[[], Iterator[bytes]]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=lines())

    return httpx.Client(transport=httpx.MockTransport(handler))


def _forever(line: dict[str, object] | str) -> Callable[[], Iterator[bytes]]:
    text = line if isinstance(line, str) else json.dumps(line)
    return lambda: itertools.repeat((text + "\n").encode())


def _ollama(lines: Callable[[], Iterator[bytes]]) -> OllamaSession:
    engine = OllamaEngine("http://ollama.invalid", client=_client(lines))
    return OllamaSession(engine, "qwen:7b", Loaded({}))


def _openai(lines: Callable[[], Iterator[bytes]]) -> OpenAISession:
    engine = OpenAIEngine("http://server.invalid", client=_client(lines))
    return OpenAISession(engine, "qwen", Loaded({}))


@pytest.mark.parametrize(
    "line", [{"response": "x", "done": False}, "", {"response": "", "done": False}]
)
def test_an_ollama_stream_that_never_ends_fails_the_run(line: dict[str, object] | str) -> None:
    session = _ollama(_forever(line))
    with pytest.raises(EngineError, match=r"^Ollama kept streaming past 8 tokens; stopped"):
        session.generate("hi", max_tokens=8, seed=1)


@pytest.mark.parametrize("line", ['data: {"choices": [{"delta": {"content": "x"}}]}', ": ping"])
def test_an_openai_stream_that_never_ends_fails_the_run(line: str) -> None:
    session = _openai(_forever(line))
    with pytest.raises(EngineError, match=r"^the server kept streaming past 8 tokens; stopped"):
        session.generate("hi", max_tokens=8, seed=1)


@pytest.mark.parametrize("huge", [2**64, 10**400])
def test_absurd_ollama_counters_are_unknown_not_a_crash(huge: int) -> None:
    got = measurement(
        {"done": True, "eval_count": huge, "eval_duration": 1, "load_duration": huge}, 0.01
    )
    assert (got.gen_tokens, got.gen_tps, got.load_ms) == (0, None, 0.0)


def test_odd_openai_events_are_ignored_and_infinite_rates_unknown() -> None:
    events = [
        {"choices": 5},
        {"choices": [{"delta": {"content": "a"}}]},
        {"choices": [{"delta": {"content": "b"}}], "timings": {"predicted_per_second": 1e400}},
        {"choices": [], "timings": {"predicted_per_second": 10**400, "prompt_per_second": 1e400}},
    ]

    def lines() -> Iterator[bytes]:
        for event in events:
            yield f"data: {json.dumps(event)}\n\n".encode()
        yield b"data: [DONE]\n\n"

    got = _openai(lines).generate("hi", max_tokens=8, seed=1)
    assert got.text == "ab" and got.gen_tokens == 2
    assert got.gen_tps is None or got.gen_tps < 1e12  # from the wall clock, not "Infinity"
    assert got.prompt_tps is None or got.prompt_tps < 1e12


def test_a_servers_words_reach_the_terminal_escaped() -> None:
    session = _openai(lambda: iter([b"data: \x1b[2J{oops\n\n"]))
    with pytest.raises(EngineError) as caught:
        session.generate("hi", max_tokens=8, seed=1)
    assert "\x1b" not in str(caught.value)
    record = make_run("r1", status="failed", reason="Ollama: \x1b]0;pwned\x07 crashed")
    out = io.StringIO()
    results_table([record], out, no_color=True)
    assert "\x1b" not in out.getvalue() and "\x07" not in out.getvalue()
