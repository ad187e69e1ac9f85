"""``import httpx`` without its command-line client.

httpx's ``__init__`` imports ``httpx._main`` (its CLI: click, rich, pygments), ~140 ms on
these machines — most of `mlx status`'s budget — and falls back to a stub when that import
fails. We make it fail once, then remove the marker so an explicit import still works.
"""

from __future__ import annotations

import sys

if "httpx" not in sys.modules and "httpx._main" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx
    finally:
        if sys.modules.get("httpx._main", 0) is None:
            del sys.modules["httpx._main"]
else:  # pragma: no cover - already imported elsewhere
    import httpx

__all__ = ["httpx"]
