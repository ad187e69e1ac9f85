"""Edit ``models:`` of an mlx.yaml in place (``mlx add`` / ``mlx rm``).

Edits are made on the TEXT, guided by ruamel.yaml's positions, so every comment, blank
line, quote and key order the user wrote survives byte for byte outside the lines that
change. (Dumping a round-trip tree would re-indent lists and move comments that ruamel
attaches to the previous node.) Flow-style ``models: {...}`` falls back to a ruamel dump.
The caller validates the result before writing it.
"""

from __future__ import annotations

import io
import json
from typing import Any

from mlxstate.errors import MlxError

__all__ = ["add_model", "remove_model"]


def _q(text: str) -> str:
    return json.dumps(text)


def entry_lines(name: str, fields: dict[str, Any]) -> list[str]:
    """``name:`` and its fields, indented by one step (re-indented on insertion)."""
    out = [f"{name}:"]
    for key, value in fields.items():
        if isinstance(value, list):
            out.append(f"  {key}: [{', '.join(_q(v) for v in value)}]")
        else:
            out.append(f"  {key}: {_q(str(value))}")
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


def _block_end(lines: list[str], key_line: int, key_col: int) -> int:
    """First line after the block that starts at ``key_line`` (a key at ``key_col``)."""
    for i in range(key_line + 1, len(lines)):
        if not _is_filler(lines[i]) and _indent_of(lines[i]) <= key_col:
            return i
    return len(lines)


def add_model(text: str, doc: Any, name: str, fields: dict[str, Any]) -> str:
    """Text with ``models.<name>`` added after the last model."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(doc, dict) or "models" not in doc:
        block = ["models:\n"] + [f"  {x}\n" for x in entry_lines(name, fields)]
        sep = [] if not lines or lines[-1].strip() == "" else ["\n"]
        return "".join(lines + sep + block)
    if models is not None and not isinstance(models, dict):
        raise MlxError("'models' in mlx.yaml is not a mapping; fix it first (`mlx validate`)")
    key_line, key_col = _key_pos(doc, "models")
    if not models:  # `models:` or `models: {}`: start a block under the key
        head = lines[key_line]
        comment = head[head.index("#") :].rstrip("\n") if "#" in head else ""
        lines[key_line] = f"{' ' * key_col}models:{'  ' + comment if comment else ''}\n"
        new = [f"{' ' * (key_col + 2)}{x}\n" for x in entry_lines(name, fields)]
        return "".join(lines[: key_line + 1] + new + lines[key_line + 1 :])
    if _is_flow(models):
        return _ruamel_add(doc, name, fields)
    first = next(iter(models))
    entry_col = _key_pos(models, first)[1]
    end = _block_end(lines, key_line, key_col)
    while end > key_line + 1 and _is_filler(lines[end - 1]):
        end -= 1  # keep the blank lines and comments that lead into the next section
    new = [f"{' ' * entry_col}{x}\n" for x in entry_lines(name, fields)]
    return "".join(lines[:end] + new + lines[end:])


def remove_model(text: str, doc: Any, name: str) -> str:
    """Text without ``models.<name>`` (and the comment lines directly above it)."""
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict) or name not in models:
        raise MlxError(f"no model named {name!r} in mlx.yaml")
    if _is_flow(models):
        return _ruamel_remove(doc, name)
    lines = text.splitlines(keepends=True)
    start, col = _key_pos(models, name)
    keys = list(models)
    following = keys[keys.index(name) + 1 :]
    if following:
        end = _key_pos(models, following[0])[0]
        end = _comments_above(lines, end, col)  # those belong to the next model
    else:
        end = _block_end(lines, start, col)
        while end > start + 1 and _is_filler(lines[end - 1]):
            end -= 1
    start = _comments_above(lines, start, col)
    return "".join(lines[:start] + lines[end:])


def _comments_above(lines: list[str], line: int, col: int) -> int:
    """First line of the comment lines at ``col`` directly above ``line`` (no blank between)."""
    while (
        line > 0 and lines[line - 1].strip().startswith("#") and _indent_of(lines[line - 1]) == col
    ):
        line -= 1
    return line


def _yaml() -> Any:
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    return yaml


def _dump(doc: Any) -> str:
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    return buf.getvalue()


def _ruamel_add(doc: Any, name: str, fields: dict[str, Any]) -> str:
    from ruamel.yaml.comments import CommentedMap

    entry = CommentedMap()
    for key, value in fields.items():
        entry[key] = value
    doc["models"][name] = entry
    return _dump(doc)


def _ruamel_remove(doc: Any, name: str) -> str:
    del doc["models"][name]
    return _dump(doc)
