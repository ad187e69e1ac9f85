"""The JSON Schema of ``mlx.lock`` (``schemas/mlx.lock.schema.json``; ``mlx schema --lock``).

Written by hand next to the document it describes (mlxstate/lock/model.py): the lock is
produced by mlx, not typed by people, so the schema is strict — every object closed, every
digest in its exact form.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["LOCK_SCHEMA_ID", "lock_json_schema", "lock_schema_text"]

LOCK_SCHEMA_ID = (
    "https://raw.githubusercontent.com/mlxstate/mlxstate/main/schemas/mlx.lock.schema.json"
)
_SHA256 = "^sha256:[0-9a-f]{64}$"


def _closed(properties: dict[str, Any], required: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
        **extra,
    }


def lock_json_schema() -> dict[str, Any]:
    size = {"type": "integer", "minimum": 0}
    hf_file = _closed(
        {
            "path": {"type": "string", "minLength": 1},
            "size": size,
            "sha256": {
                "type": "string",
                "pattern": "^[0-9a-f]{64}$",
                "description": "LFS files: sha256 of the content",
            },
            "blob_id": {"type": "string", "description": "other files: the git blob id"},
        },
        ["path", "size"],
    )
    hf = _closed(
        {
            "revision": {"type": "string", "description": "what mlx.yaml asked for"},
            "commit": {"type": "string", "pattern": "^[0-9a-f]{40}$"},
            "files": {"type": "array", "items": {"$ref": "#/$defs/HfFile"}},
        },
        ["revision", "commit", "files"],
    )
    layer = _closed(
        {
            "digest": {"type": "string", "pattern": _SHA256},
            "size": size,
            "media_type": {"type": "string"},
        },
        ["digest", "size", "media_type"],
    )
    ollama = _closed(
        {
            "name": {"type": "string", "description": "host/namespace/model:tag"},
            "digest": {
                "type": "string",
                "pattern": _SHA256,
                "description": "sha256 of the manifest bytes",
            },
            "layers": {
                "type": "array",
                "items": {"$ref": "#/$defs/OllamaLayer"},
                "description": "the config blob first, then the layers in manifest order",
            },
        },
        ["name", "digest", "layers"],
    )
    entry = _closed(
        {
            "source": {"type": "string", "pattern": "^(hf|ollama)://"},
            "input_hash": {"type": "string", "pattern": _SHA256},
            "hf": {"$ref": "#/$defs/HfLock"},
            "ollama": {"$ref": "#/$defs/OllamaLock"},
        },
        ["source", "input_hash"],
        oneOf=[{"required": ["hf"]}, {"required": ["ollama"]}],
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": LOCK_SCHEMA_ID,
        "title": "mlx.lock",
        "description": "What each model of mlx.yaml resolved to upstream; written by `mlx lock`.",
        **_closed(
            {
                "lock_version": {"const": 1},
                "models": {
                    "type": "object",
                    "propertyNames": {"pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"},
                    "additionalProperties": {"$ref": "#/$defs/LockEntry"},
                },
            },
            ["lock_version", "models"],
        ),
        "$defs": {
            "HfFile": hf_file,
            "HfLock": hf,
            "LockEntry": entry,
            "OllamaLayer": layer,
            "OllamaLock": ollama,
        },
    }


def lock_schema_text() -> str:
    return json.dumps(lock_json_schema(), indent=2, sort_keys=True) + "\n"
