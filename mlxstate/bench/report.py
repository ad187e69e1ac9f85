"""``mlx bench report --html``: one self-contained HTML page (docs/benchmarks.md, "Report").

Hand-written inline SVG, no script, no network: a Content-Security-Policy forbids every
fetch and every script, so even a page opened from a mail attachment loads nothing. Every
string from a record (model and benchmark names are user input) goes through ``_e``."""

from __future__ import annotations

import html
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlxstate.bench.compare import compare_runs, identity_changed
from mlxstate.bench.record import RunRecord
from mlxstate.bench.stats import Stats, median
from mlxstate.text import iso_time

__all__ = ["MEDIAN_WINDOW", "render_report"]

MEDIAN_WINDOW = 5  # the line is the median of each run and the (up to) 4 ok runs before it
_W, _H = 540, 240
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 24, 28, 40

_CSS = """
body{font:14px/1.45 -apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:24px;
color:#1d2330;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px}h3{font-size:15px}
.meta,.empty{color:#5a6272}
table{border-collapse:collapse;margin:8px 0}
th,td{padding:4px 10px;border-bottom:1px solid #e3e6ea;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.charts{display:flex;flex-wrap:wrap;gap:16px}
svg.chart{border:1px solid #e3e6ea;background:#fbfcfd}
svg text{font-size:11px;fill:#5a6272}
svg .title{font-size:13px;fill:#1d2330}
.point{fill:#2f6fb3}.median{fill:none;stroke:#e08a1e;stroke-width:2}
.change line{stroke:#9a3fb8;stroke-dasharray:4 3}.change text{fill:#9a3fb8}
.grid{stroke:#e3e6ea}.slower{color:#b3261e}.faster{color:#1e7b34}
"""


@dataclass(frozen=True, slots=True)
class _Metric:
    key: str  # "gen_tps" | "ttft_ms"
    title: str
    unit: str


_METRICS = (
    _Metric("gen_tps", "Generation", "tok/s"),
    _Metric("ttft_ms", "Time to first token", "ms"),
)


def render_report(runs: Sequence[RunRecord], *, generated: float, scope: str = "all runs") -> str:
    """The page for ``runs`` (oldest first): a summary table, then per (model, benchmark)
    a chart of generation tok/s and one of TTFT over time, and the runs that failed."""
    series = _series(runs)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # No fetch, no script, no frame: the page is data, whatever a record contains.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>mlx bench report</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>mlx bench report</h1>",
        f'<p class="meta">Generated {_e(iso_time(generated) or "")} · {_e(scope)} · '
        f"{len(runs)} run{'s' if len(runs) != 1 else ''}</p>",
    ]
    if not series:
        parts.append(
            '<p class="empty" id="no-runs">No benchmark runs yet. Declare benchmarks in '
            "mlx.yaml and run <code>mlx bench run</code>; its runs show up here.</p>"
        )
    else:
        parts.append(_summary(series))
        parts.append(
            f'<p class="meta">Points: each ok run (median of its warm samples; hover for the '
            f"run). Line: running median of the last {MEDIAN_WINDOW} ok runs. Dashed line: "
            "the engine version or the model changed.</p>"
        )
        parts.extend(_section(i, key, group) for i, (key, group) in enumerate(series.items()))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _series(runs: Sequence[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for run in sorted(runs, key=lambda r: (r.started, r.id)):
        groups.setdefault((run.model, run.benchmark), []).append(run)
    return dict(sorted(groups.items()))


def _summary(series: dict[tuple[str, str], list[RunRecord]]) -> str:
    rows = []
    for (model, benchmark), group in series.items():
        ok = [r for r in group if r.status == "ok"]
        latest = ok[-1] if ok else None
        stats = latest.summary() if latest else {}
        verdict = ""
        if latest is not None and len(ok) > 1:
            comparison = compare_runs(latest, ok[-2])
            verdict = comparison.verdict
            if comparison.gen_tps and comparison.gen_tps.change_pct is not None:
                verdict += f" ({comparison.gen_tps.change_pct:+.1f}%)"
        engine = f"{latest.engine} {latest.engine_version or ''}" if latest else ""
        rows.append(
            "<tr>"
            f"<td>{_e(model)}</td><td>{_e(benchmark or '(default)')}</td>"
            f"<td>{_e(engine)}</td>"
            f'<td class="num">{len(ok)} / {len(group)}</td>'
            f'<td class="num">{_e(_pm(stats.get("gen_tps")))}</td>'
            f'<td class="num">{_e(_pm(stats.get("ttft_ms")))}</td>'
            f'<td class="{_e(verdict.split(" ")[0])}">{_e(verdict or "-")}</td>'
            "</tr>"
        )
    return (
        '<table id="summary"><thead><tr><th>model</th><th>benchmark</th><th>engine</th>'
        "<th>ok / runs</th><th>gen tok/s (latest)</th><th>TTFT ms (latest)</th>"
        "<th>vs previous</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
    )


def _section(index: int, key: tuple[str, str], group: list[RunRecord]) -> str:
    model, benchmark = key
    ok = [r for r in group if r.status == "ok"]
    charts = "".join(_chart(metric, model, benchmark, ok) for metric in _METRICS)
    return (
        f'<section class="series" id="series-{index}" data-model="{_e(model)}" '
        f'data-benchmark="{_e(benchmark)}">'
        f"<h2>{_e(model)} · {_e(benchmark or '(default)')}</h2>"
        f'<div class="charts">{charts}</div>{_not_ok(group)}</section>'
    )


def _chart(metric: _Metric, model: str, benchmark: str, ok: list[RunRecord]) -> str:
    points = [(r, s.median, s) for r in ok if (s := r.summary()[metric.key]) is not None]
    head = (
        f'<svg class="chart" data-metric="{metric.key}" data-model="{_e(model)}" '
        f'data-benchmark="{_e(benchmark)}" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" xmlns="http://www.w3.org/2000/svg" role="img">'
        f'<text class="title" x="{_LEFT}" y="18">{_e(metric.title)} ({metric.unit})</text>'
    )
    if not points:
        return head + f'<text x="{_LEFT}" y="{_H // 2}">no ok runs</text></svg>'
    x = _x_scale([r.started for r, _, _ in points])
    top = _nice_max(max(s.max for _, _, s in points))

    def y(v: float) -> float:
        return _TOP + (_H - _TOP - _BOTTOM) * (1 - v / top)

    body = [_y_axis(top, y), _x_labels(points[0][0].started, points[-1][0].started)]
    body += _changes(points, x)
    values = [v for _, v, _ in points]
    running = [median(values[max(0, i - MEDIAN_WINDOW + 1) : i + 1]) for i in range(len(values))]
    line = " ".join(
        f"{x(r.started):.1f},{y(m):.1f}" for (r, _, _), m in zip(points, running, strict=True)
    )
    body.append(f'<polyline class="median" points="{line}"/>')
    for run, value, stats in points:
        tip = (
            f"{iso_time(run.started)} · {value:.1f} ± {stats.mad:.1f} {metric.unit} · "
            f"{run.engine} {run.engine_version or ''} · {run.id}"
        )
        body.append(
            f'<circle class="point" data-run="{_e(run.id)}" cx="{x(run.started):.1f}" '
            f'cy="{y(value):.1f}" r="4"><title>{_e(tip)}</title></circle>'
        )
    return head + "".join(body) + "</svg>"


def _x_scale(times: list[float]) -> Callable[[float], float]:
    lo, hi = min(times), max(times)
    width = _W - _LEFT - _RIGHT

    def x(t: float) -> float:
        if hi == lo:
            return _LEFT + width / 2  # one point in time: in the middle
        return _LEFT + width * (t - lo) / (hi - lo)

    return x


def _y_axis(top: float, y: Callable[[float], float]) -> str:
    out = []
    for i in range(5):
        value = top * i / 4
        pos = y(value)
        out.append(
            f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{pos:.1f}" y2="{pos:.1f}"/>'
            f'<text x="{_LEFT - 6}" y="{pos + 4:.1f}" text-anchor="end">{value:g}</text>'
        )
    return "".join(out)


def _x_labels(first: float, last: float) -> str:
    base = _H - _BOTTOM + 16
    left = f'<text x="{_LEFT}" y="{base}">{_e(_when(first))}</text>'
    if last == first:
        return left
    right = f'<text x="{_W - _RIGHT}" y="{base}" text-anchor="end">{_e(_when(last))}</text>'
    return left + right


def _changes(
    points: list[tuple[RunRecord, float, Stats]], x: Callable[[float], float]
) -> list[str]:
    """A dashed vertical line and a label where the engine version or the model changed."""
    out = []
    for (before, _, _), (after, _, _) in itertools.pairwise(points):
        labels = []
        if (before.engine, before.engine_version) != (after.engine, after.engine_version):
            labels.append(f"{after.engine} {after.engine_version or '?'}")
        if identity_changed(before.identity, after.identity):
            labels.append("model changed")
        if not labels:
            continue
        pos = (x(before.started) + x(after.started)) / 2
        out.append(
            f'<g class="change"><line x1="{pos:.1f}" x2="{pos:.1f}" y1="{_TOP}" '
            f'y2="{_H - _BOTTOM}"/><text x="{pos + 3:.1f}" y="{_TOP + 10}">'
            f"{_e(', '.join(labels))}</text></g>"
        )
    return out


def _not_ok(group: list[RunRecord]) -> str:
    bad = [r for r in group if r.status != "ok"]
    if not bad:
        return ""
    rows = "".join(
        f"<tr><td>{_e(_when(r.started))}</td><td>{_e(r.status)}</td><td>{_e(r.trigger)}</td>"
        f"<td>{_e(r.reason or '')}</td></tr>"
        for r in bad
    )
    return (
        "<h3>Failed and skipped runs</h3>"
        '<table class="not-ok"><thead><tr><th>time</th><th>status</th><th>trigger</th>'
        f"<th>reason</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def _nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 times 10^k at or above 1.05 ``value`` (room above the top)."""
    if value <= 0:
        return 1.0
    target = value * 1.05
    magnitude = 10 ** len(str(int(target))) / 10 if target >= 1 else 1.0
    while magnitude > target:
        magnitude /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= target:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - 10 magnitudes always reach target


def _pm(stats: Stats | None) -> str:
    return "-" if stats is None else f"{stats.median:.1f} ± {stats.mad:.1f}"


def _when(ts: float) -> str:
    return (iso_time(ts) or "").replace("T", " ").removesuffix("Z")[:16] + " UTC"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
