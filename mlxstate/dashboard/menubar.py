"""`mlx menubar`: the snapshot document (docs/dashboard.md) as SwiftBar / xbar plugin output.

:func:`render` is pure: a snapshot (any JSON value: it may come from a damaged file) in,
plugin text out (the line grammar is in :mod:`mlxstate.dashboard.swiftbar`). A figure the
snapshot does not have, or has with the wrong type, is shown as "unknown", never as 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mlxstate.dashboard.swiftbar import Unrepresentable, line
from mlxstate.text import human_bytes, short_path

__all__ = ["UNKNOWN", "render", "render_error"]

UNKNOWN = "unknown"
SEPARATOR = "---"

# (light appearance, dark appearance): Apple's system colours.
_RED = "#d70015,#ff453a"
_ORANGE = "#c93400,#ff9f0a"
_GREEN = "#248a3d,#30d158"
_GREY = "#6e6e73,#98989d"


# -- reading an untrusted document ------------------------------------------------------


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _items(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int of 400 digits: JSON allows it, no figure is that big
        return None
    return number if math.isfinite(number) else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _size(value: Any) -> str:
    n = _num(value)
    return human_bytes(int(n)) if n is not None and n >= 0 else UNKNOWN


def _time(value: Any) -> datetime | None:
    text = _str(value)
    if text is None or len(text) > 64:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def _span(seconds: float) -> str:
    s = abs(int(seconds))
    if s < 90:
        return f"{s}s"
    if s < 90 * 60:
        return f"{round(s / 60)}m"
    if s < 36 * 3600:
        return f"{round(s / 3600)}h"
    return f"{round(s / 86400)}d"


def _relative(value: Any, now: datetime | None) -> str | None:
    """ "in 4m" / "2h ago" against the snapshot's own time (no clock: output is stable)."""
    when = _time(value)
    if when is None or now is None:
        return None
    delta = (when - now).total_seconds()
    return f"in {_span(delta)}" if delta >= 0 else f"{_span(delta)} ago"


def _tps(value: Any) -> str:
    n = _num(value)
    return f"{n:.1f} tok/s" if n is not None and n >= 0 else f"{UNKNOWN} tok/s"


# -- the header -------------------------------------------------------------------------


def _condition(agent: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in _items(agent.get("conditions")):
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def _pending(drift: dict[str, Any]) -> int | None:
    total = _num(_obj(drift.get("pending")).get("total"))
    return int(total) if total is not None and total >= 0 else None


def _ollama_key(name: str) -> str:
    """``ollama://registry.ollama.ai/library/qwen2.5`` and ``qwen2.5:latest`` alike: the
    name as Ollama's ``/api/ps`` shows it (default registry, namespace and tag dropped or
    added as Ollama does)."""
    key = name.strip().lower().removeprefix("ollama://")
    key = key.removeprefix("registry.ollama.ai/").removeprefix("library/")
    return key if ":" in key.rsplit("/", 1)[-1] else f"{key}:latest"


def _bench_for(name: str, benchmarks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The benchmark entry of a running Ollama model: by its declared name or its source."""
    key = _ollama_key(name)
    for bench in benchmarks:
        if bench.get("model") == name:
            return bench
        source = _str(bench.get("source"))
        if source and source.startswith("ollama://") and _ollama_key(source) == key:
            return bench
    return None


def _header(doc: dict[str, Any]) -> str:
    agent = _obj(doc.get("agent"))
    running = _items(_obj(doc.get("ollama")).get("running"))
    pending = _pending(_obj(doc.get("drift")))
    parts: list[str] = []
    if running:
        name = _str(running[0].get("name")) or UNKNOWN
        bench = _bench_for(name, _items(doc.get("benchmarks")))
        tps = _num(_obj(bench.get("latest")).get("gen_tps")) if bench else None
        parts.append(f"{name} {tps:.0f} tok/s" if tps is not None and tps >= 0 else name)
        if len(running) > 1:
            parts.append(f"+{len(running) - 1}")
    if pending:
        parts.append(f"⚠ {pending}")
    if _condition(agent, "Stalled"):
        parts.append("stalled")
        image, color = "exclamationmark.octagon", _RED
    elif agent.get("suspended") is True:
        parts.append("suspended")
        image, color = "pause.circle", _GREY
    elif pending:
        image, color = "exclamationmark.triangle", _ORANGE
    else:
        image, color = ("cpu" if running else "checkmark.circle"), ""
    params = {"sfimage": image, "dropdown": "false"}
    if color:
        params["color"] = color
    return line(" ".join(parts) or "mlx", params)


# -- the menu ---------------------------------------------------------------------------


def _section(title: str) -> str:
    return line(title, {"size": "12", "color": _GREY})


def _models(doc: dict[str, Any], now: datetime | None) -> list[str]:
    ollama = _obj(doc.get("ollama"))
    out = [_section("Running models")]
    if ollama.get("reachable") is False:
        error = _str(ollama.get("error")) or "not reachable"
        out.append(line(f"Ollama: {error}", {"color": _ORANGE, "sfimage": "bolt.horizontal"}))
    running = _items(ollama.get("running"))
    for model in running[:20]:
        name = _str(model.get("name")) or UNKNOWN
        unloads = _relative(model.get("expires_at"), now)
        text = f"{name} · {_size(model.get('vram_bytes'))} VRAM · unloads {unloads or UNKNOWN}"
        out.append(line(text, {"sfimage": "cpu"}))
        out.append(line(f"Size {_size(model.get('size_bytes'))}", depth=1))
        context = _num(model.get("context_length"))
        out.append(line(f"Context {int(context) if context is not None else UNKNOWN}", depth=1))
    if not running and ollama.get("reachable") is not False:
        out.append(line("none loaded", {"color": _GREY}))
    return out


def _drift(doc: dict[str, Any]) -> list[str]:
    drift = _obj(doc.get("drift"))
    declared, present = _num(drift.get("declared")), _num(drift.get("present"))
    shown = [str(int(n)) if n is not None else UNKNOWN for n in (present, declared)]
    out = [_section("Drift"), line(f"Present {shown[0]} of {shown[1]} declared")]
    pending = _pending(drift)
    counts = _obj(drift.get("pending"))
    detail = ", ".join(
        f"{int(n)} {kind}"
        for kind, value in sorted(counts.items())
        if kind != "total" and (n := _num(value)) is not None and n > 0
    )
    if pending is None:
        out.append(line(f"Pending changes: {UNKNOWN}", {"color": _GREY}))
    elif pending:
        text = f"Pending changes: {pending}" + (f" ({detail})" if detail else "")
        out.append(line(text, {"color": _ORANGE, "sfimage": "exclamationmark.triangle"}))
    else:
        out.append(line("In sync", {"color": _GREEN, "sfimage": "checkmark.circle"}))
    error = _str(drift.get("error"))
    if error:
        out.append(line(f"Plan failed: {error}", {"color": _RED}))
    return out


def _disk(doc: dict[str, Any]) -> list[str]:
    out = [_section("Disk")]
    stores = _items(doc.get("stores"))
    for store in stores[:20]:
        kind = _str(store.get("kind")) or "store"
        path = _str(store.get("path"))
        out.append(line(f"{kind} {_size(store.get('size_bytes'))}", {"sfimage": "internaldrive"}))
        if path:
            out.append(line(short_path(path), depth=1))
        out.append(line(f"Free {_size(store.get('free_bytes'))}", depth=1))
        out.append(line(f"Reclaimable {_size(store.get('reclaimable_bytes'))}", depth=1))
    if not stores:
        out.append(line(f"stores: {UNKNOWN}", {"color": _GREY}))
    return out


def _benchmarks(doc: dict[str, Any], now: datetime | None) -> list[str]:
    benches = _items(doc.get("benchmarks"))
    if not benches:
        return []
    out = [_section("Last benchmark")]
    for bench in benches[:20]:
        model = _str(bench.get("model")) or UNKNOWN
        latest = _obj(bench.get("latest"))
        status = _str(latest.get("status"))
        when = _relative(latest.get("time"), now)
        text = f"{model} {_tps(latest.get('gen_tps'))}"
        if status and status != "ok":
            text = f"{model} {status}"
        if when:
            text += f" · {when}"
        out.append(line(text, {"sfimage": "speedometer"}))
        ttft = _num(latest.get("ttft_ms"))
        out.append(line(f"Benchmark {_str(bench.get('benchmark')) or UNKNOWN}", depth=1))
        first = f"{ttft:.0f} ms" if ttft is not None and ttft >= 0 else UNKNOWN
        out.append(line(f"First token {first}", depth=1))
    return out


def _agent(doc: dict[str, Any]) -> list[str]:
    agent = _obj(doc.get("agent"))
    stalled = _condition(agent, "Stalled")
    if stalled:
        why = _str(stalled.get("message")) or _str(stalled.get("reason")) or UNKNOWN
        image = "exclamationmark.octagon"
        return [line(f"Agent stalled: {why}", {"color": _RED, "sfimage": image})]
    if agent.get("suspended") is True:
        return [line("Agent suspended", {"color": _GREY, "sfimage": "pause.circle"})]
    if agent.get("running") is True:
        return [line("Agent running", {"color": _GREEN, "sfimage": "checkmark.circle"})]
    return [line("Agent not running", {"color": _GREY, "sfimage": "moon.zzz"})]


def _action(title: str, argv: Sequence[str], terminal: bool, image: str) -> str | None:
    params = {"bash": argv[0]}
    params.update({f"param{i}": arg for i, arg in enumerate(argv[1:], start=1)})
    params["terminal"] = "true" if terminal else "false"
    if not terminal:
        params["refresh"] = "true"  # show the new state once the command is done
    params["sfimage"] = image
    try:
        return line(title, params)
    except Unrepresentable:
        return None  # a path the format cannot carry: leave the action out, never break it


def _actions(doc: dict[str, Any], mlx: Sequence[str], spec_path: str | None) -> list[str]:
    file_args = ["-f", spec_path] if spec_path else []
    agent = _obj(doc.get("agent"))
    wanted = [
        ("Open dashboard", ["dashboard"], True, "gauge"),
        ("Plan…", ["plan"], True, "list.bullet"),
        ("Apply…", ["apply"], True, "play"),
        ("Reconcile now", ["reconcile"], False, "arrow.triangle.2.circlepath"),
    ]
    if agent.get("suspended") is True:
        wanted.append(("Resume agent", ["resume"], False, "play.circle"))
    else:
        wanted.append(("Suspend agent", ["suspend"], False, "pause.circle"))
    out = [_section("Actions")]
    for title, words, terminal, image in wanted:
        item = _action(title, [*mlx, *words, *file_args], terminal, image)
        out.append(item if item else line(f"{title}: path not usable here", {"color": _GREY}))
    out.append(line("Refresh", {"refresh": "true", "sfimage": "arrow.clockwise"}))
    return out


def render(
    snapshot: Any, mlx_path: str | Sequence[str], spec_path: str | None, origin: str = ""
) -> str:
    """Plugin output for ``snapshot``. ``mlx_path``: the absolute ``mlx`` (or the argv that
    starts it); ``spec_path``: the absolute mlx.yaml the actions pass with ``-f``;
    ``origin``: where the snapshot came from, shown at the bottom."""
    mlx = [mlx_path] if isinstance(mlx_path, str) else list(mlx_path)
    doc = _obj(snapshot)
    now = _time(doc.get("time"))
    lines = [_header(doc), SEPARATOR, *_models(doc, now), SEPARATOR, *_drift(doc)]
    lines += [SEPARATOR, *_disk(doc)]
    bench = _benchmarks(doc, now)
    if bench:
        lines += [SEPARATOR, *bench]
    lines += [SEPARATOR, *_agent(doc), SEPARATOR, *_actions(doc, mlx, spec_path)]
    stamp = _str(doc.get("time"))
    footer = f"Snapshot {stamp if stamp and _time(stamp) else UNKNOWN}"
    lines += [SEPARATOR, line(footer + (f" ({origin})" if origin else ""), {"size": "11"})]
    return "\n".join(lines) + "\n"


def render_error(
    problem: str, mlx_path: str | Sequence[str] = (), spec_path: str | None = None
) -> str:
    """The header "mlx ⚠" with ``problem`` in the menu: when there is no snapshot at all."""
    lines = [
        line("mlx ⚠", {"sfimage": "exclamationmark.triangle", "color": _ORANGE}),
        SEPARATOR,
        line(problem, {"color": _RED}),
    ]
    mlx = [mlx_path] if isinstance(mlx_path, str) else list(mlx_path)
    if mlx:
        lines += [SEPARATOR, *_actions({}, mlx, spec_path)]
    return "\n".join(lines) + "\n"
