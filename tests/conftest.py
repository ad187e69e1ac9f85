"""Test-wide fixtures.

The autouse ``isolated_env`` fixture points every location mlxstate could read or write
(HOME, XDG dirs, OLLAMA_MODELS, HF_HOME, ...) at a per-test temporary folder, so no test
can ever touch the real model stores of the machine running it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.fakes.fixtures"]

_CLEARED = (
    "MLX_FILE",
    "MLX_DEBUG",
    "MLX_HOST",
    "OLLAMA_HOST",
    "HF_HUB_CACHE",
    "HF_TOKEN",
    "HF_ENDPOINT",
    "NO_COLOR",
    "FORCE_COLOR",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("OLLAMA_MODELS", str(home / ".ollama" / "models"))
    monkeypatch.setenv("HF_HOME", str(home / ".cache" / "huggingface"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    for name in _CLEARED:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return home
