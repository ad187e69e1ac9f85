"""The client's typed errors: one base, and the three cases an app handles differently."""

from __future__ import annotations

from mlxstate.errors import MlxError

__all__ = ["DaemonDown", "ModelNotFound", "OllamaError", "StreamError"]


class OllamaError(MlxError):
    """Ollama refused or failed a request. ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.status = status


class DaemonDown(OllamaError):
    """Nothing answers at the host (connection refused, or the connection timed out)."""


class ModelNotFound(OllamaError):
    """The model is not installed in Ollama (HTTP 404)."""

    def __init__(self, model: str, message: str) -> None:
        super().__init__(message, status=404, hint=f"install it with `mlx apply` ({model})")
        self.model = model


class StreamError(OllamaError):
    """The stream broke after HTTP 200: an ``{"error": ...}`` line (the runner failed mid
    generation), a line that is not a JSON object, or an end before the final chunk."""
