"""Probe the Ollama daemon (optional): reachable? version, running models.

Unreachable is a fact to show, never an error. The ``httpx.Client`` comes in as a
parameter so tests use ``httpx.MockTransport`` or the loopback fake server.
"""

from __future__ import annotations

from typing import Any

from mlxstate._httpx import httpx
from mlxstate.facts import OllamaDaemon, RunningModel
from mlxstate.text import printable

__all__ = ["probe_daemon", "running_models"]

PROBE_TIMEOUT = 0.5  # seconds: a local daemon answers in milliseconds; status must stay fast


def probe_daemon(host: str, client: httpx.Client | None = None) -> OllamaDaemon:
    """Ask ``host`` for ``/api/version`` and ``/api/ps``."""
    own = client is None
    http = client or httpx.Client(timeout=PROBE_TIMEOUT, trust_env=False)
    try:
        version = http.get(f"{host}/api/version")
        version.raise_for_status()
        ps = http.get(f"{host}/api/ps")
        running = running_models(ps.json()) if ps.is_success else ()
        doc = version.json()
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


def _count(value: Any) -> int:
    """A byte count from the daemon; anything but a non-negative int is 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _why(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return "connection refused (is `ollama serve` running?)"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return str(exc) or type(exc).__name__
