"""Edit ``models:`` of an mlx.yaml in place (``mlx add`` / ``mlx rm``).

Edits are made on the TEXT, guided by ruamel.yaml's positions, so every comment, blank
line, quote, key order and line ending the user wrote survives byte for byte outside the
lines that change. (Dumping a round-trip tree would re-indent lists and move comments that
ruamel attaches to the previous node.) Flow-style ``models: {...}`` falls back to a ruamel
dump. The caller validates the result before writing it.
"""

from __future__ import annotations

import io
import json
import re
from typing import Any

from mlxstate.errors import MlxError

__all__ = ["add_model", "entry_lines", "remove_model", "yaml_key"]

# Plain scalars YAML 1.2 would NOT read as a string (numbers, booleans, null).
_NON_STRING = re.compile(
    r"^(?:[-+]?(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][-+]?\d+)?|0x[0-9a-fA-F]+|0o[0-7]+"
    r"|true|false|null|~|[-+]?\.inf|\.nan|yes|no|on|off|y|n)$",
    re.IGNORECASE,
)


_PLAIN_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def yaml_key(name: str) -> str:
    """``name`` as a mapping key that reads back as the string ``name``."""
    # Plain only when it cannot be anything else (fullmatch: "a\n" must be quoted too).
    plain = _PLAIN_SAFE.fullmatch(name) and not _NON_STRING.fullmatch(name)
    return name if plain else json.dumps(name)


def entry_lines(name: str, fields: dict[str, Any], eol: str = "\n") -> list[str]:
    """``name:`` and its fields; field lines are indented by two more than the key."""
    out = [f"{yaml_key(name)}:{eol}"]
    for key, value in fields.items():
        if isinstance(value, list):
            out.append(f"  {key}: [{', '.join(json.dumps(v) for v in value)}]{eol}")
        else:
            out.append(f"  {key}: {json.dumps(str(value))}{eol}")
    return out


def _key_pos(node: Any, key: Any) -> tuple[int, int]:
    """0-based (line, col) of ``key`` in a ruamel mapping."""
    line, col = node.lc.key(key)
    return int(line), int(col)


def _is_flow(node: Any) -> bool:
    fa = getattr(node, "fa", None)
    return bool(fa is not None and fa.flow_style())


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_filler(line: str) -> bool:
    stripped = line.strip()
    return not stripped or stripped.startswith("#")


def _eol(text: str) -> str:
    return "\r\n" if "\r\n" in text else "\n"


def _entry_end(lines: list[str], start: int, col: int) -> int:
    """End (exclusive) of the entry whose key is at ``lines[start]``, column ``col``.

    Lines indented deeper than ``col`` belong to the entry, comments included; blank lines
    and comments at ``col`` or shallower after its last line lead into what comes next.
    """
    end = start + 1
    for i in range(start + 1, len(lines)):
        if not lines[i].strip():
            continue
        if _indent_of(lines[i]) <= col:
            break
        end = i + 1
    return end


def add_model(text: str, doc: Any, name: str, fields: dict[str, Any]) -> str:
    """Text with ``models.<name>`` added after the last model."""
    eol = _eol(text)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += eol
    if not isinstance(doc, dict) or "models" not in doc:
        block = [f"models:{eol}"] + [f"  {x}" for x in entry_lines(name, fields, eol)]
        sep = [] if not lines or not lines[-1].strip() else [eol]
        return "".join(lines + sep + block)
    models = doc["models"]
    if models is not None and not isinstance(models, dict):
        raise MlxError("'models' in mlx.yaml is not a mapping; fix it first (`mlx validate`)")
    key_line, key_col = _key_pos(doc, "models")
    if not models:  # `models:` or `models: {}`: start a block under the key
        head = lines[key_line]
        if "{}" in head.split("#", 1)[0]:
            comment = head[head.index("#") :].rstrip("\r\n") if "#" in head else ""
            lines[key_line] = f"{head[: head.index('models')]}models:"
            lines[key_line] += f"  {comment}{eol}" if comment else eol
        new = [" " * (key_col + 2) + x for x in entry_lines(name, fields, eol)]
        return "".join(lines[: key_line + 1] + new + lines[key_line + 1 :])
    if _is_flow(models):
        return _ruamel_edit(text, lambda m: _add_to(m, name, fields))
    last = list(models)[-1]
    start, entry_col = _key_pos(models, last)
    end = _entry_end(lines, start, entry_col)
    new = [" " * entry_col + x for x in entry_lines(name, fields, eol)]
    return "".join(lines[:end] + new + lines[end:])


def remove_model(text: str, doc: Any, name: str) -> str:
    """Text without ``models.<name>``, its comments, and the comment lines directly above."""
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict) or name not in models:
        raise MlxError(f"no model named {name!r} in mlx.yaml")
    if _is_flow(models):
        return _ruamel_edit(text, lambda m: m.pop(name))
    lines = text.splitlines(keepends=True)
    start, col = _key_pos(models, name)
    end = _entry_end(lines, start, col)
    keys = list(models)
    if keys.index(name) + 1 < len(keys):
        # Up to the next model, minus the comment lines that introduce it.
        following = _key_pos(models, keys[keys.index(name) + 1])[0]
        end = _comments_above(lines, following, col)
    start = _comments_above(lines, start, col)
    if start > 0 and not lines[start - 1].strip() and end < len(lines) and not lines[end].strip():
        start -= 1  # two blank lines would meet: keep one
    return "".join(lines[:start] + lines[end:])


def _comments_above(lines: list[str], line: int, col: int) -> int:
    """First line of the comment lines at ``col`` directly above ``line`` (no blank between)."""
    while (
        line > 0 and lines[line - 1].strip().startswith("#") and _indent_of(lines[line - 1]) == col
    ):
        line -= 1
    return line


def _add_to(models: Any, name: str, fields: dict[str, Any]) -> None:
    from ruamel.yaml.comments import CommentedMap

    entry = CommentedMap()
    for key, value in fields.items():
        entry[key] = value
    models[name] = entry


def _ruamel_edit(text: str, change: Any) -> str:
    """Flow-style ``models: {...}``: edit a round-trip tree (quotes kept) and dump it."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    doc = yaml.load(text)
    change(doc["models"])
    buf = io.StringIO()
    yaml.dump(doc, buf)
    return buf.getvalue().replace("\n", _eol(text)) if _eol(text) != "\n" else buf.getvalue()
