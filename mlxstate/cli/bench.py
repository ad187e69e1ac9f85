"""``mlx bench``: run the benchmarks of mlx.yaml and read their history (docs/benchmarks.md).
``run``: parse → call the runner through the Session → render."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from mlxstate.cli._common import FileOpt, Invocation, NoColorOpt, QuietOpt, VerboseOpt, lock_seconds
from mlxstate.cli._output import color_enabled, emit_json
from mlxstate.cli.bench_history import compare_command, history_command, report_command
from mlxstate.text import printable

if TYPE_CHECKING:
    from mlxstate.bench.record import RunRecord
    from mlxstate.bench.stats import Stats

__all__ = ["app", "results_table", "run_command"]

app = typer.Typer(no_args_is_help=True, help="Run declared benchmarks and read their history.")


@app.command("run")
def run_command(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Benchmarks to run (default: every one in mlx.yaml).", show_default=False
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Also benchmark this declared model with the default settings (repeatable).",
            show_default=False,
        ),
    ] = None,
    endpoint: Annotated[
        str | None,
        typer.Option(
            "--endpoint",
            help=(
                "Run the models on this OpenAI-compatible server instead (LM Studio, "
                "llama-server, mlx_lm.server), e.g. http://127.0.0.1:1234/v1."
            ),
            show_default=False,
        ),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
    lock_timeout: Annotated[
        str,
        typer.Option("--lock-timeout", help="Wait this long for a running apply (e.g. 30s, 10m)."),
    ] = "10m",
    file: FileOpt = None,
    no_color: NoColorOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run benchmarks now; exit 1 if a run failed. Models not installed are skipped."""
    from mlxstate.bench.record import FORMAT_VERSION
    from mlxstate.bench.runner import run_benchmarks

    call = Invocation.make(file, no_color, quiet, verbose)
    timeout = lock_seconds(lock_timeout)
    session = call.session()
    loaded = session.load()
    with _Progress(sys.stderr, no_color, enabled=not quiet) as progress:
        records = run_benchmarks(
            session,
            loaded,
            benchmarks=names or (),
            models=model or (),
            progress=progress,
            lock_timeout=timeout,
            endpoint=_endpoint(endpoint),
        )
    if json_out:
        emit_json({"format_version": FORMAT_VERSION, "runs": [r.document() for r in records]})
    elif not quiet:
        results_table(records, sys.stdout, no_color)
    if any(r.status == "failed" for r in records):
        raise typer.Exit(1)


def _endpoint(text: str | None) -> str | None:
    from urllib.parse import urlsplit

    from mlxstate.errors import MlxError

    if text is None:
        return None
    try:
        parts = urlsplit(text.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError:  # "http://[::1", "http://host:99999": httpx would fail outside its errors
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MlxError(
            f"--endpoint {printable(text)!r} is not an http(s) URL",
            hint="e.g. http://127.0.0.1:1234/v1",
        )
    return text.strip()


class _Progress:
    """Model, prompt i/n and run j/n on stderr while it runs (a TTY only: a pipe or a log
    file gets nothing but the result)."""

    def __init__(self, stream: TextIO, no_color: bool, *, enabled: bool) -> None:
        self.stream, self.no_color = stream, no_color
        isatty = getattr(stream, "isatty", None)
        self.live = enabled and bool(isatty and isatty())
        self._bar: Any = None
        self._task: Any = None
        self._label = ""
        self._prompts = self._runs = 0

    def __enter__(self) -> _Progress:
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(file=self.stream, no_color=not color_enabled(self.stream))
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._task = self._bar.add_task("benchmarks", total=None)
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def model_started(self, benchmark: str, model: str, prompts: int, runs: int) -> None:
        self._label = f"{benchmark}/{model}" if benchmark else model
        self._prompts, self._runs = prompts, runs

    def generation(self, prompt: int, run: int, *, warmup: bool) -> None:
        if self._bar is None:
            return
        what = "warm-up" if warmup else f"run {run}/{self._runs}"
        self._bar.update(
            self._task, description=f"{self._label}  prompt {prompt}/{self._prompts}  {what}"
        )

    def model_finished(self, record: RunRecord) -> None:
        pass


def results_table(records: list[RunRecord], out: TextIO, no_color: bool = False) -> None:
    """One row per run: generation tok/s median ± MAD and p95, prompt tok/s, time to first
    token (warm runs), load time (the cold run), and the status with its reason."""
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    several = len({r.benchmark for r in records}) > 1
    if several:
        table.add_column("benchmark")
    for header in ("model", "engine", "gen tok/s", "p95", "prompt tok/s", "TTFT", "load"):
        table.add_column(header, justify="left" if header in ("model", "engine") else "right")
    table.add_column("status")
    for record in records:
        summary = record.summary()
        row = [
            record.model,
            record.engine,
            _median_mad(summary["gen_tps"]),
            _value(summary["gen_tps"], "p95"),
            _value(summary["prompt_tps"], "median"),
            _ms(summary["ttft_ms"]),
            _load(record),
            record.status,
        ]
        table.add_row(*([record.benchmark or "-"] if several else []), *row)
    console = Console(file=out, no_color=no_color or not color_enabled(out), soft_wrap=False)
    console.print(table)
    for record in records:  # reasons below the table: whole lines, never wrapped in a cell
        if record.reason is not None:
            where = f"{record.benchmark}/{record.model}" if several else record.model
            # a reason can quote a server's words: no escape sequence reaches the terminal
            out.write(f"{where}: {record.status}: {printable(record.reason)}\n")


def _median_mad(stats: Stats | None) -> str:
    return "-" if stats is None else f"{stats.median:.1f} ± {stats.mad:.1f}"


def _value(stats: Stats | None, key: str) -> str:
    return "-" if stats is None else f"{getattr(stats, key):.1f}"


def _ms(stats: Stats | None) -> str:
    return "-" if stats is None else f"{stats.median:.0f} ms"


def _load(record: RunRecord) -> str:
    cold = [s.load_ms for s in record.samples if s.cold]
    return f"{max(cold) / 1000:.2f} s" if cold else "-"


app.command("history")(history_command)
app.command("compare")(compare_command)
app.command("report")(report_command)
