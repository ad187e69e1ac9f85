"""``mlx bench history``, ``mlx bench compare``, ``mlx bench report`` (docs/benchmarks.md):
read the runs from the registry, call mlxstate.bench (compare, report, export), render."""

from __future__ import annotations

import math
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt
from mlxstate.cli._output import color_enabled, emit_json, paint
from mlxstate.text import printable

if TYPE_CHECKING:
    from mlxstate.bench.compare import Comparison, MetricChange
    from mlxstate.bench.record import RunRecord
    from mlxstate.registry import Registry

__all__ = ["compare_command", "history_command", "report_command"]

_NO_RUNS = "no benchmark runs yet; `mlx bench run` measures the benchmarks of mlx.yaml"

ModelOpt = Annotated[
    str | None, typer.Option("--model", help="Only this model (its mlx.yaml name).")
]
BenchmarkOpt = Annotated[str | None, typer.Option("--benchmark", help="Only this benchmark.")]
SinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="Only runs started within this duration: 7d, 12h, 30m."),
]


_STATUS_STYLE = {"ok": "green", "failed": "red", "skipped": "yellow"}


class HistoryFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    llama_bench = "llama-bench"


def history_command(
    model: ModelOpt = None,
    benchmark: BenchmarkOpt = None,
    since: SinceOpt = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON document (as `mlx bench run --json`).")
    ] = False,
    csv_out: Annotated[
        bool, typer.Option("--csv", help="CSV, one row per run, for spreadsheets.")
    ] = False,
    fmt: Annotated[
        HistoryFormat | None,
        typer.Option(
            "--format",
            help="table, json, csv, or llama-bench (llama.cpp's llama-bench JSON fields).",
            show_default=False,
        ),
    ] = None,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """List benchmark runs, oldest first: figures, engine, trigger, why a run failed."""
    from mlxstate.bench.export import csv_text, history_document, llama_bench_rows

    chosen = _one_format(fmt, json_out, csv_out)
    call = Invocation.make(file, no_color, quiet, verbose)
    runs = _runs(call, model=model, benchmark=benchmark, since=since)
    if chosen is HistoryFormat.json:
        emit_json(history_document(runs or []))
    elif chosen is HistoryFormat.llama_bench:
        emit_json(llama_bench_rows(runs or []))
    elif chosen is HistoryFormat.csv:
        sys.stdout.write(csv_text(runs or []))
    elif not quiet:
        if not runs:
            sys.stdout.write(("no benchmark runs match" if runs is not None else _NO_RUNS) + "\n")
            return
        _history_table(runs, color_enabled(sys.stdout, no_color))


def compare_command(
    baseline: Annotated[
        str | None,
        typer.Option(
            "--baseline",
            help="Compare the latest run of this run's benchmark and model against it.",
            metavar="RUN_ID",
        ),
    ] = None,
    fail_on_regression: Annotated[
        float | None,
        typer.Option(
            "--fail-on-regression",
            help="Exit 1 when a model's gen tok/s is slower by more than PCT % beyond the noise.",
            metavar="PCT",
            min=0,
        ),
    ] = None,
    model: ModelOpt = None,
    benchmark: BenchmarkOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Each model's latest run against the one before (or --baseline): faster, slower, same."""
    from mlxstate.bench.compare import compare_latest, regressions
    from mlxstate.bench.history import find_run, query_runs
    from mlxstate.errors import MlxError

    if fail_on_regression is not None and not math.isfinite(fail_on_regression):
        raise MlxError(
            f"--fail-on-regression {fail_on_regression}: give a percentage, e.g. 10"
        )  # an infinite threshold would pass every regression silently
    call = Invocation.make(file, no_color, quiet, verbose)
    comparisons: list[Comparison] = []
    with _registry(call) as registry:
        absent = registry is None
        if registry is None and baseline is not None:
            raise MlxError(f"no benchmark run {printable(baseline)!r}: {_NO_RUNS}")
        if registry is not None:
            base = None
            if baseline is not None:
                base = find_run(registry, baseline)
                if base is None:
                    raise MlxError(
                        f"no benchmark run {printable(baseline)!r}; `mlx bench history` lists them"
                    )
                if base.status != "ok":
                    raise MlxError(f"run {base.id} is {base.status}: it has no figures to compare")
                model, benchmark = base.model, base.benchmark
            unreadable: list[str] = []
            runs = query_runs(
                registry, model=model, benchmark=benchmark, status=["ok"], unreadable=unreadable
            )
            _warn_unreadable(unreadable)
            comparisons = compare_latest(runs, base)
    failing = [] if fail_on_regression is None else regressions(comparisons, fail_on_regression)
    if json_out:
        emit_json(
            {
                "format_version": "1",
                "fail_on_regression": fail_on_regression,
                "regressions": [[c.benchmark, c.model] for c in failing],
                "comparisons": [c.document() for c in comparisons],
            }
        )
    elif not quiet:
        empty = (
            _NO_RUNS
            if absent
            else "nothing to compare: no ok run"
            + (f" after {baseline}" if baseline is not None else " yet")
        )
        _compare_lines(comparisons, empty=empty, color=color_enabled(sys.stdout, no_color))
    if failing:
        if not json_out:
            names = ", ".join(printable(c.model) for c in failing)
            sys.stderr.write(
                f"regression: {names} slower by more than {fail_on_regression:g}%"
                " beyond the noise\n"
            )
        raise typer.Exit(1)


def report_command(
    html: Annotated[
        Path,
        typer.Option(
            "--html", help="Write the report to this HTML file (- for stdout).", dir_okay=False
        ),
    ],
    model: ModelOpt = None,
    benchmark: BenchmarkOpt = None,
    since: SinceOpt = None,
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Write one self-contained HTML page: charts of gen tok/s and TTFT over time per model."""
    from mlxstate.bench.report import render_report
    from mlxstate.errors import MlxError
    from mlxstate.fsutil import write_atomic
    from mlxstate.seams import CURRENT

    call = Invocation.make(file, no_color, quiet, verbose)
    runs = _runs(call, model=model, benchmark=benchmark, since=since) or []
    scope = ", ".join(
        f"{k} {v}"
        for k, v in (("model", model), ("benchmark", benchmark), ("since", since))
        if v is not None
    )
    page = render_report(runs, generated=CURRENT.get().clock(), scope=scope or "all runs")
    if str(html) == "-":  # the usual "standard output", not a file named "-" in the cwd
        sys.stdout.write(page)
        return
    try:
        write_atomic(html, page.encode("utf-8"))
    except OSError as exc:
        raise MlxError(f"cannot write {printable(str(html))}: {exc.strerror or exc}") from None
    if not quiet:
        sys.stdout.write(f"wrote {printable(str(html))} ({len(runs)} runs)\n")


# -- reading ---------------------------------------------------------------------------------


def _one_format(fmt: HistoryFormat | None, json_out: bool, csv_out: bool) -> HistoryFormat:
    from mlxstate.errors import MlxError

    asked = [f for f, on in ((HistoryFormat.json, json_out), (HistoryFormat.csv, csv_out)) if on]
    if fmt is not None:
        asked.append(fmt)
    if len(set(asked)) > 1:
        raise MlxError("choose one output: --json, --csv or --format")
    return asked[0] if asked else HistoryFormat.table


class _registry:
    """The registry of this mlx.yaml's state folder, or None when it was never created
    (no runs yet: nothing to create for a read)."""

    def __init__(self, call: Invocation) -> None:
        self.call = call
        self.registry: Registry | None = None

    def __enter__(self) -> Registry | None:
        from mlxstate.registry import DB_NAME, Registry

        session = self.call.session()
        state_dir = session.settings(session.load_optional()).state_dir
        if (state_dir / DB_NAME).exists() or (state_dir / DB_NAME).is_symlink():
            self.registry = Registry.open(state_dir)
        return self.registry

    def __exit__(self, *_: object) -> None:
        if self.registry is not None:
            self.registry.close()


def _runs(
    call: Invocation, *, model: str | None, benchmark: str | None, since: str | None
) -> list[RunRecord] | None:
    """Matching runs, oldest first; None when there is no registry at all."""
    from mlxstate.bench.history import query_runs

    after = _since(since)
    unreadable: list[str] = []
    with _registry(call) as registry:
        if registry is None:
            return None
        runs = query_runs(
            registry, model=model, benchmark=benchmark, since=after, unreadable=unreadable
        )
    _warn_unreadable(unreadable)
    return runs


def _warn_unreadable(unreadable: list[str]) -> None:
    """Runs a newer mlx wrote (or an edited registry): say so and go on with the rest."""
    from mlxstate.cli._output import warn

    for what in unreadable:
        warn(f"skipped benchmark {what} (written by a newer mlx?)")


def _since(text: str | None) -> float | None:
    from mlxstate.errors import MlxError
    from mlxstate.mlxyaml.types import parse_duration
    from mlxstate.seams import CURRENT

    if text is None:
        return None
    try:
        return CURRENT.get().clock() - parse_duration(text).total_seconds()
    except ValueError as exc:
        raise MlxError(f"--since: {exc}") from None


# -- rendering -------------------------------------------------------------------------------


def _history_table(runs: list[RunRecord], color: bool) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from mlxstate.bench.export import load_ms

    table = Table(box=None, pad_edge=False, header_style="bold" if color else None)
    for name, right in (
        ("TIME", False),
        ("BENCHMARK", False),
        ("MODEL", False),
        ("ENGINE", False),
        ("TRIGGER", False),
        ("STATUS", False),
        ("GEN TOK/S", True),
        ("TTFT MS", True),
        ("LOAD", True),
    ):
        table.add_column(name, justify="right" if right else "left", no_wrap=name != "STATUS")
    for run in runs:
        stats = run.summary()
        gen, ttft, load = stats["gen_tps"], stats["ttft_ms"], load_ms(run)
        status = run.status if not run.reason else f"{run.status}: {run.reason}"
        style = _STATUS_STYLE.get(run.status, "") if color else ""  # a newer status: plain
        table.add_row(
            _when(run.started),
            Text(printable(run.benchmark or "-")),
            Text(printable(run.model)),
            Text(printable(f"{run.engine} {run.engine_version or ''}".strip())),
            run.trigger,
            Text(printable(status), style=style),
            "-" if gen is None else f"{gen.median:.1f} ± {gen.mad:.1f}",
            "-" if ttft is None else f"{ttft.median:.0f}",
            "-" if load is None else f"{load / 1000:.1f}s",
        )
    Console(file=sys.stdout, no_color=not color, width=None if color else 200).print(table)


def _compare_lines(comparisons: list[Comparison], *, empty: str, color: bool) -> None:
    if not comparisons:
        sys.stdout.write(printable(empty) + "\n")
        return
    styles = {"faster": "green", "slower": "red", "not comparable": "yellow"}
    for c in comparisons:
        name = printable(f"{c.model} ({c.benchmark})" if c.benchmark else c.model)
        verdict = paint(c.verdict, styles[c.verdict], color) if c.verdict in styles else c.verdict
        if c.baseline is None:
            sys.stdout.write(f"{name}: {verdict} (one ok run: {c.latest.id})\n")
            continue
        figures = "; ".join(
            _metric_text(m, unit)
            for m, unit in ((c.gen_tps, "tok/s"), (c.ttft_ms, "ms TTFT"))
            if m is not None
        )
        sys.stdout.write(f"{name}: {verdict}: {figures}\n")
        sys.stdout.write(
            f"  {c.baseline.id} ({_when(c.baseline.started)}) → "
            f"{c.latest.id} ({_when(c.latest.started)})\n"
        )
        for note in (*c.not_comparable, *c.changes):
            sys.stdout.write(f"  note: {printable(note)}\n")


def _metric_text(m: MetricChange, unit: str) -> str:
    if m.baseline is None or m.latest is None:
        return f"{unit} unknown"
    pct = "" if m.change_pct is None else f" ({m.change_pct:+.1f}%, {m.verdict})"
    return f"{m.baseline:.1f} → {m.latest:.1f} {unit}{pct}, noise ±{m.noise:.1f}"


def _when(ts: float) -> str:
    from mlxstate.text import iso_time

    return iso_time(ts) or "-"
