"""The --json documents of apply, init, import and forget (docs/commands.md, "--json of the
editing commands"): one JSON document on stdout, nothing else, the documented keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlxstate.workspace import derive_workspace
from tests.builders import ollama_store as ob
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import mlx, ollama_dir
from tests.helpers.apply import QWEN, QWEN_SRC


def _doc(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> dict[str, Any]:
    result = mlx(capsys, *args)
    assert result.code == code, result.err
    doc = json.loads(result.out)  # the whole of stdout is one document
    assert isinstance(doc, dict)
    return doc


def test_apply_json_reports_each_outcome(
    capsys: pytest.CaptureFixture[str], ollama_server: FakeOllama
) -> None:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    Path("mlx.yaml").write_text(f"version: 1\nmodels:\n  qwen:\n    source: {QWEN_SRC}\n")
    doc = _doc(capsys, "apply", "--json", "-y")
    assert doc["format_version"] == "1" and doc["ok"] is True
    (outcome,) = doc["outcomes"]
    assert (outcome["kind"], outcome["status"]) == ("ollama.pull", "done")
    assert doc["summary"]["added"] == 1 and doc["summary"]["failed"] == 0
    assert [a["kind"] for a in doc["plan"]["actions"]] == ["ollama.pull"]
    again = _doc(capsys, "apply", "--json", "-y")
    assert again["outcomes"] == [] and again["summary"]["added"] == 0
    refused = mlx(capsys, "apply", "--json")  # no prompt in JSON mode
    assert refused.code == 1 and refused.out == "" and "-y" in refused.err


def test_init_json_lists_what_it_declared(capsys: pytest.CaptureFixture[str]) -> None:
    ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    doc = _doc(capsys, "init", "--json")
    assert Path(doc["file"]).resolve() == Path("mlx.yaml").resolve()
    assert set(doc) >= {"file", "ollama", "hf", "apps", "skipped"}
    assert (doc["ollama"], doc["hf"]) == (1, 0)  # how many models of each store it declared
    assert QWEN_SRC in Path("mlx.yaml").read_text()


def test_import_and_forget_json(capsys: pytest.CaptureFixture[str]) -> None:
    ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    Path("mlx.yaml").write_text("version: 1\nmodels: {}\n")
    workspace = derive_workspace(Path("mlx.yaml"))
    doc = _doc(capsys, "import", QWEN_SRC, "--json")
    assert (doc["source"], doc["workspace"], doc["changed"]) == (QWEN_SRC, workspace, True)
    assert _doc(capsys, "import", QWEN_SRC, "--json")["changed"] is False
    doc = _doc(capsys, "forget", QWEN_SRC, "--json")
    assert (doc["source"], doc["workspace"]) == (QWEN_SRC, workspace)
    assert doc["still_owned_by"] == [] and doc["managed"] is False
