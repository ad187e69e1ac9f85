"""Probe the Ollama daemon (optional): reachable? version, running models.

Unreachable is a fact to show, never an error. The ``httpx.Client`` comes in as a
parameter so tests use ``httpx.MockTransport`` or the loopback fake server.
"""

from __future__ import annotations

from typing import Any

from mlxstate._httpx import httpx
from mlxstate.state import OllamaDaemon, RunningModel

__all__ = ["probe_daemon"]

PROBE_TIMEOUT = 0.5  # seconds: a local daemon answers in milliseconds; status must stay fast


def probe_daemon(host: str, client: httpx.Client | None = None) -> OllamaDaemon:
    """Ask ``host`` for ``/api/version`` and ``/api/ps``."""
    own = client is None
    http = client or httpx.Client(timeout=PROBE_TIMEOUT, trust_env=False)
    try:
        version = http.get(f"{host}/api/version")
        version.raise_for_status()
        ps = http.get(f"{host}/api/ps")
        running = _running(ps.json()) if ps.is_success else ()
        return OllamaDaemon(host, True, str(version.json().get("version", "?")), running)
    except httpx.HTTPError as exc:
        return OllamaDaemon(host, False, error=_why(exc))
    except ValueError as exc:  # not JSON: something else listens on that port
        return OllamaDaemon(host, False, error=f"not an Ollama API ({exc})")
    finally:
        if own:
            http.close()


def _running(doc: Any) -> tuple[RunningModel, ...]:
    models = doc.get("models") if isinstance(doc, dict) else None
    out = []
    for m in models or []:
        if isinstance(m, dict):
            out.append(
                RunningModel(
                    name=str(m.get("name", "?")),
                    size=int(m.get("size") or 0),
                    size_vram=int(m.get("size_vram") or 0),
                    expires_at=m.get("expires_at"),
                )
            )
    return tuple(out)


def _why(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused (is `ollama serve` running?)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__
