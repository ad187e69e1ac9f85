"""Lines of SwiftBar / xbar plugin output, escaped so no text can break the format.

The grammar followed (SwiftBar's README, "Plugin API", and its parser; xbar's plugin
format is the same minus SwiftBar's extra parameters):

- Output is split on ``\\n``. Every line before the first line that is exactly ``---``
  is a *header* line (shown in the menu bar; several would be cycled). Every later ``---``
  is a separator in the dropdown.
- A body line starting with ``--`` is an item of the submenu of the item above it; two
  more dashes per level (``----`` is a submenu of a submenu).
- A line is ``TEXT`` or ``TEXT | key=value key2=value2 ...``: the text is everything
  before the FIRST ``|``; after it, parameters are separated by spaces. A value with a
  space is quoted, ``key="a b"`` or ``key='a b'``; inside quotes a backslash keeps itself
  and the next character (so it cannot end a value), and there is no way to write the
  quote character itself. Keys are case-insensitive.
- Parameters used here: ``color`` (``#light,#dark``: one colour per appearance),
  ``sfimage`` (an SF Symbol name), ``size``, ``font``, ``tooltip``, ``dropdown=false``
  (header only: not repeated in the menu), ``symbolize=false`` / ``emojize=false``
  (``:name:`` in the text stays text), ``bash`` (absolute path of the program) with
  ``param1`` … ``paramN`` (its arguments, in order), ``terminal=true|false`` (in a Terminal
  window, or in the background), ``refresh=true`` (run the plugin again after the click),
  ``href`` (a URL).

Escaping, so a model name or a path can never change the menu's structure:

- text: control characters (a newline would start a new line) become spaces, ``|``
  becomes ``¦`` (the first ``|`` ends the text), a backslash becomes U+29F5 (SwiftBar reads
  ``\\n`` in a header as a line break), a leading ``-`` becomes U+2010 (dashes at the start
  of a line mean "submenu" or "separator"), and the text is cut at 120 characters;
- values: one line only; quoted with ``"`` (or ``'`` when the value holds ``"``) when
  they hold a space, a quote or are empty. A value that cannot be written (both quote
  characters, or a backslash before the closing quote) raises :class:`Unrepresentable`,
  and the caller leaves that item out instead of writing a broken one.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["MAX_TEXT", "Unrepresentable", "line", "param_value", "text"]

MAX_TEXT = 120
_BAD_IN_VALUE = frozenset("\n\r\x00")


class Unrepresentable(ValueError):
    """A parameter value the plugin format has no way to write."""


def text(raw: str, limit: int = MAX_TEXT) -> str:
    """``raw`` as the text of one menu item."""
    out = []
    for ch in raw:
        if ch == "|":
            out.append("¦")
        elif ch == "\\":
            out.append("\u29f5")  # reverse solidus operator
        elif not ch.isprintable() or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(" ")  # newlines, tabs, escapes, lone surrogates
        else:
            out.append(ch)
    clean = " ".join("".join(out).split())  # SwiftBar trims; runs of spaces read as one
    if clean.startswith("-"):
        clean = "\u2010" + clean[1:]  # hyphen
    if len(clean) > limit:
        clean = clean[: limit - 1] + "…"
    return clean


def param_value(value: str) -> str:
    """``value`` as it is written after ``key=``."""
    if any(ch in _BAD_IN_VALUE for ch in value) or not value.isprintable():
        raise Unrepresentable("a value must be one printable line")
    needs_quotes = value == "" or any(ch in value for ch in " \t\"'")
    if not needs_quotes:
        return value
    quote = '"' if '"' not in value else "'"
    if quote in value:
        raise Unrepresentable("a value may not hold both quote characters")
    if value.endswith("\\"):
        raise Unrepresentable("a quoted value may not end with a backslash")
    return f"{quote}{value}{quote}"


def line(title: str, params: Mapping[str, str] | None = None, depth: int = 0) -> str:
    """One output line: ``depth`` submenu levels, the escaped ``title``, its parameters.

    Raises :class:`Unrepresentable` when a parameter value cannot be written."""
    head = "--" * depth + text(title)
    params = dict(params or {})
    if ":" in head:  # ``:cpu:`` would become a symbol, ``:tada:`` an emoji
        params.update(symbolize="false", emojize="false")
    if not params:
        return head
    pairs = " ".join(f"{key}={param_value(value)}" for key, value in params.items())
    return f"{head} | {pairs}"
