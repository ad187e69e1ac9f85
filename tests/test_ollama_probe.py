"""``probe_daemon``: reachable or not, version, running models."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from mlxstate.facts import RunningModel
from mlxstate.observe.ollama_api import probe_daemon
from tests.builders import ollama_store as ob
from tests.fakes.ollama_server import FakeOllama

HOST = "http://127.0.0.1:11434"


def _client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def test_version_and_running_models_are_parsed() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url}")
        if request.url.path == "/api/version":
            return httpx.Response(200, json={"version": "0.33.1"})
        if request.url.path == "/api/ps":
            return httpx.Response(
                200,
                json={
                    "models": [
                        {
                            "name": "qwen2.5:7b",
                            "model": "qwen2.5:7b",
                            "size": 5_000,
                            "size_vram": 4_000,
                            "expires_at": "2030-01-01T00:00:00Z",
                        },
                        {"name": "tiny:1"},  # fields missing: zeros and None
                        "not an object",
                    ]
                },
            )
        return httpx.Response(404)

    with _client(handler) as client:
        daemon = probe_daemon(HOST, client)

    assert seen == [f"GET {HOST}/api/version", f"GET {HOST}/api/ps"]
    assert daemon.reachable and daemon.error is None
    assert (daemon.host, daemon.version) == (HOST, "0.33.1")
    assert daemon.running == (
        RunningModel("qwen2.5:7b", 5_000, 4_000, "2030-01-01T00:00:00Z"),
        RunningModel("tiny:1", 0, 0, None),
    )


def test_failing_ps_still_reachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/version":
            return httpx.Response(200, json={"version": "0.33.0"})
        return httpx.Response(500, json={"error": "boom"})

    with _client(handler) as client:
        daemon = probe_daemon(HOST, client)
    assert daemon.reachable and daemon.version == "0.33.0" and daemon.running == ()


def test_http_500_is_unreachable() -> None:
    with _client(lambda _: httpx.Response(500, json={"error": "internal"})) as client:
        daemon = probe_daemon(HOST, client)
    assert not daemon.reachable
    assert daemon.error is not None and "HTTP 500" in daemon.error
    assert daemon.version is None and daemon.running == ()


def test_connect_error_mentions_ollama_serve() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with _client(handler) as client:
        daemon = probe_daemon(HOST, client)
    assert not daemon.reachable
    assert daemon.error is not None and "ollama serve" in daemon.error


def test_timeout_is_unreachable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with _client(handler) as client:
        daemon = probe_daemon(HOST, client)
    assert not daemon.reachable and daemon.error == "timed out"


def test_non_json_is_unreachable() -> None:
    html = httpx.Response(200, text="<html>some other server</html>")
    with _client(lambda _: html) as client:
        daemon = probe_daemon(HOST, client)
    assert not daemon.reachable
    assert daemon.error is not None and "not an Ollama API" in daemon.error


def test_nothing_listening_without_a_client(ollama_server: FakeOllama) -> None:
    url = ollama_server.url
    ollama_server.stop()  # the port is now closed: a real connection refusal
    daemon = probe_daemon(url)
    assert not daemon.reachable
    assert daemon.error is not None and "ollama serve" in daemon.error


def test_against_the_fake_server(ollama_server: FakeOllama) -> None:
    info = ob.add_model(ollama_server.models_dir, "qwen2.5:7b")
    with httpx.Client() as client:
        idle = probe_daemon(ollama_server.url, client)
        assert idle.reachable and idle.version == "0.33.0" and idle.running == ()

        ollama_server.set_running("qwen2.5:7b", size_vram=1234)
        busy = probe_daemon(ollama_server.url, client)

    assert busy.reachable and busy.error is None
    (running,) = busy.running
    assert (running.name, running.size, running.size_vram) == ("qwen2.5:7b", info.size, 1234)
    assert running.expires_at is not None
    assert ollama_server.count("GET", "/api/version") == 2
    assert ollama_server.count("GET", "/api/ps") == 2
