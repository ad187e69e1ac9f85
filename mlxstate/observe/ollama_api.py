"""Probe the Ollama daemon (optional): reachable? version, running models.

Unreachable is a fact to show, never an error. The ``httpx.Client`` comes in as a
parameter so tests use ``httpx.MockTransport`` or the loopback fake server.
"""

from __future__ import annotations

import json
import time
from typing import Any

from mlxstate._httpx import httpx
from mlxstate.facts import OllamaDaemon, RunningModel
from mlxstate.text import printable

__all__ = ["bounded_get", "probe_daemon", "running_models"]

PROBE_TIMEOUT = 0.5  # seconds: a local daemon answers in milliseconds; status must stay fast
# The timeout above bounds each read, not an answer: a server sending a byte every 0.4 s
# would hold the dashboard, the menu bar and `mlx status` for ever. A whole probe gets this
# long, and an answer this many bytes (/api/ps of a busy daemon is a few kB).
PROBE_DEADLINE = 2.0
MAX_ANSWER = 1024 * 1024


def bounded_get(http: httpx.Client, url: str, deadline: float) -> tuple[httpx.Response, Any]:
    """GET ``url`` and parse its JSON body before the monotonic ``deadline``: the response
    (for its status) and the document. Raises httpx.ReadTimeout past the deadline,
    ValueError for a body too large or not JSON."""
    with http.stream("GET", url) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_ANSWER:
                raise ValueError(f"an answer over {MAX_ANSWER // 1024} kB")
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the answer took too long", request=response.request)
    if not response.is_success:
        return response, None
    return response, json.loads(bytes(body))


def probe_daemon(host: str, client: httpx.Client | None = None) -> OllamaDaemon:
    """Ask ``host`` for ``/api/version`` and ``/api/ps``."""
    own = client is None
    http = client or httpx.Client(timeout=PROBE_TIMEOUT, trust_env=False)
    deadline = time.monotonic() + PROBE_DEADLINE
    try:
        version, doc = bounded_get(http, f"{host}/api/version", deadline)
        version.raise_for_status()
        ps, ps_doc = bounded_get(http, f"{host}/api/ps", deadline)
        running = running_models(ps_doc) if ps.is_success else ()
        said = doc.get("version", "?") if isinstance(doc, dict) else "?"
        return OllamaDaemon(host, True, printable(str(said))[:40], running)
    except httpx.HTTPError as exc:
        return OllamaDaemon(host, False, error=_why(exc))
    except (ValueError, RecursionError) as exc:  # not JSON: something else on that port
        why = "JSON nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:120]
        return OllamaDaemon(host, False, error=f"not an Ollama API ({printable(why)})")
    finally:
        if own:
            http.close()


def running_models(doc: Any) -> tuple[RunningModel, ...]:
    """The models of an ``/api/ps`` answer (anything malformed is left out)."""
    models = doc.get("models") if isinstance(doc, dict) else None
    out = []
    for m in models if isinstance(models, list) else []:
        if isinstance(m, dict):
            expires = m.get("expires_at")
            out.append(
                RunningModel(
                    name=printable(str(m.get("name", "?")))[:200],
                    size=_count(m.get("size")),
                    size_vram=_count(m.get("size_vram")),
                    expires_at=printable(expires)[:60] if isinstance(expires, str) else None,
                    context_length=_count(m.get("context_length")) or None,
                )
            )
    return tuple(out)


_MAX_COUNT = 2**63 - 1  # Ollama's counts are int64: anything bigger is not a real figure


def _count(value: Any) -> int:
    """A byte count from the daemon; anything but a positive int64 is 0."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= _MAX_COUNT:
        return value
    return 0


def _why(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused (is `ollama serve` running?)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__
