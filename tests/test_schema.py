"""The committed JSON Schema is the generated one, and it agrees with the validator."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from mlxstate.cli.schema import schema_text
from tests.helpers import REPO_EXAMPLES, mlx

COMMITTED = REPO_EXAMPLES.parent / "schemas" / "mlx.schema.json"


def test_committed_schema_is_up_to_date() -> None:
    assert COMMITTED.read_text() == schema_text(), (
        "schemas/mlx.schema.json is stale: run `uv run mlx schema > schemas/mlx.schema.json`"
    )


def test_mlx_schema_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "schema")
    assert result.code == 0
    assert json.loads(result.out) == json.loads(COMMITTED.read_text())


@pytest.mark.parametrize("example", sorted(REPO_EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_reference_and_satisfy_the_schema(example: Path) -> None:
    text = example.read_text()
    assert text.startswith("# yaml-language-server: $schema=../schemas/mlx.schema.json\n")
    data = YAML(typ="safe").load(text)
    jsonschema.validate(data, json.loads(COMMITTED.read_text()))


@pytest.mark.parametrize(
    "doc",
    [
        {"version": 2},
        {"version": 1, "modles": {}},
        {"version": 1, "models": {"Bad": {"source": "hf://a/b"}}},
        {"version": 1, "models": {"a": {"source": "hf://a/b", "ensure": "gone"}}},
        {"version": 1, "settings": {"dedup": "maybe"}},
        {"version": 1, "benchmarks": {"b": {"models": []}}},
    ],
)
def test_schema_rejects_what_validate_rejects(doc: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, json.loads(COMMITTED.read_text()))
