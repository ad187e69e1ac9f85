"""Typed actions: every kind round-trips through plan JSON unchanged, and a saved plan's
action with an unknown kind, unknown param or wrongly typed param is refused."""

from __future__ import annotations

from typing import Any

import pytest

from mlxstate.plan.actions import KIND_PARAMS, Action
from mlxstate.plan.params import (
    DedupParams,
    DeleteParams,
    DownloadParams,
    FileCleanupParams,
    LinkParams,
    PullParams,
    RevisionCleanupParams,
)

ACTIONS = [
    Action("model/a", "create", "ollama.pull", "ollama://a:latest", None, 0, "r", "a",
           PullParams(seed_blob="/b", seed_sha256="c" * 64, seed_size=3), "declared-not-present"),
    Action("model/h", "update", "hf.download", "hf://o/r", 5, 0, "r", "h",
           DownloadParams(include=("*.json",), revision="main", commit="a" * 40), "repair"),
    Action("prune/x", "delete", "hf.delete", "hf://o/x", 0, 9, "r", None,
           DeleteParams(was="x"), "prune"),
    Action("link/l/x", "create", "link.create", "/apps/l/x", 0, 0, "r", "x",
           LinkParams(app="l", depends_on=("model/x",)), "link-after-install"),
    Action("dedup/abc/0", "update", "dedup.link", "/d", 0, 4, "r", None,
           DedupParams("/k", (1, 2, 3, 4), (1, 5, 3, 4), "hardlink", "d" * 64, "name"), "dedup"),
    Action("cleanup/ollama/x", "delete", "cleanup.orphan", "/o/x", 0, 4, "r", None,
           FileCleanupParams(mtime=12.5, size=4), "cleanup-orphan"),
    Action("cleanup/o/r/abc", "delete", "cleanup.revision", "models/o/r@abc", 0, 4, "r", None,
           RevisionCleanupParams(commit="a" * 40, repo="o/r", repo_type="model"),
           "cleanup-detached"),
    Action("claim/a", "update", "registry.claim", "ollama://a:latest", 0, 0, "r", "a",
           reason_code="claim"),
]  # fmt: skip


@pytest.mark.parametrize("action", ACTIONS, ids=[a.kind for a in ACTIONS])
def test_every_kind_round_trips_through_json(action: Action) -> None:
    again = Action.from_json(action.to_json())
    assert again == action
    assert hash(again) == hash(action)
    assert again.to_json() == action.to_json()


def test_params_json_keeps_the_plan_format() -> None:
    """Lists, not tuples; None left out; keys in the order plans were always written in."""
    doc = ACTIONS[1].to_json()["params"]
    assert list(doc) == ["include", "revision", "commit"]
    assert doc["include"] == ["*.json"]
    assert ACTIONS[4].to_json()["params"]["dup"] == [1, 2, 3, 4]


def test_kinds_without_params_get_their_defaults() -> None:
    action = Action("model/a", "create", "ollama.pull", "ollama://a:latest", None, 0, "r", "a")
    assert action.params == PullParams()
    assert set(KIND_PARAMS) >= {a.kind for a in ACTIONS}


def _doc(**change: Any) -> dict[str, Any]:
    return {**ACTIONS[1].to_json(), **change}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (_doc(kind="shell.run"), "unknown action kind 'shell.run'"),
        (_doc(op="explode"), "unknown op 'explode'"),
        (_doc(params={"revision": "main", "rm": "-rf"}), "unknown params 'rm'"),
        (_doc(params={"revision": 3}), "params.revision must be a string"),
        (_doc(params={"include": "*.json"}), "params.include must be a list of strings"),
        (_doc(download_bytes="5"), "download_bytes must be an integer or null"),
        (_doc(reason_code="because"), "unknown reason_code 'because'"),
        (_doc(id=None), "id must be a string"),
        ({**ACTIONS[4].to_json(), "params": {"canonical": "/k"}}, "params.dup is missing"),
        ({**ACTIONS[4].to_json(), "kind": "link.create"}, "unknown params"),
    ],
)
def test_a_malformed_saved_action_is_refused(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Action.from_json(doc)


def test_a_saved_plan_without_reason_codes_still_loads() -> None:
    doc = ACTIONS[0].to_json()
    del doc["reason_code"]
    assert Action.from_json(doc).reason_code is None


def test_params_must_match_the_kind() -> None:
    with pytest.raises(ValueError, match="takes LinkParams"):
        Action("link/x", "create", "link.create", "/x", 0, 0, "r", None, PullParams())
