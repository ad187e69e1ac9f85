"""The engine's Session, called as a front-end other than the CLI would: typed values in and
out, nothing printed, the user asked through a callback."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

import mlxstate.mlxyaml.load
import mlxstate.registry
from mlxstate.apply.progress import Display
from mlxstate.engine import PlannedRun, PlanOptions, Session
from mlxstate.errors import PlanError
from mlxstate.plan.actions import Action
from mlxstate.settings import read_environment
from tests.builders import ollama_store as ob
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import ollama_dir, spec_in

QWEN = "qwen2.5:0.5b"
SPEC = f"version: 1\nmodels:\n  qwen:\n    source: ollama://{QWEN}\n"


@pytest.fixture
def ollama(ollama_server: FakeOllama) -> FakeOllama:
    ollama_server.publish(QWEN, ob.default_layers(QWEN, 2048))
    return ollama_server


def session(text: str = SPEC) -> Session:
    return Session(read_environment(), spec_in("home", text))


def quiet_display() -> Any:
    return nullcontext(Display(enabled=False))


def test_plan_returns_typed_values_and_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    planned = session().plan(targets=["qwen"])
    assert isinstance(planned, PlannedRun)
    assert planned.options == PlanOptions(("qwen",), False)
    assert [(a.kind, a.subject) for a in planned.plan.actions] == [
        ("ollama.pull", f"ollama://{QWEN}")
    ]
    assert planned.document()["options"] == {
        "refresh": False,
        "targets": ["qwen"],
        "locked": False,
        "frozen": False,
    }
    assert planned.settings.workspace == planned.facts.workspace
    assert capsys.readouterr() == ("", "")


def test_plan_problems_are_one_plan_error_with_positions() -> None:
    text = "version: 1\nsettings:\n  prune: true\nmodels:\n  x:\n    source: file:///nope\n"
    with pytest.raises(PlanError) as info:
        session(text).plan()
    assert "mlx.yaml:6:" in info.value.message


def test_apply_asks_the_front_end_and_a_no_changes_nothing(ollama: FakeOllama) -> None:
    seen: list[tuple[Action, ...]] = []

    def review(planned: PlannedRun, actions: tuple[Action, ...]) -> bool:
        seen.append(actions)
        return False

    result = session().apply(review=review, progress=quiet_display)
    assert not result.proceeded and result.outcomes == ()
    assert [a.kind for a in seen[0]] == ["ollama.pull"]
    assert not ob.manifest_path(ollama_dir(), QWEN).exists()


def test_apply_parses_the_spec_once_and_opens_the_registry_once(
    ollama: FakeOllama, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"load": 0, "open": 0}
    load, open_ = mlxstate.mlxyaml.load.load_spec, mlxstate.registry.Registry.open

    def counted_load(*args: Any, **kw: Any) -> Any:
        calls["load"] += 1
        return load(*args, **kw)

    def counted_open(*args: Any, **kw: Any) -> Any:
        calls["open"] += 1
        return open_(*args, **kw)

    monkeypatch.setattr(mlxstate.mlxyaml.load, "load_spec", counted_load)
    monkeypatch.setattr(mlxstate.registry.Registry, "open", counted_open)
    result = session().apply(review=lambda *_: True, progress=quiet_display)
    assert [o.status for o in result.outcomes] == ["done"]
    assert calls == {"load": 1, "open": 1}
    assert session().plan().plan.actions == ()  # converged


def test_status_report_is_the_status_document(tmp_path: Path) -> None:
    ob.add_model(ollama_dir(), QWEN, ob.default_layers(QWEN, 2048))
    doc = session().status().document
    assert [m["name"] for m in doc["stores"]["ollama"]["models"]] == [QWEN]
    assert doc["workspace"] and doc["spec"]["valid"] is True
