"""Edit nested keys and lists of an mlx.yaml in place (``mlx link``/``unlink``/``config``).

Like :mod:`mlxstate.edit`, edits are made on the TEXT at the positions ruamel.yaml reports,
so comments, blank lines and key order outside the changed lines survive byte for byte.
Every text edit is checked: the edited text is parsed again and must hold exactly the data
the change asked for; when it does not (flow style, odd layouts), the edit is redone on a
round-trip tree and dumped instead. The caller validates the result before writing it.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from mlxstate.edit import (
    _NON_STRING,
    _comments_above,
    _entry_end,
    _eol,
    _is_flow,
    _key_pos,
    yaml_key,
)
from mlxstate.errors import MlxError, SpecError

__all__ = [
    "list_add",
    "list_remove",
    "parse_scalar",
    "plain",
    "scalar_text",
    "set_entry",
    "unset_entry",
]

_MISSING = object()
# The key at the start of a line's remaining text, then its colon.
_KEY = re.compile(r"""(?:"(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^\s:#][^:#]*?)\s*:""")


def scalar_text(value: object) -> str:
    """``value`` (a YAML scalar: str, bool, int, float, None) as text reading back the same."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    # Plain when it reads back as this string; `~/x` and `10GB` are common and safe.
    safe = re.fullmatch(r"[A-Za-z0-9~/.][A-Za-z0-9._~/+@:-]*", text) and not text.endswith(":")
    if safe and not _NON_STRING.fullmatch(text):
        return text
    return json.dumps(text)


def set_entry(text: str, doc: Any, path: Sequence[str], value: str) -> str:
    """Text with the mapping key at ``path`` set to the YAML text ``value`` (one line)."""
    parsed = _parse_any(value)
    return _checked(
        text, doc, lambda d: _put(d, path, parsed), lambda: _set(text, doc, path, value)
    )


def unset_entry(text: str, doc: Any, path: Sequence[str]) -> str:
    """Text without the key at ``path``; parents left empty are removed too."""
    path = _collapse(doc, path)
    return _checked(text, doc, lambda d: _pop(d, path), lambda: _unset(text, doc, path))


def list_add(text: str, doc: Any, path: Sequence[str], items: Sequence[str]) -> str:
    """Text with ``items`` appended to the list at ``path`` (created when missing)."""
    current = _get(doc, path)
    old = list(current) if isinstance(current, list) else []
    new = old + [i for i in items if i not in old]

    def change(d: Any) -> None:
        _put(d, path, new)

    def edit() -> str:
        if isinstance(current, list) and current and not _is_flow(current):
            return _block_append(text, current, [i for i in items if i not in old])
        return _set(text, doc, path, _flow_list(new))

    return _checked(text, doc, change, edit)


def list_remove(text: str, doc: Any, path: Sequence[str], items: Sequence[str]) -> str:
    """Text with ``items`` removed from the list at ``path`` (``[]`` when none are left)."""
    current = _get(doc, path)
    old = list(current) if isinstance(current, list) else []
    new = [i for i in old if i not in items]

    def change(d: Any) -> None:
        _put(d, path, new)

    def edit() -> str:
        if new and isinstance(current, list) and not _is_flow(current):
            return _block_remove(text, current, [k for k, v in enumerate(old) if v in items])
        return _set(text, doc, path, _flow_list(new))

    return _checked(text, doc, change, edit)


# --- text edits -----------------------------------------------------------------------------


def _set(text: str, doc: Any, path: Sequence[str], value: str) -> str:
    parent: Any = _get(doc, path[:-1])
    key = path[-1]
    if not isinstance(parent, dict) or key not in parent:
        return _insert(text, doc, path[:-1], [f"{yaml_key(key)}: {value}"])
    lines, eol = _lines(text)
    start, col = _key_pos(parent, key)
    end = _entry_end(lines, start, col)
    comment = _comment_after_value(lines[start], col)
    lines[start:end] = [f"{lines[start][:col]}{yaml_key(key)}: {value}{comment}{eol}"]
    return "".join(lines)


def _insert(text: str, doc: Any, path: Sequence[str], block: list[str]) -> str:
    """Text with the entry ``block`` (lines, unindented) added to the mapping at ``path``;
    missing mappings on the way are created."""
    node = _get(doc, path)
    if node is _MISSING:
        nested = [f"{yaml_key(path[-1])}:"] + ["  " + b for b in block]
        return _insert(text, doc, path[:-1], nested)
    lines, eol = _lines(text)
    if not path:  # top level: after `version:`, else at the end
        at = _entry_end(lines, int(doc.lc.key("version")[0]), 0) if "version" in doc else len(lines)
        return "".join(lines[:at] + [b + eol for b in block] + lines[at:])
    if not node:  # `key:` or `key: {}`: start a block under it
        parent = _get(doc, path[:-1])
        start, col = _key_pos(parent, path[-1])
        comment = _comment_after_value(lines[start], col)
        head = f"{lines[start][:col]}{yaml_key(path[-1])}:{comment}"
        end = _entry_end(lines, start, col)
        new = [" " * (col + 2) + b + eol for b in block]
        return "".join([*lines[:start], head + eol, *new, *lines[end:]])
    last = list(node)[-1]
    start, col = _key_pos(node, last)
    end = _entry_end(lines, start, col)
    return "".join(lines[:end] + [" " * col + b + eol for b in block] + lines[end:])


def _unset(text: str, doc: Any, path: Sequence[str]) -> str:
    parent = _get(doc, path[:-1])
    lines, _ = _lines(text)
    keys = list(parent)
    start, col = _key_pos(parent, path[-1])
    end = _entry_end(lines, start, col)
    index = keys.index(path[-1])
    if index + 1 < len(keys):  # up to the next key, minus the comment lines introducing it
        end = _comments_above(lines, int(parent.lc.key(keys[index + 1])[0]), col)
    start = _comments_above(lines, start, col)
    if start > 0 and not lines[start - 1].strip() and end < len(lines) and not lines[end].strip():
        start -= 1  # two blank lines would meet: keep one
    return "".join(lines[:start] + lines[end:])


def _block_append(text: str, seq: Any, items: list[str]) -> str:
    lines, eol = _lines(text)
    line, col = (int(x) for x in seq.lc.item(len(seq) - 1))
    dash = lines[line].rfind("-", 0, col)
    end = _entry_end(lines, line, dash)
    new = [f"{' ' * dash}- {scalar_text(i)}{eol}" for i in items]
    return "".join(lines[:end] + new + lines[end:])


def _block_remove(text: str, seq: Any, indexes: list[int]) -> str:
    lines, _ = _lines(text)
    for index in sorted(indexes, reverse=True):  # bottom up: earlier positions stay valid
        line, col = (int(x) for x in seq.lc.item(index))
        dash = lines[line].rfind("-", 0, col)
        end = _entry_end(lines, line, dash)
        del lines[_comments_above(lines, line, dash) : end]
    return "".join(lines)


def _comment_after_value(line: str, col: int) -> str:
    """The ``# comment`` ending a ``key: value`` line, with the spaces before it (``""``
    when none)."""
    key = _KEY.match(line, col)
    if key is None:
        return ""
    rest = line[key.end() :].rstrip("\r\n")
    stripped = rest.lstrip()
    if stripped[:1] in ('"', "'"):
        quoted = re.match(r""""(?:[^"\\]|\\.)*"|'(?:[^']|'')*'""", stripped)
        rest = stripped[quoted.end() :] if quoted else ""
        hash_at = rest.find("#")
    else:
        found = re.search(r"(?:^|\s)#", rest)
        hash_at = found.end() - 1 if found else -1
    if hash_at < 0:
        return ""
    spaces = len(rest[:hash_at]) - len(rest[:hash_at].rstrip())
    return rest[hash_at - spaces :] if spaces else "  " + rest[hash_at:]


# --- data and checks ------------------------------------------------------------------------


def _checked(text: str, doc: Any, change: Callable[[Any], None], edit: Callable[[], str]) -> str:
    """``edit()`` when its result holds exactly ``change`` applied to ``doc``; else a dump."""
    from mlxstate.mlxyaml.yamlpos import load_yaml

    expected = plain(doc)
    change(expected)
    try:
        edited = edit()
        if plain(load_yaml(edited, "mlx.yaml")) == expected:
            return edited
    except Exception:  # a layout the text edit does not know: the tree edit below is exact
        pass
    return _ruamel(text, change)


def _ruamel(text: str, change: Callable[[Any], None]) -> str:
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    tree = yaml.load(text)
    change(tree)
    buf = io.StringIO()
    yaml.dump(tree, buf)
    out = buf.getvalue()
    return out.replace("\n", "\r\n") if _eol(text) == "\r\n" else out


def plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, bool | None):
        return node
    if isinstance(node, int | float):
        return float(node) if isinstance(node, float) else int(node)
    return str(node)


def _get(doc: Any, path: Sequence[str]) -> Any:
    node = doc
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _put(doc: Any, path: Sequence[str], value: Any) -> None:
    node = doc
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {} if isinstance(doc, dict) and type(doc) is dict else _mapping()
        node = node[part]
    node[path[-1]] = copy.deepcopy(value)


def _mapping() -> Any:
    from ruamel.yaml.comments import CommentedMap

    return CommentedMap()


def _pop(doc: Any, path: Sequence[str]) -> None:
    node = doc
    for part in path[:-1]:
        node = node[part]
    node.pop(path[-1])


def _collapse(doc: Any, path: Sequence[str]) -> Sequence[str]:
    """The entry to remove so that no mapping is left empty: a parent whose only key this
    is goes too (``settings:`` with nothing under it would not be what the user had)."""
    while len(path) > 1:
        parent = _get(doc, path[:-1])
        if not isinstance(parent, dict) or list(parent) != [path[-1]]:
            break
        path = path[:-1]
    return path


def _parse_any(value: str) -> Any:
    from mlxstate.mlxyaml.yamlpos import load_yaml

    return plain(load_yaml(f"v: {value}\n", "value")["v"])


def parse_scalar(value: str) -> Any:
    """``value`` read as YAML 1.2 reads a scalar (``true``, ``10``, ``off``, ``"a b"``)."""
    from mlxstate.mlxyaml.yamlpos import load_yaml

    if "\n" in value or "\r" in value:
        raise MlxError("a setting's value is one line")
    try:
        doc = load_yaml(f"v: {value}\n", "VALUE")
    except SpecError:
        raise MlxError(f"{value!r} is not a YAML scalar; quote it") from None
    parsed = plain(doc["v"]) if isinstance(doc, dict) and "v" in doc else None
    if isinstance(parsed, dict | list) or not isinstance(doc, dict) or len(doc) != 1:
        raise MlxError(f"{value!r} is not one value; a setting takes a scalar (quote it)")
    return parsed


def _flow_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(scalar_text(i) for i in items) + "]"


def _lines(text: str) -> tuple[list[str], str]:
    eol = _eol(text)
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += eol
    return lines, eol
