"""A strict reader of SwiftBar / xbar plugin output, written from SwiftBar's documented
format and its parser (README "Plugin API"; MenuLineParameters.getParams), independent of
mlxstate's writer: every rendered menu in the tests goes through :func:`check`.

- header: every line before the first line that is exactly ``---``; at least one;
- body: ``---`` separators; an item starting with ``--`` (two dashes per level) belongs to
  the submenu of the item above it, so a level may grow by one step at a time;
- an item: ``TEXT`` or ``TEXT | k=v k2="v 2"``; the text ends at the first ``|``; values
  with a space or a quote are quoted (``"`` or ``'``), a quoted value is closed on the
  same line; keys are known SwiftBar parameters; nothing is left over after the last one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["KNOWN_KEYS", "Item", "Menu", "check", "parse_params"]

KNOWN_KEYS = frozenset(
    {
        "color",
        "sfcolor",
        "font",
        "size",
        "length",
        "trim",
        "ansi",
        "emojize",
        "symbolize",
        "dropdown",
        "alternate",
        "image",
        "templateimage",
        "sfimage",
        "checked",
        "tooltip",
        "refresh",
        "href",
        "bash",
        "terminal",
        "shortcut",
    }
)
_PARAM_KEY = re.compile(r"param[1-9][0-9]*")
_COLOR = re.compile(r"#[0-9a-f]{6}(,#[0-9a-f]{6})?")
_SYMBOL = re.compile(r"[a-z0-9]+(\.[a-z0-9]+)*")
_BOOLEAN_KEYS = ("terminal", "refresh", "dropdown", "symbolize", "emojize", "trim")


class GrammarError(AssertionError):
    pass


@dataclass(frozen=True)
class Item:
    depth: int
    text: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def argv(self) -> list[str]:
        """``bash`` and its ``paramN`` in order: the command a click runs."""
        if "bash" not in self.params:
            return []
        n = sum(1 for key in self.params if _PARAM_KEY.fullmatch(key))
        return [self.params["bash"], *(self.params[f"param{i}"] for i in range(1, n + 1))]


@dataclass(frozen=True)
class Menu:
    header: list[Item]
    body: list[Item | None]  # None: a separator

    @property
    def items(self) -> list[Item]:
        return [item for item in self.body if item is not None]

    def find(self, prefix: str) -> Item:
        found = [item for item in self.items if item.text.startswith(prefix)]
        if len(found) != 1:
            raise AssertionError(f"{len(found)} items start with {prefix!r}: {self.items}")
        return found[0]


def parse_params(raw: str) -> dict[str, str]:
    """SwiftBar's parameter reader, strict: an unclosed quote, a word without ``=``, an
    empty or repeated key is an error instead of being silently dropped."""
    params: dict[str, str] = {}
    pos, n = 0, len(raw)
    while True:
        while pos < n and raw[pos] in " \t":
            pos += 1
        if pos >= n:
            return params
        eq = raw.find("=", pos)
        space = min((i for i in (raw.find(" ", pos), raw.find("\t", pos)) if i >= 0), default=n)
        if eq < 0 or space < eq:
            raise GrammarError(f"a word without '=': {raw[pos:]!r}")
        key = raw[pos:eq].strip().lower()
        if not key or key in params:
            raise GrammarError(f"empty or repeated key {key!r} in {raw!r}")
        pos = eq + 1
        if pos < n and raw[pos] in "\"'":
            quote, pos = raw[pos], pos + 1
            value = []
            while True:
                if pos >= n:
                    raise GrammarError(f"unclosed quote in {raw!r}")
                ch = raw[pos]
                if ch == "\\" and pos + 1 < n:
                    value.append(raw[pos : pos + 2])  # both kept, as SwiftBar does
                    pos += 2
                    continue
                pos += 1
                if ch == quote:
                    break
                value.append(ch)
            params[key] = "".join(value)
            if pos < n and raw[pos] not in " \t":
                raise GrammarError(f"text right after a closing quote in {raw!r}")
        else:
            end = pos
            while end < n and raw[end] not in " \t":
                end += 1
            params[key] = raw[pos:end]
            pos = end


def _item(line: str, depth: int) -> Item:
    title, bar, rest = line[2 * depth :].partition("|")
    text = title.rstrip(" ") if bar else title
    if not text.strip():
        raise GrammarError(f"an item without text: {line!r}")
    if any(not ch.isprintable() for ch in text):
        raise GrammarError(f"a control character in {line!r}")
    if text.startswith("-"):
        raise GrammarError(f"text that reads as more submenu dashes: {line!r}")
    if "\\" in text:
        raise GrammarError(f"a backslash in text (a line break in SwiftBar): {line!r}")
    params = parse_params(rest) if bar else {}
    _check_values(line, params)
    return Item(depth, text, params)


def _check_values(line: str, params: dict[str, str]) -> None:
    for key, value in params.items():
        if key not in KNOWN_KEYS and not _PARAM_KEY.fullmatch(key):
            raise GrammarError(f"unknown key {key!r} in {line!r}")
        if key in ("color", "sfcolor") and not _COLOR.fullmatch(value):
            raise GrammarError(f"colour {value!r} is not #light[,#dark] in {line!r}")
        if key == "sfimage" and not _SYMBOL.fullmatch(value):
            raise GrammarError(f"SF Symbol name {value!r} in {line!r}")
        if key in _BOOLEAN_KEYS and value not in ("true", "false"):
            raise GrammarError(f"{key}={value!r} is not true/false in {line!r}")
        if key in ("size", "length") and not value.isdigit():
            raise GrammarError(f"{key}={value!r} is not a number in {line!r}")
    numbered = sorted(int(k[5:]) for k in params if _PARAM_KEY.fullmatch(k))
    if numbered and ("bash" not in params or numbered != list(range(1, len(numbered) + 1))):
        raise GrammarError(f"paramN without bash, or not 1..N, in {line!r}")
    if "bash" in params and not params["bash"].startswith("/"):
        raise GrammarError(f"bash= is not an absolute path in {line!r}")
    if "dropdown" in params and "bash" in params:
        raise GrammarError(f"dropdown= is for header lines only: {line!r}")


def check(output: str) -> Menu:
    """Parse ``output`` per the grammar above; :class:`GrammarError` on any violation."""
    if not output.endswith("\n"):
        raise GrammarError("output does not end with a newline")
    lines = output[:-1].split("\n")
    if "---" not in lines or lines.index("---") == 0:
        raise GrammarError("no header line before the first ---")
    cut = lines.index("---")
    header = [_item(raw, 0) for raw in lines[:cut]]
    body: list[Item | None] = []
    depth = 0
    for raw in lines[cut + 1 :]:
        if raw == "---":
            body.append(None)
            depth = 0
            continue
        level = (len(raw) - len(raw.lstrip("-"))) // 2
        if level > depth + 1 or (level > 0 and not body) or (level and body[-1] is None):
            raise GrammarError(f"a submenu item without a parent: {raw!r}")
        item = _item(raw, level)
        body.append(item)
        depth = level
    return Menu(header, body)
