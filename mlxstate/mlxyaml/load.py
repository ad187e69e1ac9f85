"""Load an ``mlx.yaml``: YAML with positions → schema + semantic checks → ``LoadedSpec``.

Every problem becomes a :class:`Diagnostic` pointing at the offending key or value; all
of them are collected and raised together as one :class:`SpecError`.
"""

from __future__ import annotations

import codecs
import difflib
import hashlib
import types
import typing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mlxstate.errors import Diagnostic, SpecError
from mlxstate.mlxyaml import rules
from mlxstate.mlxyaml.models import Spec
from mlxstate.mlxyaml.plain import to_plain
from mlxstate.mlxyaml.read import read_spec_bytes
from mlxstate.mlxyaml.yamlpos import Where, child, load_yaml, locate
from mlxstate.settings import Environment
from mlxstate.text import describe

__all__ = ["LoadedSpec", "load_spec", "parse_spec"]

TOP_KEYS = ", ".join(Spec.model_fields)


@dataclass(frozen=True)
class LoadedSpec:
    """A valid spec with where it came from (``sha256`` of the exact bytes, for saved plans)."""

    spec: Spec
    path: Path
    display: str
    sha256: str
    document: Any  # ruamel's tree, for pointing at lines in later errors
    text: str = ""  # the text that was validated (what `mlx add`/`rm` edit)

    def position(self, *path: Any) -> tuple[int, int]:
        return locate(self.document, path)


def load_spec(path: Path, env: Environment, display: str | None = None) -> LoadedSpec:
    """Read and validate ``path``; raise :class:`SpecError` (or ``MlxError`` if unreadable
    or over :data:`~mlxstate.mlxyaml.read.MAX_SPEC_BYTES`)."""
    shown = display or str(path)
    raw = read_spec_bytes(path, shown)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        message = "file is not valid UTF-8 text"
        if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            message = "file is UTF-16 text; save it as UTF-8"
        raise SpecError([Diagnostic(shown, line, 1, "", message)]) from None
    # Relative paths inside the file are relative to where the file really lives (a dotfiles
    # repo, when mlx.yaml is a symlink); the path reported is the one that was used.
    loaded = parse_spec(text, file=shown, base_dir=path.resolve().parent, env=env, raw=raw)
    return replace(loaded, path=path.absolute())


def parse_spec(
    text: str, *, file: str, base_dir: Path, env: Environment, raw: bytes | None = None
) -> LoadedSpec:
    """Validate the text of an mlx.yaml (``file`` is only used in messages)."""
    doc = load_yaml(text, file)
    if doc is None:
        raise SpecError(
            [Diagnostic(file, 1, 1, "", "the file is empty; start it with 'version: 1'")]
        )
    if not isinstance(doc, dict):
        kind = "a list" if isinstance(doc, list) else f"a single value ({describe(doc)})"
        line, col = _doc_start(doc, text)
        raise SpecError(
            [
                Diagnostic(
                    file,
                    line,
                    col,
                    "",
                    f"the top level must be a mapping with keys like {TOP_KEYS}; got {kind}",
                )
            ]
        )
    data = to_plain(doc, file)
    diagnostics: list[Diagnostic] = []
    spec: Spec | None = None
    try:
        spec = Spec.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        errors = _drop_missing_explained_by_typo(exc.errors())
        diagnostics += [_from_pydantic(err, doc, data, file) for err in errors]
    for problem in rules.check(data, env, base_dir):
        line, col = locate(doc, problem.path, problem.where)
        diagnostics.append(Diagnostic(file, line, col, _dotted(problem.path, doc), problem.message))
    if diagnostics or spec is None:
        raise SpecError(_dedupe(diagnostics))
    digest = hashlib.sha256(raw if raw is not None else text.encode()).hexdigest()
    return LoadedSpec(
        spec=spec,
        path=base_dir / Path(file).name,
        display=file,
        sha256=digest,
        document=doc,
        text=text,
    )


def _doc_start(doc: Any, text: str) -> tuple[int, int]:
    lc = getattr(doc, "lc", None)
    if lc is not None and lc.line is not None:
        return lc.line + 1, lc.col + 1
    # A scalar document has no position of its own: its first line that is not a comment.
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "---", "%")):
            return number, len(line) - len(line.lstrip()) + 1
    return 1, 1


def _dedupe(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    unique = {(d.line, d.col, d.path, d.message): d for d in diagnostics}
    return sorted(unique.values(), key=lambda d: (d.line, d.col, d.path))


def _dotted(path: tuple[Any, ...] | list[Any], doc: Any) -> str:
    """``models.llama.source``, ``apps.a.models[0]``: [i] only where the YAML has a list."""
    out = ""
    node = doc
    for part in path:
        in_list = isinstance(node, list) and isinstance(part, int)
        out += f"[{part}]" if in_list else (f".{part}" if out else str(part))
        node = child(node, part)
    return out


def _from_pydantic(err: Any, doc: Any, data: Any, file: str) -> Diagnostic:
    loc = _data_loc(err["loc"], data)
    kind = err["type"]
    is_key = bool(loc) and loc[-1] == "[key]"
    if is_key:
        loc = loc[:-1]
    where: Where = "key" if is_key or kind == "extra_forbidden" else "value"
    if kind == "missing":
        message = f"required key '{loc[-1]}' is missing"
        loc = loc[:-1]
        where = "key"
    elif kind == "extra_forbidden":
        message = _unknown_key(loc)
    else:
        message = _message(err, is_key)
    line, col = locate(doc, loc, where) if loc else (1, 1)
    return Diagnostic(file, line, col, _dotted(loc, doc), message)


def _drop_missing_explained_by_typo(errors: list[Any]) -> list[Any]:
    """``sorce:`` gives "unknown key 'sorce'" AND "required key 'source' is missing"; the
    first already says "did you mean 'source'?", so the second is noise."""
    typos = set()
    for err in errors:
        if err["type"] == "extra_forbidden":
            parent = tuple(err["loc"][:-1])
            allowed = _allowed_keys(list(parent))
            for match in difflib.get_close_matches(str(err["loc"][-1]), allowed, n=1):
                typos.add((*parent, match))
    return [e for e in errors if not (e["type"] == "missing" and tuple(e["loc"]) in typos)]


def _data_loc(loc: tuple[Any, ...], data: Any) -> list[Any]:
    """``loc`` without the tags pydantic adds for union members (``"literal['x']"``,
    ``"list[str]"``): a part is kept when it is a key or index present in the data at that
    point (a user's key may contain brackets too), or it is the last (a missing key)."""
    out: list[Any] = []
    node = data
    for i, part in enumerate(loc):
        if part == "[key]":
            out.append(part)
        elif (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        ):
            out.append(part)
            node = node[part]
        elif not (isinstance(part, str) and "[" in part) or i == len(loc) - 1:
            out.append(part)
            node = None
    return out


def _unknown_key(loc: list[Any]) -> str:
    allowed = _allowed_keys(loc[:-1])
    key = str(loc[-1])
    if not allowed:
        return f"unknown key {key!r}"
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown key {key!r}; {hint}expected one of: {', '.join(allowed)}"


def _allowed_keys(loc: list[Any]) -> list[str]:
    """Field names of the model found by walking ``loc`` from ``Spec``."""
    current: Any = Spec
    expect_key = False
    for part in loc:
        if expect_key:
            expect_key = False
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(part))
        if field is None:
            return []
        current, expect_key = _unwrap(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(model type inside ``X | None`` / ``dict[str, X]``, whether a dict key comes next)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(inner[0]) if len(inner) == 1 else (None, False)
    if origin is dict:
        return typing.get_args(annotation)[1], True
    return annotation, False


_BOUNDS = {
    "greater_than_equal": (">=", "ge"),
    "greater_than": (">", "gt"),
    "less_than_equal": ("<=", "le"),
    "less_than": ("<", "lt"),
}
_TYPE_WORDS = {
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "string_type": "a string",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
    "list_type": "a list",
    "byte_size": "a size such as 10GB, 512MiB or a number of bytes",
    "byte_size_unit": "a size with a known unit: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB",
}


def _message(err: Any, is_key: bool) -> str:
    kind = err["type"]
    given = describe(err.get("input"))
    if kind in _TYPE_WORDS:
        return f"expected {_TYPE_WORDS[kind]}, got {given}"
    msg = str(err["msg"])
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind in ("too_short", "too_long"):
        ctx = err.get("ctx", {})
        limit = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        word = "at least" if kind == "too_short" else "at most"
        items = "item" if limit == 1 else "items"
        return f"expected {word} {limit} {items}, got {ctx.get('actual_length')}"
    bound = _BOUNDS.get(kind)
    if bound:
        return f"expected a number {bound[0]} {err['ctx'][bound[1]]}, got {given}"
    if kind in ("literal_error", "enum"):
        return msg.replace("Input should be", "expected", 1) + f", got {given}"
    if msg.startswith("Input should"):
        return (
            msg.replace("Input should", "expected to", 1).replace("to be ", "", 1)
            + f", got {given}"
        )
    if msg.startswith(("List should", "String should")):
        return msg[0].lower() + msg[1:] + f", got {given}"
    return msg[0].lower() + msg[1:]
