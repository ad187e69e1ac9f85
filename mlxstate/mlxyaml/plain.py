"""ruamel's round-trip tree → plain Python, refusing what validation cannot handle.

Refused, each at the position of the key or value: text that is not valid Unicode (a lone
surrogate from a ``"\\ud800"`` escape cannot be encoded, so pydantic and every later
``encode()`` would crash on it) and integers too large to print. Refused for the whole
document: an alias bomb ("billion laughs") that would expand past :data:`MAX_NODES`,
recursive aliases, and nesting deeper than :data:`MAX_DEPTH`.
"""

from __future__ import annotations

from typing import Any

from mlxstate.errors import Diagnostic, SpecError
from mlxstate.mlxyaml.yamlpos import Where, locate

__all__ = ["MAX_DEPTH", "MAX_NODES", "to_plain"]

# A real mlx.yaml has a few hundred nodes and is five levels deep; past these limits the
# document is refused instead of eating memory or the stack.
MAX_NODES = 200_000
MAX_DEPTH = 64
# 2**1024 is ~10**308; no number in mlx.yaml comes close, and printing one past Python's
# int-string limit (4300 digits) raises ValueError in any message that shows it.
_MAX_INT_BITS = 1024

# A path from the root, built as a linked list (parent, part, in_list) so that walking
# costs O(1) per node; materialized only for an error.
_Chain = tuple[Any, Any, bool] | None


class _Walk:
    def __init__(self, file: str) -> None:
        self.file = file
        self.left = MAX_NODES
        self.stack: set[int] = set()
        self.bad: list[tuple[_Chain, Where, str]] = []

    def whole(self, message: str) -> SpecError:
        return SpecError([Diagnostic(self.file, 1, 1, "", message)])


def to_plain(node: Any, file: str) -> Any:
    """ruamel's round-trip objects → plain dict/list/str/int/float/bool/None."""
    walk = _Walk(file)
    data = _plain(node, walk, None, 0)
    if walk.bad:
        raise SpecError([_diagnostic(node, file, *bad) for bad in walk.bad[:20]])
    return data


def _plain(node: Any, walk: _Walk, chain: _Chain, depth: int) -> Any:
    walk.left -= 1
    if walk.left < 0:
        raise walk.whole(f"document too large (over {MAX_NODES} nodes, counting aliases)")
    if not isinstance(node, dict | list):
        value = _scalar(node)
        _check(value, walk, chain, "value")
        return value
    if depth >= MAX_DEPTH:
        raise walk.whole(f"the document is nested more than {MAX_DEPTH} levels deep")
    if id(node) in walk.stack:
        raise walk.whole("recursive YAML alias")
    walk.stack.add(id(node))  # on the current path only: a shared alias is fine, a cycle not
    try:
        if isinstance(node, list):
            return [_plain(v, walk, (chain, i, True), depth + 1) for i, v in enumerate(node)]
        out = {}
        for k, v in node.items():
            key = _scalar(k)
            _check(key, walk, (chain, k, False), "key")
            out[key] = _plain(v, walk, (chain, k, False), depth + 1)
        return out
    finally:
        walk.stack.discard(id(node))


def _check(value: Any, walk: _Walk, chain: _Chain, where: Where) -> None:
    if isinstance(value, str) and not _encodable(value):
        walk.bad.append((chain, where, _surrogate_message(value)))
    elif isinstance(value, int) and value.bit_length() > _MAX_INT_BITS:
        walk.bad.append((chain, where, "number too large (more than 300 digits)"))


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate_message(text: str) -> str:
    char = next(ch for ch in text if 0xD800 <= ord(ch) <= 0xDFFF)
    return (
        f"text contains \\u{ord(char):04x}, half of a UTF-16 surrogate pair, which is not a "
        "character; write the character itself (or its \\U0001xxxx escape)"
    )


def _diagnostic(doc: Any, file: str, chain: _Chain, where: Where, message: str) -> Diagnostic:
    parts: list[tuple[Any, bool]] = []
    while chain is not None:
        chain, part, in_list = chain
        parts.append((part, in_list))
    parts.reverse()
    line, col = locate(doc, [p for p, _ in parts], where)
    dotted = ""
    for part, in_list in parts:
        text = _printable_key(part)
        dotted += f"[{text}]" if in_list else (f".{text}" if dotted else text)
    return Diagnostic(file, line, col, dotted, message)


def _printable_key(part: Any) -> str:
    if isinstance(part, int) and part.bit_length() > _MAX_INT_BITS:
        return "<number>"
    text = str(part)
    return text if _encodable(text) else text.encode("utf-8", "backslashreplace").decode()


def _scalar(node: Any) -> Any:
    # ruamel wraps anchored/styled scalars in subclasses (ScalarBoolean is an int!); unwrap.
    if node is None or type(node) in (str, int, float, bool):
        return node
    name = type(node).__name__
    if name == "ScalarBoolean":
        return bool(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if name == "TaggedScalar":
        return str(node.value)
    if isinstance(node, tuple):
        return tuple(_scalar(x) for x in node)
    return node
