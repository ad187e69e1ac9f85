"""``mlx bench history``: filters, the table, ``--json`` (the ``bench run --json`` shape),
``--csv`` read back with the csv module, ``--format llama-bench``."""

from __future__ import annotations

import csv
import io
import json

import pytest

from mlxstate.bench.export import CSV_COLUMNS
from mlxstate.seams import Seams
from tests.helpers import mlx, run_ok
from tests.helpers.bench import T0, make_run, poke_registry, save_runs

DAY = 86400.0


def _saved() -> None:
    save_runs(
        make_run("r1", started=T0, gen_tps=(49, 50, 51)),
        make_run("r2", started=T0 + DAY, model="qwen", benchmark="long", load_ms=2500),
        make_run("r3", started=T0 + 3 * DAY, status="skipped", reason="on battery, 40%"),
        make_run("r4", started=T0 + 3 * DAY + 60, status="failed", reason='engine said "no"'),
    )


def _ids(capsys: pytest.CaptureFixture[str], *args: str, seams: Seams | None = None) -> list[str]:
    result = mlx(capsys, "bench", "history", "--json", *args, seams=seams)
    assert result.code == 0, result.err
    return [run["id"] for run in json.loads(result.out)["runs"]]


def test_filters(capsys: pytest.CaptureFixture[str]) -> None:
    _saved()
    assert _ids(capsys) == ["r1", "r2", "r3", "r4"]  # oldest first
    assert _ids(capsys, "--model", "qwen") == ["r2"]
    assert _ids(capsys, "--benchmark", "nightly") == ["r1", "r3", "r4"]
    assert _ids(capsys, "--model", "llama", "--benchmark", "long") == []
    now = Seams(clock=lambda: T0 + 3 * DAY + 3600)
    assert _ids(capsys, "--since", "2d", seams=now) == ["r3", "r4"]
    assert _ids(capsys, "--since", "3d", seams=now) == ["r2", "r3", "r4"]
    bad = mlx(capsys, "bench", "history", "--since", "yesterday")
    assert bad.code == 1 and bad.err.startswith("error: --since: invalid duration 'yesterday'")


def test_json_is_the_bench_run_document(capsys: pytest.CaptureFixture[str]) -> None:
    _saved()
    doc = json.loads(run_ok(capsys, "bench", "history", "--json", "--model", "llama").out)
    assert doc["format_version"] == "1"
    first = doc["runs"][0]
    expected = make_run("r1", started=T0, gen_tps=(49, 50, 51)).document()
    assert first == expected  # stored and read back whole
    assert set(first) >= {
        "id", "benchmark", "model", "source", "engine", "engine_version", "trigger",
        "started", "status", "reason", "host", "settings", "samples", "summary",
    }  # fmt: skip
    assert first["summary"]["gen_tps"] == {
        "median": 50.0,
        "mad": 1.0,
        "min": 49.0,
        "max": 51.0,
        "p95": 50.9,
    }
    assert doc["runs"][1]["status"] == "skipped" and doc["runs"][1]["summary"]["gen_tps"] is None


def test_csv_loads_back_into_rows(capsys: pytest.CaptureFixture[str]) -> None:
    _saved()
    text = run_ok(capsys, "bench", "history", "--csv").out
    assert text.startswith(",".join(CSV_COLUMNS) + "\r\n")  # a header row, CRLF line ends
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [r["id"] for r in rows] == ["r1", "r2", "r3", "r4"]
    r1, r2, r3, r4 = rows
    assert r1["started"] == "2026-09-21T14:13:20Z"
    assert (r1["gen_tps_median"], r1["gen_tps_mad"], r1["load_ms"]) == ("50.0", "1.0", "")
    assert r2["load_ms"] == "2500.0" and r2["samples"] == "4"  # the cold one is stored too
    assert r3["reason"] == "on battery, 40%" and r3["gen_tps_median"] == ""
    assert r4["reason"] == 'engine said "no"'  # quoted and doubled, read back intact


def test_llama_bench_fields(capsys: pytest.CaptureFixture[str]) -> None:
    _saved()
    rows = json.loads(run_ok(capsys, "bench", "history", "--format", "llama-bench").out)
    # Two tests per ok run (prompt processing, text generation); failed runs have none.
    assert [(r["mlx_run_id"], r["n_prompt"], r["n_gen"]) for r in rows] == [
        ("r1", 20, 0),
        ("r1", 0, 64),
        ("r2", 20, 0),
        ("r2", 0, 64),
    ]
    tg = rows[1]
    assert tg["avg_ts"] == pytest.approx(50.0)
    assert tg["stddev_ts"] == pytest.approx(1.0)  # sample standard deviation of 49, 50, 51
    assert tg["samples_ts"] == [49.0, 50.0, 51.0]
    assert tg["samples_ns"][1] == 1_280_000_000  # 64 tokens at 50 tok/s
    assert (tg["model_filename"], tg["build_commit"], tg["backends"]) == (
        "ollama://llama:8b",
        "0.5.1",
        "ollama",
    )
    assert tg["test_time"] == "2026-09-21T14:13:20Z"


def test_table(capsys: pytest.CaptureFixture[str]) -> None:
    _saved()
    lines = run_ok(capsys, "bench", "history").out.splitlines()
    assert lines[0].split() == [
        "TIME", "BENCHMARK", "MODEL", "ENGINE", "TRIGGER", "STATUS", "GEN", "TOK/S", "TTFT",
        "MS", "LOAD",
    ]  # fmt: skip
    assert lines[1].split() == [
        "2026-09-21T14:13:20Z", "nightly", "llama", "ollama", "0.5.1", "manual", "ok", "50.0",
        "±", "1.0", "100", "-",
    ]  # fmt: skip
    assert lines[2].split()[-1] == "2.5s"  # the cold load
    assert "skipped: on battery, 40%" in lines[3]
    assert run_ok(capsys, "bench", "history", "-q").out == ""


def test_no_registry_is_no_runs_yet_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers import state_dir

    assert run_ok(capsys, "bench", "history").out.startswith("no benchmark runs yet")
    assert json.loads(run_ok(capsys, "bench", "history", "--json").out) == {
        "format_version": "1",
        "runs": [],
    }
    assert run_ok(capsys, "bench", "history", "--csv").out == ",".join(CSV_COLUMNS) + "\r\n"
    assert not state_dir().exists()  # reading created nothing
    save_runs(make_run("r1"))
    assert run_ok(capsys, "bench", "history", "--model", "x").out == "no benchmark runs match\n"


def test_one_output_format(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "bench", "history", "--json", "--csv")
    assert (result.code, result.err) == (1, "error: choose one output: --json, --csv or --format\n")
    assert run_ok(capsys, "bench", "history", "--json", "--format", "json").code == 0


def test_csv_text_that_looks_like_a_formula_stays_text(capsys: pytest.CaptureFixture[str]) -> None:
    save_runs(make_run("r1", status="failed", reason='=HYPERLINK("http://x")'))
    rows = list(csv.DictReader(io.StringIO(run_ok(capsys, "bench", "history", "--csv").out)))
    assert rows[0]["reason"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["gen_tps_median"] == ""  # numbers are left alone


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("UPDATE bench_runs SET doc = 'garbage' WHERE id = 'r2'", "its document is not JSON"),
        ("UPDATE bench_runs SET doc = '[]' WHERE id = 'r2'", "its document is not a JSON object"),
        ("UPDATE bench_runs SET doc = '{}' WHERE id = 'r2'", "host is missing"),
        (
            "UPDATE bench_runs SET doc = json_remove(doc, '$.settings.runs') WHERE id = 'r2'",
            "runsettings lacks a field",
        ),
        ("UPDATE bench_samples SET gen_tps = 'x' WHERE run_id = 'r2'", "gen_tps is not a number"),
    ],
)
def test_an_unreadable_run_is_skipped_with_a_warning(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, sql: str, why: str
) -> None:
    save_runs(*(make_run(f"r{i}", started=T0 + i) for i in (1, 2, 3)))
    poke_registry(sql)
    monkeypatch.setenv("FORCE_COLOR", "1")
    warning = f"skipped benchmark run r2: {why} (written by a newer mlx?)"
    for args in (("history",), ("history", "--csv"), ("compare",)):
        result = mlx(capsys, "bench", *args)
        assert result.code == 0, result.err
        assert warning in result.err
    assert _ids(capsys) == ["r1", "r3"]
    bad = mlx(capsys, "bench", "compare", "--baseline", "r2")
    assert bad.code == 1 and f"benchmark run r2 cannot be read: {why}\n" in bad.err


def test_fields_of_a_newer_version_are_ignored(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    save_runs(make_run("r1"))
    poke_registry(
        "UPDATE bench_runs SET status = 'queued', trigger = 'webhook',"
        " doc = json_set(doc, '$.host.gpu', 'M9', '$.settings.top_k', 5)"
    )
    monkeypatch.setenv("FORCE_COLOR", "1")  # the status colours
    monkeypatch.setenv("COLUMNS", "200")
    result = mlx(capsys, "bench", "history")
    assert result.code == 0 and result.err == ""
    assert "queued" in result.out and "webhook" in result.out
    assert _ids(capsys) == ["r1"]


def test_an_infinite_stored_rate_is_no_rate(capsys: pytest.CaptureFixture[str]) -> None:
    save_runs(make_run("r1", gen_tps=(50.0, 50.0, 50.0)))
    poke_registry("UPDATE bench_samples SET gen_tps = 9e999 WHERE seq = 0")
    doc = json.loads(run_ok(capsys, "bench", "history", "--json").out)  # strict JSON: no Infinity
    (run,) = doc["runs"]
    assert run["samples"][0]["gen_tps"] is None and run["summary"]["gen_tps"]["median"] == 50.0
