"""``mlx bench``: run the benchmarks of mlx.yaml and read their history (docs/benchmarks.md)."""

from __future__ import annotations

import typer

from mlxstate.cli.bench_history import compare_command, history_command, report_command

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Run declared benchmarks and read their history.")
app.command("history")(history_command)
app.command("compare")(compare_command)
app.command("report")(report_command)
