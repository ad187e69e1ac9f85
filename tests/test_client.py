"""mlxstate.client against the loopback fake Ollama: results, streams, images for vision
models, embeddings, models, pulls, and every typed error; the async client the same way."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mlxstate._httpx import httpx
from mlxstate._ollama import wire
from mlxstate._ollama.wire import encode_image
from mlxstate.client import (
    AsyncOllamaClient,
    ChatChunk,
    DaemonDown,
    Message,
    ModelNotFound,
    OllamaClient,
    OllamaError,
    PullProgress,
    StreamError,
)
from tests.builders import ollama_store
from tests.fakes.ollama_server import FakeOllama, fake_embedding, fake_tokens
from tests.helpers import dead_url
from tests.helpers.bench_run import expected_gen_tps, expected_prompt_tps, fast_fake

MODEL = "qwen2.5:7b"
VISION = "llava:7b"
PNG = b"\x89PNG\r\n\x1a\n fake picture bytes"
HI = [{"role": "user", "content": "hello there model"}]


def _vision(server: FakeOllama) -> None:
    layers = [("model", ollama_store.fake_gguf(VISION)), ("projector", b"GGUF projector")]
    ollama_store.add_model(server.models_dir, VISION, layers)


def _text(prompt: str, n: int = 8, model: str = MODEL) -> str:
    return "".join(fake_tokens(model, prompt, n))


@pytest.fixture(name="ollama")
def ollama_fixture(ollama_server: FakeOllama) -> FakeOllama:
    ollama_store.add_model(ollama_server.models_dir, MODEL)
    fast_fake(ollama_server, eval_ns=12_500_000, prompt_ns=1_250_000)  # 80 and 800 tok/s
    return ollama_server


def test_generate_carries_the_engine_counters_like_bench(ollama: FakeOllama) -> None:
    with OllamaClient() as client:  # the host comes from $OLLAMA_HOST (the fixture's fake)
        cold = client.generate(MODEL, "why is the sky blue", options={"num_predict": 5})
        warm = client.generate(MODEL, "why is the sky blue", options={"num_predict": 5})

    assert cold.response == _text("why is the sky blue", 5)
    assert (cold.done_reason, cold.eval_count, cold.prompt_eval_count) == ("length", 5, 5)
    assert (cold.eval_duration, cold.load_duration) == (5 * 12_500_000, 250_000_000)
    assert (cold.load_ms, warm.load_ms) == (250.0, 0.0)
    assert warm.gen_tps == pytest.approx(expected_gen_tps(ollama), rel=1e-12)
    assert warm.prompt_tps == pytest.approx(expected_prompt_tps(ollama), rel=1e-12)
    body = json.loads(ollama.requests[-1].body)
    assert body == {
        "model": MODEL,
        "prompt": "why is the sky blue",
        "stream": False,
        "options": {"num_predict": 5},
    }


def test_stream_generate_yields_text_then_a_final_chunk_with_counters(ollama: FakeOllama) -> None:
    chunks = list(OllamaClient(ollama.url).stream_generate(MODEL, "count to three"))

    *pieces, final = chunks
    assert "".join(c.content for c in pieces) == _text("count to three")
    assert all(not c.done and c.gen_tps is None for c in pieces)
    assert final.done and final.eval_count == 8 and final.done_reason == "stop"
    assert final.gen_tps == pytest.approx(80.0)


def test_chat_with_images_as_path_bytes_and_base64_on_a_vision_model(
    ollama: FakeOllama, tmp_path: Path
) -> None:
    _vision(ollama)
    picture = tmp_path / "cat.png"
    picture.write_bytes(PNG)
    other = b"second image"
    message = {
        "role": "user",
        "content": "what is in these pictures",
        "images": [str(picture), other, base64.b64encode(b"third").decode(), picture],
    }

    reply = OllamaClient().chat(VISION, messages=[message])

    assert ollama.images_seen == [PNG, other, b"third", PNG]  # bytes arrived exactly
    assert reply.message.role == "assistant"
    assert reply.message.content == _text("what is in these pictures", model=VISION)
    assert reply.gen_tps == pytest.approx(80.0) and reply.eval_count == 8
    assert message["images"][0] == str(picture)  # the caller's message is not changed


def test_images_on_a_model_without_vision_are_refused_like_ollama(
    ollama: FakeOllama, tmp_path: Path
) -> None:
    picture = tmp_path / "cat.png"
    picture.write_bytes(PNG)
    with pytest.raises(OllamaError) as caught:
        OllamaClient().chat(MODEL, [{"role": "user", "content": "hi", "images": [picture]}])
    assert caught.value.status == 400
    assert caught.value.message == f'Ollama answered HTTP 400: "{MODEL}" does not support vision'
    assert ollama.images_seen == []


def test_generate_takes_images_too(ollama: FakeOllama) -> None:
    _vision(ollama)
    result = OllamaClient().generate(VISION, "caption this", images=[PNG])
    assert result.response == _text("caption this", model=VISION)
    assert ollama.images_seen == [PNG]


@pytest.mark.parametrize("image", ["not an image, not a file", "/no/such/picture.png"])
def test_an_image_that_is_neither_file_nor_base64_fails_before_sending(
    ollama: FakeOllama, image: str
) -> None:
    before = len(ollama.requests)
    with pytest.raises(OllamaError, match=r"is neither a file nor base64 text$"):
        OllamaClient().chat(MODEL, [{"role": "user", "content": "hi", "images": [image]}])
    assert len(ollama.requests) == before


def test_stream_chat_yields_content_chunks(ollama: FakeOllama) -> None:
    chunks = list(OllamaClient().stream_chat(MODEL, HI))
    assert all(isinstance(c, ChatChunk) for c in chunks)
    assert "".join(c.content for c in chunks) == _text("hello there model")
    assert [c.done for c in chunks] == [False] * 8 + [True]
    assert chunks[-1].prompt_eval_count == 3 and chunks[-1].gen_tps == pytest.approx(80.0)


def test_embed_one_text_and_many(ollama: FakeOllama) -> None:
    client = OllamaClient()
    one = client.embed(MODEL, "a sentence to embed")
    many = client.embed(MODEL, ["first", "second text"], dimensions=4)

    assert one.embeddings == (tuple(fake_embedding(MODEL, "a sentence to embed", 8)),)
    assert math.isclose(sum(x * x for x in one.embeddings[0]), 1.0)
    assert (one.prompt_eval_count, one.load_ms, many.load_ms) == (4, 250.0, 0.0)
    assert many.embeddings == tuple(
        tuple(fake_embedding(MODEL, t, 8)[:4]) for t in ("first", "second text")
    )
    assert json.loads(ollama.requests[-1].body)["input"] == ["first", "second text"]


def test_list_ps_show_and_version(ollama: FakeOllama) -> None:
    _vision(ollama)
    client = OllamaClient()
    client.generate(MODEL, "load me")

    listed = {m.name: m for m in client.list()}
    assert set(listed) == {MODEL, VISION}
    assert (
        listed[MODEL].digest
        == ollama_store.parse_manifest(
            ollama.models_dir, ollama_store.manifest_path(ollama.models_dir, MODEL)
        ).digest
    )
    assert listed[MODEL].details.quantization_level == "Q4_K_M"
    assert [m.name for m in client.ps()] == [MODEL]
    assert client.show(VISION).capabilities == ("completion", "vision")
    assert client.show(MODEL).context_length == ollama.context_length
    assert client.version() == ollama.version


def test_pull_reports_progress_and_installs(ollama: FakeOllama) -> None:
    ollama.publish("tiny:1b")
    seen: list[PullProgress] = []

    last = OllamaClient().pull("tiny:1b", progress=seen.append)

    assert last == PullProgress("success") and seen[-1] == last
    assert seen[0].status == "pulling manifest"
    assert any(p.total and p.completed == p.total for p in seen)
    assert "tiny:1b" in {m.name for m in OllamaClient().list()}


def test_a_pull_error_line_is_a_stream_error(ollama: FakeOllama) -> None:
    with pytest.raises(StreamError, match=r"^Ollama: pull model manifest: file does not exist$"):
        OllamaClient().pull("nowhere:1b")


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.generate("ghost:1b", "hi"),
        lambda c: c.chat("ghost:1b", HI),
        lambda c: list(c.stream_chat("ghost:1b", HI)),
        lambda c: c.embed("ghost:1b", "x"),
        lambda c: c.show("ghost:1b"),
    ],
)
def test_a_missing_model_is_model_not_found(ollama: FakeOllama, call: object) -> None:
    with pytest.raises(ModelNotFound) as caught:
        call(OllamaClient())  # type: ignore[operator]
    assert caught.value.model == "ghost:1b" and caught.value.status == 404
    assert caught.value.message == f"model ghost:1b is not in Ollama at {ollama.url}"


def test_a_dead_daemon_is_daemon_down() -> None:
    url = dead_url()
    with pytest.raises(DaemonDown, match=rf"^Ollama is not running at {url}$"):
        OllamaClient(url).chat(MODEL, HI)
    with pytest.raises(DaemonDown):
        list(OllamaClient(url).stream_generate(MODEL, "hi"))


def test_an_error_line_mid_stream_is_a_stream_error(ollama: FakeOllama) -> None:
    ollama.generate_error_after = 3
    got: list[str] = []
    with pytest.raises(StreamError) as caught:
        for chunk in OllamaClient().stream_chat(MODEL, HI):
            got.append(chunk.content)
    assert caught.value.message == f"Ollama: {ollama.generate_error_message}"
    assert got == fake_tokens(MODEL, "hello there model", 3)


def test_a_stream_that_ends_without_its_final_object_is_a_stream_error() -> None:
    lines = b'{"message":{"role":"assistant","content":"a"},"done":false}\n'
    http = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200, content=lines)))
    client = OllamaClient("http://127.0.0.1:1", http=http)
    with pytest.raises(StreamError, match=r"^the Ollama stream ended before its final object$"):
        list(client.stream_chat(MODEL, HI))


def test_an_endpoint_the_daemon_lacks_says_update() -> None:
    http = httpx.Client(
        transport=httpx.MockTransport(lambda _: httpx.Response(404, text="404 page not found"))
    )
    with pytest.raises(OllamaError, match=r"has no /api/embed; update Ollama$") as caught:
        OllamaClient("127.0.0.1:9", http=http).embed(MODEL, "x")
    assert not isinstance(caught.value, ModelNotFound)


@pytest.mark.parametrize("timeout", [0, -1, math.inf, math.nan])
def test_timeouts_are_finite(timeout: float) -> None:
    with pytest.raises(OllamaError, match=r"^timeout must be a positive number of seconds"):
        OllamaClient("127.0.0.1", timeout=timeout)


def test_a_bad_host_is_one_clear_error() -> None:
    with pytest.raises(OllamaError, match=r"^invalid Ollama host 'ftp://x'"):
        OllamaClient("ftp://x")


# --- async ----------------------------------------------------------------------------------


def test_async_client_chat_stream_embed_and_vision(ollama: FakeOllama, tmp_path: Path) -> None:
    _vision(ollama)
    picture = tmp_path / "cat.png"
    picture.write_bytes(PNG)

    async def run() -> tuple[str, float | None, list[str], int, str]:
        async with AsyncOllamaClient() as client:
            said = await client.chat(
                VISION, [{"role": "user", "content": "describe", "images": [picture]}]
            )
            pieces = [c.content async for c in client.stream_chat(MODEL, HI)]
            vectors = await client.embed(MODEL, ["a", "b", "c"])
            generated = await client.generate(MODEL, "hi there", options={"num_predict": 2})
            return (
                said.message.content,
                said.gen_tps,
                pieces,
                len(vectors.embeddings),
                (generated.response),
            )

    content, tps, pieces, vectors, generated = asyncio.run(run())
    assert content == _text("describe", model=VISION) and tps == pytest.approx(80.0)
    assert ollama.images_seen == [PNG]
    assert "".join(pieces) == _text("hello there model")
    assert (vectors, generated) == (3, _text("hi there", 2))


def test_async_models_and_pull(ollama: FakeOllama) -> None:
    ollama.publish("tiny:1b")

    async def run() -> tuple[str, list[str], tuple[str, ...], str]:
        async with AsyncOllamaClient(ollama.url) as client:
            last = await client.pull("tiny:1b")
            names = sorted(m.name for m in await client.list())
            shown = await client.show("tiny:1b")
            return last.status, names, shown.capabilities, await client.version()

    assert asyncio.run(run()) == ("success", [MODEL, "tiny:1b"], ("completion",), ollama.version)


def test_async_errors_are_typed(ollama: FakeOllama) -> None:
    ollama.generate_error_after = 1

    async def missing() -> None:
        async with AsyncOllamaClient() as client:
            await client.chat("ghost:1b", HI)

    async def broken() -> list[str]:
        got: list[str] = []
        async with AsyncOllamaClient() as client:
            async for chunk in client.stream_generate(MODEL, "hi"):
                got.append(chunk.content)
        return got

    async def down() -> None:
        async with AsyncOllamaClient(dead_url()) as client:
            await client.embed(MODEL, "x")

    with pytest.raises(ModelNotFound):
        asyncio.run(missing())
    with pytest.raises(StreamError, match=r"^Ollama: llama runner process has terminated"):
        asyncio.run(broken())
    with pytest.raises(DaemonDown):
        asyncio.run(down())


def test_message_objects_are_accepted_with_image_paths(ollama: FakeOllama, tmp_path: Path) -> None:
    _vision(ollama)
    picture = tmp_path / "cat.png"
    picture.write_bytes(PNG)
    reply = OllamaClient().chat(VISION, [Message("user", "look", images=(str(picture),))])
    assert reply.message.content == _text("look", model=VISION)
    assert ollama.images_seen == [PNG]


def test_an_endless_line_is_a_stream_error_not_unbounded_memory() -> None:
    def forever() -> Iterator[bytes]:
        while True:
            yield b"x" * 65536

    http = httpx.Client(
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=forever()))
    )
    with pytest.raises(StreamError, match=r"^Ollama sent a line longer than \d+ bytes"):
        list(OllamaClient("127.0.0.1:9", http=http).stream_generate(MODEL, "hi"))


def test_a_final_line_without_newline_still_counts() -> None:
    body = b'{"response":"a","done":false}\n{"response":"","done":true,"eval_count":1}'
    http = httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(200, content=body)))
    chunks = list(OllamaClient("127.0.0.1:9", http=http).stream_generate(MODEL, "hi"))
    assert [c.done for c in chunks] == [False, True] and chunks[-1].eval_count == 1


# --- hostile daemons and inputs -------------------------------------------------------------


def _endless(first: bytes = b"") -> Iterator[bytes]:
    yield first
    while True:
        yield b"<p>" * 21845


def test_an_http_500_with_an_endless_html_page_is_one_bounded_error() -> None:
    http = httpx.Client(
        transport=httpx.MockTransport(
            lambda _: httpx.Response(500, content=_endless(b"<html>oops"))
        )
    )
    client = OllamaClient("127.0.0.1:9", http=http)
    with pytest.raises(OllamaError, match=r"^Ollama answered HTTP 500: <html>oops<p>") as caught:
        client.list()
    assert caught.value.status == 500
    with pytest.raises(OllamaError, match=r"^Ollama answered HTTP 500: <html>oops"):
        list(client.stream_generate(MODEL, "hi"))


def test_an_endless_answer_is_refused_not_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "MAX_ANSWER", 1 << 20)
    http = httpx.Client(
        transport=httpx.MockTransport(lambda _: httpx.Response(200, content=_endless()))
    )
    with pytest.raises(OllamaError, match=r"is larger than 1048576 bytes; not read$"):
        OllamaClient("127.0.0.1:9", http=http).generate(MODEL, "hi")


def test_async_an_endless_answer_is_refused_not_read_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wire, "MAX_ANSWER", 1 << 20)

    async def endless() -> AsyncIterator[bytes]:
        for chunk in _endless():
            yield chunk

    async def go() -> None:
        transport = httpx.MockTransport(lambda _: httpx.Response(200, content=endless()))
        async with AsyncOllamaClient(
            "127.0.0.1:9", http=httpx.AsyncClient(transport=transport)
        ) as c:
            await c.list()

    with pytest.raises(OllamaError, match=r"is larger than 1048576 bytes; not read$"):
        asyncio.run(go())


def test_an_image_that_is_a_fifo_or_an_endless_file_fails_before_sending(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OllamaError, match=r"is not a regular file$"):
        encode_image(fifo)  # a Path: not mistaken for base64, and no hang without a writer
    endless = Path("/proc/self/pagemap")
    if endless.is_file():
        with pytest.raises(OllamaError, match=r"too large to send$"):
            encode_image(endless)  # stat says 0 bytes; reading never ends
