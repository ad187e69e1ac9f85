"""``mlx bench compare``: the noise rule, runs that are not comparable, the regression gate
(exit codes) and ``--baseline``, on records saved straight into the registry."""

from __future__ import annotations

import json

import pytest

from mlxstate.bench.compare import compare_latest, compare_runs
from tests.helpers import mlx, run_ok
from tests.helpers.bench import T0, make_run, save_runs

DAY = 86400.0


# -- the rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after", "verdict"),
    [
        # medians 50 and 52, MADs 1 and 1: |2| <= 1 + 1 -> same (the boundary is inside)
        ((49, 50, 51), (51, 52, 53), "same"),
        # medians 50 and 52.5, MADs 1 and 1: 2.5 > 2 -> faster
        ((49, 50, 51), (51.5, 52.5, 53.5), "faster"),
        ((49, 50, 51), (46, 47, 48), "slower"),
        # no jitter at all: any difference is a change
        ((50, 50, 50), (50.5, 50.5, 50.5), "faster"),
        ((50, 50, 50), (50, 50, 50), "same"),
    ],
)
def test_a_difference_within_the_combined_mad_is_same(
    before: tuple[float, ...], after: tuple[float, ...], verdict: str
) -> None:
    c = compare_runs(make_run("b", gen_tps=after), make_run("a", gen_tps=before))
    assert c.gen_tps is not None
    assert c.gen_tps.verdict == verdict
    assert c.verdict == verdict


def test_ttft_lower_is_faster_and_change_is_relative_to_the_baseline() -> None:
    c = compare_runs(
        make_run("b", gen_tps=(50, 50, 50), ttft_ms=(80, 80, 80)),
        make_run("a", gen_tps=(40, 40, 40), ttft_ms=(100, 100, 100)),
    )
    assert c.ttft_ms is not None and c.gen_tps is not None
    assert c.ttft_ms.verdict == "faster"
    assert c.ttft_ms.change_pct == pytest.approx(-20.0)
    assert c.gen_tps.change_pct == pytest.approx(25.0)


def test_cold_samples_stay_out_of_the_comparison() -> None:
    # The cold sample (load 3 s) would drag the TTFT median if it counted.
    c = compare_runs(
        make_run("b", load_ms=3000, ttft_ms=(100, 100, 100)), make_run("a", ttft_ms=(100,) * 3)
    )
    assert c.ttft_ms is not None and c.ttft_ms.verdict == "same"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"prompts_sha256": "b" * 64}, "prompt set changed"),
        ({"max_tokens": 256}, "max_tokens changed (128 → 256)"),
        ({"engine": "mlx"}, "engine changed (ollama → mlx)"),
    ],
)
def test_different_workloads_are_not_comparable_and_never_fail(
    change: dict[str, str | int], reason: str
) -> None:
    c = compare_runs(make_run("b", gen_tps=(10, 10, 10), **change), make_run("a"))  # type: ignore[arg-type]
    assert c.verdict == "not comparable"
    assert c.not_comparable and reason in c.not_comparable[0]
    assert c.document()["comparable"] is False
    assert not c.regressed(0)


def test_engine_upgrade_or_new_model_is_compared_and_said() -> None:
    upgraded = compare_runs(
        make_run("b", gen_tps=(40, 40, 40), engine_version="0.6.0"),
        make_run("a", engine_version="0.5.1"),
    )
    assert upgraded.changes == ("ollama version changed (0.5.1 → 0.6.0)",)
    assert upgraded.verdict == "slower"
    assert upgraded.regressed(5)  # the upgrade made it slower: that is what CI wants to know
    requantized = compare_runs(
        make_run("b", identity={"digest": "sha256:2", "quantization": "Q8_0"}),
        make_run("a", identity={"digest": "sha256:1", "quantization": "Q4_K_M"}),
    )
    assert requantized.changes == ("model changed (digest, quantization)",)
    assert requantized.verdict == "same"
    # A record that knows nothing of its model says nothing changed.
    assert compare_runs(make_run("b", identity={}), make_run("a")).changes == ()


def test_regression_is_measured_beyond_the_noise() -> None:
    # 50 -> 44: -12%, noise 1 + 1 = 2 tok/s = 4% of the baseline -> 8% beyond the noise.
    c = compare_runs(make_run("b", gen_tps=(43, 44, 45)), make_run("a", gen_tps=(49, 50, 51)))
    assert c.gen_tps is not None
    assert c.gen_tps.beyond_noise_pct() == pytest.approx(8.0)
    assert c.regressed(7.9)
    assert not c.regressed(8.0)
    assert not c.regressed(10)


def test_latest_ok_run_per_benchmark_and_model_against_the_ok_run_before() -> None:
    runs = [
        make_run("a1", started=T0),
        make_run("a2", started=T0 + DAY, status="failed", reason="engine down"),
        make_run("a3", started=T0 + 2 * DAY),
        make_run("b1", started=T0, model="qwen"),
        make_run("c1", started=T0, benchmark="long", gen_tps=(9, 9, 9)),
    ]
    pairs = {
        (c.benchmark, c.model): (c.latest.id, c.baseline and c.baseline.id)
        for c in compare_latest(runs)
    }
    assert pairs == {
        ("nightly", "llama"): ("a3", "a1"),
        ("nightly", "qwen"): ("b1", None),
        ("long", "llama"): ("c1", None),
    }


# -- the command ------------------------------------------------------------------------------


def _history(*rates: tuple[float, ...], model: str = "llama") -> None:
    save_runs(
        *(
            make_run(f"{model}-{i}", model=model, started=T0 + i * DAY, gen_tps=r)
            for i, r in enumerate(rates)
        )
    )


def test_fail_on_regression_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    _history((49, 50, 51), (43, 44, 45))  # 8% slower beyond the noise
    _history((20, 20, 20), (20, 20, 20), model="qwen")
    out = run_ok(capsys, "bench", "compare").out
    assert "llama (nightly): slower: 50.0 → 44.0 tok/s (-12.0%, slower), noise ±2.0" in out
    assert "qwen (nightly): same" in out
    assert run_ok(capsys, "bench", "compare", "--fail-on-regression", "10").code == 0
    failed = mlx(capsys, "bench", "compare", "--fail-on-regression", "5")
    assert failed.code == 1
    assert failed.err == "regression: llama slower by more than 5% beyond the noise\n"
    doc = json.loads(mlx(capsys, "bench", "compare", "--fail-on-regression", "5", "--json").out)
    assert doc["regressions"] == [["nightly", "llama"]]
    by_model = {c["model"]: c for c in doc["comparisons"]}
    assert by_model["llama"]["gen_tps"] == {
        "baseline": 50.0,
        "latest": 44.0,
        "noise": 2.0,
        "change_pct": -12.0,
        "verdict": "slower",
    }
    assert by_model["qwen"]["verdict"] == "same"


def test_faster_never_fails_and_not_comparable_is_said(
    capsys: pytest.CaptureFixture[str],
) -> None:
    save_runs(
        make_run("r1", started=T0),
        make_run("r2", started=T0 + DAY, gen_tps=(10, 10, 10), max_tokens=512),
    )
    result = run_ok(capsys, "bench", "compare", "--fail-on-regression", "1")
    assert "llama (nightly): not comparable:" in result.out
    assert "  note: max_tokens changed (128 → 512)\n" in result.out


def test_baseline_run_id(capsys: pytest.CaptureFixture[str]) -> None:
    _history((30, 30, 30), (49, 50, 51), (50, 50, 50))
    _history((20, 20, 20), (5, 5, 5), model="qwen")
    # Against the first run: 30 -> 50, and only llama (the baseline's model).
    doc = json.loads(run_ok(capsys, "bench", "compare", "--baseline", "llama-0", "--json").out)
    [only] = doc["comparisons"]
    assert (only["model"], only["baseline"], only["latest"]) == ("llama", "llama-0", "llama-2")
    assert only["verdict"] == "faster"
    # A baseline that is the latest run has nothing after it.
    assert "nothing to compare" in run_ok(capsys, "bench", "compare", "--baseline", "llama-2").out


def test_unknown_or_empty_baseline_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    save_runs(make_run("ok1"), make_run("skip1", status="skipped", reason="on battery"))
    unknown = mlx(capsys, "bench", "compare", "--baseline", "nope")
    assert (unknown.code, unknown.out) == (1, "")
    assert unknown.err == "error: no benchmark run 'nope'; `mlx bench history` lists them\n"
    skipped = mlx(capsys, "bench", "compare", "--baseline", "skip1")
    assert skipped.code == 1
    assert skipped.err == "error: run skip1 is skipped: it has no figures to compare\n"


def test_no_registry_is_no_runs_yet(capsys: pytest.CaptureFixture[str]) -> None:
    result = run_ok(capsys, "bench", "compare", "--fail-on-regression", "5")
    assert result.out.startswith("no benchmark runs yet")
    assert json.loads(run_ok(capsys, "bench", "compare", "--json").out)["comparisons"] == []
    unknown = mlx(capsys, "bench", "compare", "--baseline", "x")
    assert unknown.code == 1 and unknown.err.count("\n") == 1


def test_an_infinite_threshold_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    save_runs(make_run("r1", gen_tps=(100.0,) * 3), make_run("r2", started=T0 + 60))
    result = mlx(capsys, "bench", "compare", "--fail-on-regression", "inf")
    assert result.code == 1 and result.out == ""
    assert result.err == "error: --fail-on-regression inf: give a percentage, e.g. 10\n"
