"""The dashboard's panels as rich renderables: pure functions of a snapshot document
(docs/dashboard.md) and the trends kept from earlier snapshots. No terminal, no I/O, so
the full-screen view, the one-frame text and the tests all draw the same thing.

Import this module only when drawing: it imports rich.
"""

from __future__ import annotations

import contextlib
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from rich.console import Group, RenderableType
from rich.layout import Layout
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from mlxstate.text import human_bytes, printable, short_path

__all__ = [
    "PANEL_TITLES",
    "Trends",
    "agent_line",
    "allot",
    "duration_text",
    "footer",
    "header",
    "panel",
    "plan_view",
    "screen",
    "sparkline",
    "stacked",
]

BARS = "▁▂▃▄▅▆▇█"
PANEL_TITLES = {
    "models": "models",
    "system": "system",
    "disk": "disk",
    "benchmarks": "benchmarks",
}
# Below this width panels stack in one column; from it on they pair up side by side.
WIDE = 120
_SPARK = 24  # characters of a sparkline
_LEAST_PANEL = 3  # lines: two borders and one of content
_LEVEL = {  # memory pressure and thermal state: how alarming each word is
    "normal": "green",
    "nominal": "green",
    "warn": "yellow",
    "fair": "yellow",
    "serious": "red",
    "critical": "red",
}


def sparkline(
    values: Sequence[float | None], width: int, lo: float | None = None, hi: float | None = None
) -> str:
    """The last ``width`` values as bars, scaled from ``lo`` to ``hi`` (default: their own
    range); a missing value is a space, so a gap in the data shows as a gap."""
    if width <= 0:
        return ""
    tail = list(values)[-width:]
    known = [v for v in tail if v is not None]
    if not known:
        return " " * len(tail)
    low = min(known) if lo is None else lo
    high = max(known) if hi is None else hi
    span = high - low
    out = []
    for v in tail:
        if v is None:
            out.append(" ")
        elif span <= 0:
            out.append(BARS[len(BARS) // 2 - 1])  # flat: a level line, not a floor or a wall
        else:
            frac = min(max((v - low) / span, 0.0), 1.0)
            out.append(BARS[min(int(frac * len(BARS)), len(BARS) - 1)])
    return "".join(out)


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def duration_text(seconds: float) -> str:
    """``45s``, ``4m 10s``, ``3h 5m``, ``2d 4h``: the two largest units."""
    s = max(int(seconds), 0)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _num(value: object) -> float | None:
    """A finite number, else None: JSON may hold NaN, Infinity or an int of 400 digits."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: object) -> str:
    return printable(str(value)) if value is not None else ""


def _cell(text: str) -> Text:
    """A table cell from the document: a plain-string cell would be read as rich markup,
    so a model named ``[/]`` would stop the dashboard and ``[reverse]`` would restyle it."""
    return Text(text)


@dataclass(frozen=True)
class _Point:
    time: datetime
    cpu: float | None
    memory: float | None
    swap: float | None


class Trends:
    """The system figures of earlier snapshots, for sparklines: kept while younger than
    ``window`` (``dashboard.history``) and at most ``limit`` of them (a sparkline shows a
    few dozen; a week at 1 s would otherwise be 600,000 points)."""

    def __init__(self, window: timedelta, limit: int = 240) -> None:
        self.window = window
        self.points: deque[_Point] = deque(maxlen=limit)

    def add(self, snapshot: dict[str, Any]) -> None:
        when = parse_time(snapshot.get("time"))
        if when is None:
            return
        if self.points and when <= self.points[-1].time:
            return  # the same snapshot again (a refresh returned the cached one)
        system = _dict(snapshot.get("system"))
        memory, swap = _dict(system.get("memory")), _dict(system.get("swap"))
        self.points.append(
            _Point(when, _num(system.get("cpu_percent")), _num(memory.get("percent")), _swap(swap))
        )
        while self.points and when - self.points[0].time > self.window:
            self.points.popleft()

    def series(self, name: str) -> list[float | None]:
        return [getattr(p, name) for p in self.points]


def _swap(swap: dict[str, Any]) -> float | None:
    used, total = _num(swap.get("used_bytes")), _num(swap.get("total_bytes"))
    if used is None or not total:
        return None
    return 100.0 * used / total


# -- panels ----------------------------------------------------------------------------------


def _table(*columns: tuple[str, str, int | None]) -> Table:
    """A borderless table whose cells never wrap: too long is cut with an ellipsis."""
    table = Table(box=None, expand=True, pad_edge=False, show_edge=False, header_style="bold")
    for name, justify, width in columns:
        table.add_column(
            name,
            justify="right" if justify == "r" else "left",
            no_wrap=True,
            overflow="ellipsis",
            width=width,
            min_width=width,
            ratio=None if width else 1,
        )
    return table


def _unload_text(model: dict[str, Any], now: datetime | None) -> str:
    expires = parse_time(model.get("expires_at"))
    if expires is None or now is None:
        return "-"
    left = (expires - now).total_seconds()
    if left > 365 * 86400:
        return "never"  # keep_alive -1: Ollama reports a date centuries away
    return duration_text(left) if left > 0 else "now"


def models_body(snapshot: dict[str, Any]) -> tuple[RenderableType, int]:
    ollama = _dict(snapshot.get("ollama"))
    now = parse_time(snapshot.get("time"))
    rows: list[RenderableType] = []
    running = _list(ollama.get("running"))
    if not ollama:
        rows.append(Text("Ollama: not sampled", style="dim"))
    elif not ollama.get("reachable"):
        why = _str(ollama.get("error")) or "not reachable"
        rows.append(Text(f"Ollama at {_str(ollama.get('host'))}: {why}", style="yellow"))
    elif not running:
        rows.append(Text("no model loaded", style="dim"))
    if running:
        table = _table(("RUNNING", "l", None), ("SIZE", "r", 8), ("VRAM", "r", 8))
        table.add_column("UNLOADS IN", justify="right", no_wrap=True, width=10)
        for model in running:
            m = _dict(model)
            table.add_row(
                _cell(_str(m.get("name"))),
                human_bytes(_int(m.get("size_bytes"))),
                human_bytes(_int(m.get("vram_bytes"))),
                _unload_text(m, now),
            )
        rows.append(table)
    rows.append(_drift_text(_dict(snapshot.get("drift"))))
    # The table counts its header and rows; every other part is one line.
    return Group(*rows), len(rows) + (len(running) if running else 0)


def _int(value: object) -> int | None:
    n = _num(value)
    return int(n) if n is not None else None


def _drift_text(drift: dict[str, Any]) -> Text:
    if not drift:
        return Text("declared vs present: not known", style="dim")
    if drift.get("error"):
        return Text(f"drift: {_str(drift['error'])}", style="red")
    declared, present = _int(drift.get("declared")), _int(drift.get("present"))
    text = Text(f"declared {_count(declared)} · present {_count(present)} · ")
    pending = _dict(drift.get("pending"))
    total = _int(pending.get("total"))
    if total is None:
        text.append("drift not known", style="dim")
    elif total == 0:
        text.append("in sync", style="green")
    else:
        kinds = ", ".join(
            f"{v} {k}" for k, v in pending.items() if k != "total" and isinstance(v, int) and v
        )
        text.append(f"{total} pending" + (f" ({kinds})" if kinds else ""), style="yellow")
    return text


def _count(n: int | None) -> str:
    return "?" if n is None else str(n)


def system_body(snapshot: dict[str, Any], trends: Trends) -> tuple[RenderableType, int]:
    system = _dict(snapshot.get("system"))
    memory, swap = _dict(system.get("memory")), _dict(system.get("swap"))
    unavailable = _dict(system.get("unavailable"))
    table = _table(("", "l", 8), ("", "r", 9), ("", "l", _SPARK), ("", "l", None))
    table.show_header = False
    cpu = _num(system.get("cpu_percent"))
    table.add_row("CPU", _percent(cpu), _spark(trends.series("cpu"), 0, 100), "")
    used, total = _int(memory.get("used_bytes")), _int(memory.get("total_bytes"))
    table.add_row(
        "memory",
        _percent(_num(memory.get("percent"))),
        _spark(trends.series("memory"), 0, 100),
        f"{human_bytes(used)} of {human_bytes(total)}" if total else "",
    )
    swap_used, swap_total = _int(swap.get("used_bytes")), _int(swap.get("total_bytes"))
    table.add_row(
        "swap",
        human_bytes(swap_used) if swap_used is not None else "n/a",
        _spark(trends.series("swap"), 0, 100),
        f"of {human_bytes(swap_total)}" if swap_total else "",
    )
    rows: list[RenderableType] = [table, _conditions_text(system)]
    gpu = _dict(system.get("gpu"))
    if gpu:
        rows.append(_gpu_text(gpu))
    if unavailable:
        names = ", ".join(f"{k} ({_str(v)})" for k, v in sorted(unavailable.items()))
        rows.append(Text(f"n/a: {names}", style="dim", no_wrap=True, overflow="ellipsis"))
    return Group(*rows), 3 + len(rows) - 1


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _spark(values: Sequence[float | None], lo: float, hi: float) -> Text:
    return Text(sparkline(values, _SPARK, lo, hi), style="cyan")


def _level(label: str, value: object) -> Text:
    text = Text(f"{label} ")
    if value is None:
        text.append("n/a", style="dim")
    else:
        word = _str(value)
        text.append(word, style=_LEVEL.get(word, ""))
    return text


def _conditions_text(system: dict[str, Any]) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append_text(_level("pressure", system.get("memory_pressure")))
    text.append(" · ")
    text.append_text(_level("thermal", system.get("thermal")))
    power = _dict(system.get("power"))
    text.append(" · power ")
    source, battery = power.get("source"), _num(power.get("battery_percent"))
    if source is None:
        text.append("n/a", style="dim")
    else:
        text.append(_str(source), style="yellow" if source == "battery" else "")
        if battery is not None:
            text.append(f" {battery:.0f}%")
    temps = _dict(system.get("temperatures_c"))
    if temps:
        shown = ", ".join(f"{_str(k)} {v:.0f}°C" for k, v in temps.items() if _num(v) is not None)
        text.append(f" · {shown}")
    return text


def _gpu_text(gpu: dict[str, Any]) -> Text:
    parts = []
    for key, label, unit in (("power_w", "GPU", "W"), ("ane_power_w", "ANE", "W")):
        value = _num(gpu.get(key))
        if value is not None:
            parts.append(f"{label} {value:.1f} {unit}")
    temp = _num(gpu.get("temp_c"))
    if temp is not None:
        parts.append(f"GPU {temp:.0f}°C")
    return Text(" · ".join(parts) or "GPU: no figures", no_wrap=True, overflow="ellipsis")


def disk_body(snapshot: dict[str, Any]) -> tuple[RenderableType, int]:
    stores = [_dict(s) for s in _list(snapshot.get("stores"))]
    if not stores:
        return Text("no store found", style="dim"), 1
    table = _table(
        ("STORE", "l", None),
        ("SIZE", "r", 9),
        ("FREE", "r", 9),
        ("RECLAIMABLE", "r", 11),
        ("MODELS", "r", 6),
    )
    for store in stores:
        path = short_path(_str(store.get("path")))
        kind = _str(store.get("kind"))
        reclaim = _int(store.get("reclaimable_bytes"))
        table.add_row(
            _cell(f"{kind} {path}" if kind else path),
            human_bytes(_int(store.get("size_bytes"))),
            human_bytes(_int(store.get("free_bytes"))),
            Text(human_bytes(reclaim), style="yellow" if reclaim else ""),
            _count(_int(store.get("models"))),
        )
    return table, len(stores) + 1


def benchmarks_body(snapshot: dict[str, Any]) -> tuple[RenderableType, int]:
    runs = [_dict(b) for b in _list(snapshot.get("benchmarks"))]
    if not runs:
        return Text("no benchmark run yet (mlx bench run)", style="dim"), 1
    table = _table(
        ("MODEL", "l", None),
        ("BENCHMARK", "l", 12),
        ("GEN TOK/S", "r", 9),
        ("TTFT", "r", 8),
        ("HISTORY", "l", 16),
    )
    for run in runs:
        latest = _dict(run.get("latest"))
        tps, ttft = _num(latest.get("gen_tps")), _num(latest.get("ttft_ms"))
        status = _str(latest.get("status"))
        history = sorted(
            (_dict(h) for h in _list(run.get("history"))), key=lambda h: _str(h.get("time"))
        )
        figure = (
            Text(f"{tps:.1f}")
            if tps is not None and status in ("ok", "")
            else Text(status or "-", style="red" if status else "dim")
        )
        table.add_row(
            _cell(_str(run.get("model"))),
            _cell(_str(run.get("benchmark"))),
            figure,
            f"{ttft:.0f} ms" if ttft is not None else "-",
            Text(sparkline([_num(h.get("gen_tps")) for h in history], 16), style="cyan"),
        )
    return table, len(runs) + 1


def panel_body(name: str, snapshot: dict[str, Any], trends: Trends) -> tuple[RenderableType, int]:
    """One panel's content and how many lines it would like."""
    if name == "models":
        return models_body(snapshot)
    if name == "system":
        return system_body(snapshot, trends)
    if name == "disk":
        return disk_body(snapshot)
    if name == "benchmarks":
        return benchmarks_body(snapshot)
    return Text(f"unknown panel {name!r}", style="red"), 1


def panel(name: str, body: RenderableType, height: int | None = None) -> Panel:
    return Panel(
        body,
        title=PANEL_TITLES.get(name, name),
        title_align="left",
        border_style="blue",
        height=height,
        padding=(0, 1),
    )


# -- header, agent, footer -------------------------------------------------------------------


def header(snapshot: dict[str, Any] | None, error: str | None = None) -> Text:
    text = Text("mlx dashboard", style="bold", no_wrap=True, overflow="ellipsis")
    if snapshot is None:
        text.append(" · sampling…", style="dim")
    else:
        host = _dict(snapshot.get("host"))
        if host.get("name"):
            text.append(f" · {_str(host['name'])}")
        when = parse_time(snapshot.get("time"))
        with contextlib.suppress(OverflowError, OSError):  # year 1 or 9999 in local time
            text.append(f" · {when.astimezone().strftime('%H:%M:%S')}" if when else "")
    if error:
        text.append(f" · {printable(error)}", style="red")
    return text


def _conditions(agent: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {_str(c.get("type")): c for c in (_dict(x) for x in _list(agent.get("conditions")))}


def agent_line(snapshot: dict[str, Any] | None) -> Text:
    """The agent's state in one line. Suspended is yellow and stalled red, in words as
    well as colors (NO_COLOR); a suspended agent is never shown as ready."""
    text = Text("agent ", no_wrap=True, overflow="ellipsis")
    agent = _dict((snapshot or {}).get("agent"))
    if not agent:
        return text.append("not known", style="dim")
    conds = _conditions(agent)
    true = {k for k, c in conds.items() if c.get("status") == "True"}
    suspended = bool(agent.get("suspended")) or "Suspended" in true
    states: list[tuple[str, str]] = []
    if not agent.get("running"):
        states.append(("not running", "dim"))
    if "Stalled" in true:
        states.append((f"stalled ({_int(agent.get('failures')) or 0} failures)", "bold red"))
    if suspended:
        states.append(("suspended", "bold yellow"))
    if agent.get("running") and not suspended:
        if "Reconciling" in true:
            states.append(("reconciling", "cyan"))
        elif "Ready" in true:
            states.append(("ready", "green"))
        else:
            reason = _str(conds.get("Ready", {}).get("reason")) or "starting"
            states.append((f"not ready: {reason}", "yellow"))
    for i, (word, style) in enumerate(states):
        text.append(" · " if i else "")
        text.append(word, style=style)
    last = _dict(agent.get("last_attempt"))
    if last.get("result"):
        text.append(f" · last run {_str(last['result'])}")
    nxt, now = parse_time(agent.get("next_run")), parse_time((snapshot or {}).get("time"))
    if nxt is not None and now is not None and agent.get("running") and not suspended:
        text.append(f" · next in {duration_text((nxt - now).total_seconds())}")
    stalled = conds.get("Stalled", {})
    if "Stalled" in true and stalled.get("message"):
        text.append(f" · {_str(stalled['message'])}", style="red")
    return text


def footer(plan_shown: bool = False) -> Text:
    if plan_shown:
        return Text("any key: back", style="reverse", no_wrap=True)
    text = Text(no_wrap=True, overflow="ellipsis")
    for i, (key, what) in enumerate((("q", "quit"), ("r", "refresh"), ("p", "plan"))):
        text.append("  " if i else "")
        text.append(f" {key} ", style="reverse")
        text.append(f" {what}")
    return text


# -- whole frames ----------------------------------------------------------------------------


def allot(wanted: Sequence[int], available: int, least: int = _LEAST_PANEL) -> list[int]:
    """Heights for stacked panels: what each wants when everything fits (the last takes the
    rest of the screen), else the tallest shrink first, to ``least`` each; panels that do
    not get even ``least`` lines get 0 (not drawn)."""
    n = len(wanted)
    if n == 0:
        return []
    shown = min(n, max(available, 0) // least)
    sizes = [max(w, least) for w in wanted[:shown]] + [0] * (n - shown)
    while sum(sizes) > available:
        tallest = max(range(shown), key=lambda i: sizes[i])
        sizes[tallest] -= 1
    if shown and sum(sizes) < available:
        sizes[shown - 1] += available - sum(sizes)
    return sizes


def stacked(snapshot: dict[str, Any], panels: Iterable[str], trends: Trends) -> Group:
    """Every panel at its natural height, one under the other (text output, no screen)."""
    parts: list[RenderableType] = [agent_line(snapshot)]
    parts += [panel(name, panel_body(name, snapshot, trends)[0]) for name in panels]
    return Group(*parts)


def screen(
    snapshot: dict[str, Any] | None,
    panels: Sequence[str],
    trends: Trends,
    *,
    width: int,
    height: int,
    error: str | None = None,
) -> Layout:
    """One full screen of ``width`` x ``height``: header, agent line, the panels (in
    pairs side by side when wide enough), the keys. Nothing wraps: every line is cut to
    the width and every panel to the height it is given."""
    root = Layout()
    top = [Layout(header(snapshot, error), size=1), Layout(agent_line(snapshot), size=1)]
    body = Layout(name="body")
    root.split_column(*top, body, Layout(footer(), size=1))
    if snapshot is None:
        body.update(Text(""))
        return root
    bodies = [panel_body(name, snapshot, trends) for name in panels]
    available = max(height - 3, 0)
    if available < _LEAST_PANEL:
        # Not one panel fits. A layout whose children are all hidden draws itself as its
        # own content: rich recurses until the stack runs out.
        body.update(Text("enlarge the terminal to see the panels", style="dim", no_wrap=True))
        return root
    if width >= WIDE and len(bodies) > 1:
        pairs = [list(range(len(bodies)))[i : i + 2] for i in range(0, len(bodies), 2)]
        sizes = allot([max(bodies[i][1] + 2 for i in pair) for pair in pairs], available)
        rows = []
        for pair, size in zip(pairs, sizes, strict=True):
            row = Layout(size=size, visible=size > 0)
            cells = [Layout(panel(panels[i], bodies[i][0])) for i in pair]
            if len(cells) == 1:
                cells.append(Layout(Text("")))
            row.split_row(*cells)
            rows.append(row)
        body.split_column(*rows)
    else:
        sizes = allot([b[1] + 2 for b in bodies], available)
        body.split_column(
            *(
                Layout(panel(name, content), size=size, visible=size > 0)
                for name, (content, _), size in zip(panels, bodies, sizes, strict=True)
            )
        )
    return root


def plan_view(snapshot: dict[str, Any] | None, text: str | None) -> Layout:
    """The pending changes: the plan's text when it is known, else the drift counts."""
    root = Layout()
    lines: list[RenderableType] = [_drift_text(_dict((snapshot or {}).get("drift")))]
    if text is None:
        lines.append(Text("computing the plan…", style="dim"))
    else:
        lines.append(Text(printable_block(text), no_wrap=True, overflow="ellipsis"))
    root.split_column(
        Layout(Panel(Group(*lines), title="plan", title_align="left", border_style="blue")),
        Layout(footer(plan_shown=True), size=1),
    )
    return root


def printable_block(text: str) -> str:
    """Several lines, each safe for a terminal (escape sequences shown, not run)."""
    return "\n".join(printable(line) for line in text.splitlines())
