"""A fake OpenAI-compatible server (LM Studio, llama-server, mlx_lm.server) on loopback.

Endpoints::

    GET  /v1/models                 {"object": "list", "data": [{"id": ...}]}
    POST /v1/chat/completions       SSE stream: role chunk, one chunk per token, then a
                                    ``usage`` chunk when ``stream_options.include_usage``,
                                    then ``data: [DONE]``; 404 for a model not served
    GET  /props                     {"build_info": ...} when ``llama_server`` is set

Tokens are the words of :func:`tests.fakes.ollama_server.fake_tokens`: ``max_tokens`` of
them. ``token_delay`` sleeps before each token after the first (real wall clock, so rates
are measurable); ``llama_server`` adds llama-server's ``timings`` object with exact rates;
``error_after`` sends an error event in place of token N.
"""

from __future__ import annotations

import json

from tests.fakes._server import Exchange, LoopbackServer
from tests.fakes.ollama_server import fake_tokens

__all__ = ["FakeOpenAI"]


class FakeOpenAI(LoopbackServer):
    def __init__(self, models: list[str], *, port: int = 0) -> None:
        super().__init__(port)
        self.models = list(models)
        self.token_delay = 0.0
        self.first_delay = 0.0
        self.llama_server: str | None = None  # a build string: act as llama-server
        self.prompt_per_second = 400.0
        self.predicted_per_second = 50.0
        self.send_usage = True
        self.error_after: int | None = None

    def handle(self, ex: Exchange) -> None:
        path, method = ex.request.path, ex.method
        if path == "/v1/models" and method == "GET":
            ex.send_json(200, {"object": "list", "data": [{"id": m} for m in self.models]})
        elif path == "/v1/chat/completions" and method == "POST":
            self._chat(ex)
        elif path == "/props" and method == "GET" and self.llama_server:
            ex.send_json(200, {"build_info": self.llama_server})
        else:
            ex.send_json(404, {"error": {"message": f"no route {method} {path}"}})

    def _chat(self, ex: Exchange) -> None:
        body = json.loads(ex.request.body or b"{}")
        model = str(body.get("model") or "")
        if model not in self.models:
            ex.send_json(404, {"error": {"message": f"model '{model}' not found"}})
            return
        prompt = " ".join(str(m.get("content", "")) for m in body.get("messages") or ())
        count = int(body.get("max_tokens") or 16)
        tokens = fake_tokens(model, prompt, count)
        ex.start(200, {"Content-Type": "text/event-stream"}, chunked=True)
        head = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model}
        self._event(ex, {**head, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        for i, token in enumerate(tokens):
            self.pace(self.first_delay if i == 0 else self.token_delay)
            if self.error_after is not None and i == self.error_after:
                self._event(ex, {"error": {"message": "the model crashed"}})
                break
            self._event(ex, {**head, "choices": [{"index": 0, "delta": {"content": token}}]})
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": count}
        final: dict[str, object] = {**head, "choices": [{"index": 0, "delta": {}}]}
        final["choices"][0]["finish_reason"] = "length"  # type: ignore[index]
        self._event(ex, final)
        stream_options = body.get("stream_options") or {}
        if self.send_usage and stream_options.get("include_usage"):
            extra: dict[str, object] = {"usage": {**usage, "total_tokens": sum(usage.values())}}
            if self.llama_server:
                extra["timings"] = {
                    "prompt_n": usage["prompt_tokens"],
                    "prompt_per_second": self.prompt_per_second,
                    "predicted_n": count,
                    "predicted_per_second": self.predicted_per_second,
                }
            self._event(ex, {**head, "choices": [], **extra})
        ex.write_chunk(b"data: [DONE]\n\n")
        ex.end_chunks()

    def pace(self, seconds: float) -> None:
        if seconds > 0:
            self.stopping.wait(seconds)

    @staticmethod
    def _event(ex: Exchange, event: dict[str, object]) -> None:
        ex.write_chunk(b"data: " + json.dumps(event).encode() + b"\n\n")
