"""One dashboard frame as plain text (`mlx dashboard --once`): the panels of
``dashboard.panels`` in that order, then the agent line. No colours, no terminal needed;
the render helpers (sizes, durations, sparklines) serve the full-screen view too."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from mlxstate.text import human_bytes, printable, short_path

__all__ = ["PANEL_TITLES", "render_text", "sparkline", "until"]

PANEL_TITLES = {"models": "Models", "system": "System", "disk": "Disk", "benchmarks": "Benchmarks"}
_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[float], width: int = 16) -> str:
    """The last ``width`` values as bars, lowest to highest of them."""
    points = [v for v in values if v is not None][-width:]
    if not points:
        return ""
    low, high = min(points), max(points)
    span = high - low
    if span <= 0:
        return _BARS[len(_BARS) // 2] * len(points)
    return "".join(_BARS[round((v - low) / span * (len(_BARS) - 1))] for v in points)


def _seconds(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def until(iso: str | None, now_iso: str | None) -> str:
    """How long from the snapshot's time to ``iso``: ``4m``, ``1h05m``, ``now``, ``-``."""
    then, now = _seconds(iso), _seconds(now_iso)
    if then is None or now is None:
        return "-"
    left = int(then - now)
    if left <= 0:
        return "now"
    if left < 60:
        return f"{left}s"
    if left < 3600:
        return f"{left // 60}m"
    if left > 86400 * 365:  # Ollama's "keep alive forever"
        return "never"
    return f"{left // 3600}h{left % 3600 // 60:02d}m"


def _pct(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}%"


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    rows = [[printable(cell) for cell in row] for row in rows]  # escaped before measuring
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return ("  " + "   ".join(parts)).rstrip()

    return [line(columns), *(line(r) for r in rows)]


def _models(doc: dict[str, Any]) -> list[str]:
    ollama = doc["ollama"]
    if ollama["reachable"]:
        out = [f"  Ollama {ollama['version']} at {ollama['host']}"]
    else:
        out = [f"  Ollama not reachable at {ollama['host']}: {ollama['error']}"]
    rows = [
        (
            r["name"],
            human_bytes(r["size_bytes"]),
            human_bytes(r["vram_bytes"]),
            str(r["context_length"]) if r["context_length"] else "-",
            until(r["expires_at"], doc["time"]),
        )
        for r in ollama["running"]
    ]
    if rows:
        out += _table(("RUNNING", "SIZE", "VRAM", "CONTEXT", "UNLOADS IN"), rows, {1, 2, 3})
    elif ollama["reachable"]:
        out.append("  no model loaded")
    out.append("  " + drift_line(doc["drift"]))
    return out


def drift_line(drift: dict[str, Any]) -> str:
    """``declared 5, present 4, pending 2 (ollama.pull 1, ...)`` and where it comes from."""
    if drift["declared"] is None:
        return f"drift: unknown ({drift['error'] or 'no plan yet'})"
    pending = dict(drift["pending"] or {})
    total = pending.pop("total", 0)
    kinds = ", ".join(f"{kind} {n}" for kind, n in pending.items())
    text = f"declared {drift['declared']}, present {drift['present']}, pending {total}"
    text += f" ({kinds})" if kinds else ""
    where = {"agent": "the agent's last reconcile", "plan": "a plan"}.get(drift["source"], "?")
    text += f"  [from {where}, {drift['at']}]"
    return text + (f"  error: {drift['error']}" if drift["error"] else "")


def _system(doc: dict[str, Any]) -> list[str]:
    s = doc["system"]
    mem, swap = s["memory"], s["swap"]
    out = [
        f"  CPU {_pct(s['cpu_percent'])}   memory {_pct(mem['percent'])}"
        f" ({human_bytes(mem['used_bytes'])} of {human_bytes(mem['total_bytes'])},"
        f" {human_bytes(mem['available_bytes'])} available)"
        f"   pressure {s['memory_pressure'] or 'unknown'}",
        "  swap "
        + (
            f"{human_bytes(swap['used_bytes'])} of {human_bytes(swap['total_bytes'])}"
            if swap
            else "unknown"
        )
        + f"   thermal {s['thermal'] or 'unknown'}   power {_power(s['power'])}",
    ]
    if s["temperatures_c"]:
        temps = ", ".join(f"{k} {v:.1f} °C" for k, v in s["temperatures_c"].items())
        out.append(f"  temperatures: {temps}")
    if s["gpu"]:
        gpu = s["gpu"]
        parts = [
            f"{label} {gpu[key]:.1f}{unit}"
            for label, key, unit in (
                ("GPU", "power_w", " W"),
                ("GPU", "temp_c", " °C"),
                ("ANE", "ane_power_w", " W"),
            )
            if gpu.get(key) is not None
        ]
        out.append("  " + ", ".join(parts))
    for key, why in s["unavailable"].items():
        out.append(f"  {key} n/a: {why}")
    return out


def _power(power: dict[str, Any]) -> str:
    if power["source"] is None:
        return "unknown"
    battery = power["battery_percent"]
    return str(power["source"]) + (f" (battery {battery:.0f}%)" if battery is not None else "")


def _disk(doc: dict[str, Any]) -> list[str]:
    if not doc["stores"]:
        return ["  no store found"]
    rows = [
        (
            st["kind"] if st["kind"] != "app" else f"app {st.get('name', '')}",
            short_path(st["path"]),
            human_bytes(st["size_bytes"]),
            human_bytes(st["free_bytes"]),
            human_bytes(st["reclaimable_bytes"]),
            str(st["models"]),
        )
        for st in doc["stores"]
    ]
    scanned = doc["stores"][0]["scanned_at"]
    return [
        *_table(("STORE", "PATH", "SIZE", "FREE", "RECLAIMABLE", "MODELS"), rows, {2, 3, 4, 5}),
        f"  scanned {scanned}",
    ]


def _benchmarks(doc: dict[str, Any]) -> list[str]:
    if not doc["benchmarks"]:
        return ["  no benchmark run in the history window (`mlx bench run`)"]
    rows = []
    for b in doc["benchmarks"]:
        latest = b["latest"]
        gen = latest["gen_tps"]
        rows.append(
            (
                b["model"],
                b["benchmark"],
                f"{gen:.1f} tok/s" if gen is not None else latest["status"],
                f"{latest['ttft_ms']:.0f} ms" if latest["ttft_ms"] is not None else "-",
                latest["time"] or "-",
                sparkline([h["gen_tps"] for h in b["history"]]),
            )
        )
    return _table(("MODEL", "BENCHMARK", "LATEST", "TTFT", "AT", "HISTORY"), rows, {2, 3})


_PANELS = {"models": _models, "system": _system, "disk": _disk, "benchmarks": _benchmarks}


def render_text(doc: dict[str, Any], panels: Sequence[str]) -> str:
    from mlxstate.cli.status import agent_line

    host = doc["host"]
    out = [f"mlx dashboard  {doc['time']}  {host['name']} ({host['os']}, {host['arch']})"]
    for panel in panels:
        out += ["", PANEL_TITLES[panel], *_PANELS[panel](doc)]
    out += ["", agent_line(doc["agent"]) if doc["agent"] else "Agent: unknown"]
    # A path or a message may hold an escape sequence (an app folder named in a shared
    # mlx.yaml): shown escaped, never run by the terminal.
    return "\n".join(printable(line) for line in out) + "\n"
