"""YAML loading that keeps positions, and the position lookup for error messages.

ruamel.yaml's round-trip loader records the line/column of every key and value; we load
with it, turn syntax problems into :class:`Diagnostic` values, then convert the document to
plain Python for validation while keeping the original for :func:`locate`.
"""

from __future__ import annotations

import functools
import gc
import sys
import warnings
from collections.abc import Sequence
from typing import Any, Literal

from mlxstate.errors import Diagnostic, SpecError

__all__ = ["child", "load_yaml", "locate"]

Where = Literal["key", "value"]


def load_yaml(text: str, file: str) -> Any:
    """Parse one YAML document with positions; syntax errors raise :class:`SpecError`."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    if "\t" in text:
        _check_tabs(text, file)
    yaml = YAML(typ="rt")  # round-trip: keeps line/col of keys and values, rejects duplicate keys
    yaml.Constructor = _ruamel_classes()[0]
    # The parser allocates hundreds of thousands of objects that all stay alive: the cyclic
    # GC would scan them again and again (a quarter of the time of a 1 MiB file).
    collecting = gc.isenabled()
    gc.disable()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return yaml.load(text)
    except MarkedYAMLError as exc:
        raise SpecError([_syntax_diagnostic(exc, file)]) from None
    except ReaderError as exc:
        raise SpecError([_reader_diagnostic(exc, text, file)]) from None
    except RecursionError:
        message = "the document is nested too deeply; mlx.yaml needs only a few levels"
        raise SpecError([Diagnostic(file, 1, 1, "", message)]) from None
    except YAMLError as exc:
        raise SpecError([Diagnostic(file, 1, 1, "", f"invalid YAML: {exc}")]) from None
    except Exception as exc:
        # ruamel raises assorted builtin errors on some malformed input (IndexError for a
        # bare `!!int`, ValueError for bad `!!float`...): still the user's YAML, not our bug.
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise SpecError([Diagnostic(file, 1, 1, "", f"invalid YAML ({detail})")]) from None
    finally:
        if collecting:
            gc.enable()


@functools.cache
def _ruamel_classes() -> tuple[Any, Any]:
    """(constructor, error) classes: ruamel's round-trip constructor, but a value it cannot
    build (a 5000-digit integer past Python's int-string limit, a bare ``!!int``) is
    reported at that value's position, not as a crash or at 1:1."""
    from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
    from ruamel.yaml.error import YAMLError

    class BadValue(ConstructorError):
        pass

    class Positioned(RoundTripConstructor):
        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep=deep)
            except (YAMLError, RecursionError, MemoryError):
                raise
            except Exception as exc:
                # Builtin errors from a scalar's conversion: still the user's YAML, not our bug.
                raise BadValue(None, None, _value_problem(exc), node.start_mark) from None

    return Positioned, BadValue


def _value_problem(exc: Exception) -> str:
    detail = " ".join(str(exc).split()) or type(exc).__name__
    if "integer string conversion" in detail:
        limit = sys.get_int_max_str_digits()
        return f"number too large: an integer may have at most {limit} digits"
    return f"invalid value ({detail})"


def _check_tabs(text: str, file: str) -> None:
    # YAML forbids tabs in indentation; ruamel's message for it ("found character '\t' that
    # cannot start any token") does not tell a user what to do, so we say it first.
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.lstrip(" ")
        if stripped.startswith("\t"):
            col = len(line) - len(stripped) + 1
            raise SpecError(
                [
                    Diagnostic(
                        file, number, col, "", "tab character in indentation; YAML needs spaces"
                    )
                ]
            )


def _syntax_diagnostic(exc: Any, file: str) -> Diagnostic:
    mark = exc.problem_mark or exc.context_mark
    if exc.context_mark is not None and "<stream end>" in str(exc.problem or ""):
        # "expected ']' but got <stream end>": the end of the file is not where the mistake
        # is; the unclosed bracket (the context) is.
        mark = exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    problem = " ".join(str(exc.problem or exc.context or "syntax error").split())
    if type(exc).__name__ == "DuplicateKeyError":
        first = exc.context_mark
        key = problem.split('"')[1] if problem.count('"') >= 2 else "?"
        where = f" (first defined in the mapping at line {first.line + 1})" if first else ""
        return Diagnostic(file, line, col, "", f"duplicate key {key!r}{where}")
    if isinstance(exc, _ruamel_classes()[1]):
        return Diagnostic(file, line, col, "", problem)
    context = " ".join(str(exc.context).split()) if exc.context else ""
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    return Diagnostic(file, line, col, "", message)


def _reader_diagnostic(exc: Any, text: str, file: str) -> Diagnostic:
    """A character YAML does not allow (a pasted terminal colour code, a NUL byte)."""
    position = int(getattr(exc, "position", 0) or 0)
    before = text[:position]
    line = before.count("\n") + 1
    col = position - (before.rfind("\n") + 1) + 1
    char = getattr(exc, "character", "?")
    code = char if isinstance(char, int) else ord(str(char)[:1] or "?")
    return Diagnostic(
        file, line, col, "", f"unacceptable character #x{code:04x}: YAML allows only printable text"
    )


def locate(doc: Any, path: Sequence[Any], where: Where = "value") -> tuple[int, int]:
    """1-based (line, col) of the deepest part of ``path`` that exists in ``doc``."""
    best = (1, 1)
    node = doc
    for i, part in enumerate(path):
        last = i == len(path) - 1
        pos = _child_position(node, part, "key" if (last and where == "key") else "value")
        if pos is None:
            break
        best = pos
        node = child(node, part)
        if node is None:
            break
    return best


def _child_position(node: Any, part: Any, where: Where) -> tuple[int, int] | None:
    lc = getattr(node, "lc", None)
    if lc is None:
        return None
    try:
        if isinstance(node, dict):
            key = _find_key(node, part)
            if key is _MISSING:
                return None
            # An empty value (`ensure:`) has no position of its own; ruamel reports the
            # next token's, which may be on another line. Point at the key instead.
            use_key = where == "key" or node[key] is None
            line, col = lc.key(key) if use_key else lc.value(key)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            line, col = lc.item(part)
        else:
            return None
    except (KeyError, TypeError, AttributeError, IndexError):
        return None
    return line + 1, col + 1


_MISSING = object()


def _find_key(node: dict[Any, Any], part: Any) -> Any:
    if part in node:
        return part
    for key in node:  # pydantic reports keys as it saw them; match on their text
        if str(key) == str(part):
            return key
    return _MISSING


def child(node: Any, part: Any) -> Any:
    if isinstance(node, dict):
        key = _find_key(node, part)
        return None if key is _MISSING else node[key]
    if isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
        return node[part]
    return None
