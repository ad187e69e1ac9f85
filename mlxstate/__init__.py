"""mlxstate: declarative manager for local LLM model stores.

The public Python API (docs/api.md) is what ``__all__`` lists. Names load on first use
(module ``__getattr__``), so ``import mlxstate`` stays cheap: the ``mlx`` command and an
app that only wants ``__version__`` pay for nothing else.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_PUBLIC: dict[str, str] = {
    "resolve": "mlxstate.api",
    "ensure": "mlxstate.api",
    "ResolvedModel": "mlxstate.api",
    "ModelFile": "mlxstate.api",
    "ProgressEvent": "mlxstate.api",
    "MlxError": "mlxstate.api",
    "NotDeclared": "mlxstate.api",
    "NotPresent": "mlxstate.api",
    "EnsureFailed": "mlxstate.api",
    "OllamaClient": "mlxstate.client",
    "AsyncOllamaClient": "mlxstate.client",
    "OllamaError": "mlxstate.client",
    "DaemonDown": "mlxstate.client",
    "ModelNotFound": "mlxstate.client",
    "StreamError": "mlxstate.client",
}

__all__ = [
    "AsyncOllamaClient",
    "DaemonDown",
    "EnsureFailed",
    "MlxError",
    "ModelFile",
    "ModelNotFound",
    "NotDeclared",
    "NotPresent",
    "OllamaClient",
    "OllamaError",
    "ProgressEvent",
    "ResolvedModel",
    "StreamError",
    "__version__",
    "ensure",
    "resolve",
]

if TYPE_CHECKING:
    from mlxstate.api import (
        EnsureFailed,
        MlxError,
        ModelFile,
        NotDeclared,
        NotPresent,
        ProgressEvent,
        ResolvedModel,
        ensure,
        resolve,
    )
    from mlxstate.client import (
        AsyncOllamaClient,
        DaemonDown,
        ModelNotFound,
        OllamaClient,
        OllamaError,
        StreamError,
    )


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'mlxstate' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
