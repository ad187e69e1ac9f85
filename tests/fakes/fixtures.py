"""Pytest fixtures for the loopback fakes.

Register them for the whole suite with ``pytest_plugins = ["tests.fakes.fixtures"]`` in the
top-level ``tests/conftest.py``, or import the ``*_fixture`` functions into a test module
(they are defined under other names so the import does not shadow the test arguments).

- ``fake_hub``: a started :class:`FakeHfHub`; ``HF_ENDPOINT`` is set to its ``url`` for code
  that reads the variable itself. huggingface_hub does NOT (it read the variable when first
  imported, which this module forces to happen now, before any test can set it): pass
  ``endpoint=fake_hub.url`` to its functions.
- ``ollama_server``: a started :class:`FakeOllama` serving ``$OLLAMA_MODELS`` (the isolated
  per-test folder from ``tests/conftest.py``; ``tmp_path/ollama-models`` without it);
  ``OLLAMA_HOST`` is set to its ``url``.
- ``ollama_registry``: a started :class:`FakeOllamaRegistry` (manifests and blobs over the
  distribution API); point ``settings.ollama.registry`` at its ``url``, and a daemon at it
  with ``ollama_server.upstream = ollama_registry.url``.
- ``sentinel``: a :class:`tests.helpers.Sentinel` tree of user files at ``tmp_path/sentinel``
  (outside the isolated stores and app folders); place links into it from a store with
  ``sentinel.link_from(path)`` and call ``sentinel.check()`` after the commands under test:
  it fails with the diff if any file, mode, inode or link in it changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants  # noqa: F401 - pin ENDPOINT before any test sets HF_ENDPOINT
import pytest

from tests.fakes.hf_hub import FakeHfHub
from tests.fakes.ollama_registry import FakeOllamaRegistry
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import Sentinel, make_sentinel, restore_writable


@pytest.fixture(name="fake_hub")
def fake_hub_fixture(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHfHub]:
    with FakeHfHub() as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
        yield hub


@pytest.fixture(name="ollama_server")
def ollama_server_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOllama]:
    models_dir = Path(os.environ.get("OLLAMA_MODELS") or tmp_path / "ollama-models")
    models_dir.mkdir(parents=True, exist_ok=True)
    with FakeOllama(models_dir) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.url)
        yield server


@pytest.fixture(name="ollama_registry")
def ollama_registry_fixture() -> Iterator[FakeOllamaRegistry]:
    with FakeOllamaRegistry() as registry:
        yield registry


@pytest.fixture(name="sentinel")
def sentinel_fixture(tmp_path: Path) -> Iterator[Sentinel]:
    root = tmp_path / "sentinel"
    guard = make_sentinel(root)
    yield guard
    restore_writable(root)
