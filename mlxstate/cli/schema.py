"""``mlx schema``: print the JSON Schema of mlx.yaml."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from mlxstate.cli._common import FileOpt, NoColorOpt, QuietOpt, VerboseOpt

__all__ = ["command", "json_schema", "schema_text"]

SCHEMA_ID = "https://raw.githubusercontent.com/mlxstate/mlxstate/main/schemas/mlx.schema.json"


def json_schema() -> dict[str, Any]:
    """The JSON Schema generated from the pydantic models (``schemas/mlx.schema.json``)."""
    from mlxstate.mlxyaml.models import Spec

    schema = Spec.model_json_schema(mode="validation")
    for owner in [schema, *schema.get("$defs", {}).values()]:
        _allow_null_sections(owner)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def _allow_null_sections(model_schema: dict[str, Any]) -> None:
    """`settings:` with nothing under it is YAML null; mlx reads it as empty, so must editors."""
    props = model_schema.get("properties", {})
    for name, prop in props.items():
        if "$ref" in prop or prop.get("type") == "object":
            props[name] = {"anyOf": [prop, {"type": "null"}]}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def command(
    lock: Annotated[bool, typer.Option("--lock", help="The schema of mlx.lock instead.")] = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Print the JSON Schema of mlx.yaml (the same as schemas/mlx.schema.json)."""
    if lock:
        from mlxstate.lock.schema import lock_schema_text

        sys.stdout.write(lock_schema_text())
        return
    sys.stdout.write(schema_text())
