"""The dashboard's machine figures from recorded outputs: ``pmset -g therm`` text, PSI
files, ``macmon pipe`` lines, psutil sensors present and absent (docs/dashboard.md). A
figure the OS does not give is None with a reason, never zero."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from mlxstate.dashboard.system import (
    MACMON_ARGV,
    SystemProbe,
    linux_thermal,
    macmon_figures,
    pmset_thermal,
)

PMSET_COOL = """\
Note: No thermal warning level has been recorded
Note: No performance warning level has been recorded
Note: No CPU power status has been recorded
"""
PMSET_THROTTLED = """\
Note: No thermal warning level has been recorded
Note: No performance warning level has been recorded
2020-11-24 13:10:40 +0100 CPU Power notify
\tCPU_Scheduler_Limit \t= 100
\tCPU_Available_CPUs \t= 8
\tCPU_Speed_Limit \t= 35
"""
PMSET_SPEED_90 = PMSET_THROTTLED.replace("= 35", "= 90")
PMSET_WARNING = "Thermal warning level set to 5.\nCPU_Speed_Limit = 100\n"
PMSET_CRISIS = "Thermal warning level set to 10.\n"

MACMON_LINE = json.dumps(
    {
        "timestamp": "2026-11-30T15:00:00Z",
        "temp": {"cpu_temp_avg": 51.234, "gpu_temp_avg": 47.5},
        "memory": {"ram_total": 1, "ram_usage": 1, "swap_total": 0, "swap_usage": 0},
        "ecpu_usage": [1000, 0.1],
        "pcpu_usage": [3000, 0.2],
        "gpu_usage": [338, 0.0765],
        "cpu_power": 1.5,
        "gpu_power": 0.489,
        "ane_power": 0.0,
        "all_power": 2.0,
        "sys_power": 9.0,
    }
)


@pytest.mark.parametrize(
    ("text", "state"),
    [
        (PMSET_COOL, "nominal"),
        (PMSET_SPEED_90, "fair"),
        (PMSET_THROTTLED, "critical"),
        (PMSET_WARNING, "serious"),
        (PMSET_CRISIS, "critical"),
        ("", "nominal"),
    ],
)
def test_pmset_therm_output_gives_the_thermal_state(text: str, state: str) -> None:
    assert pmset_thermal(text) == state


def test_macmon_line_gives_gpu_power_temperature_and_ane() -> None:
    figures = macmon_figures(MACMON_LINE)
    assert figures == (
        {"power_w": 0.49, "temp_c": 47.5, "ane_power_w": 0.0},
        {"cpu": 51.23, "gpu": 47.5},
    )
    assert macmon_figures("not json") is None
    assert macmon_figures('{"temp": 3}') is None  # no figure at all: not a sample


def reading(current: float, high: float | None = None, critical: float | None = None) -> Any:
    return SimpleNamespace(label="", current=current, high=high, critical=critical)


def test_linux_sensors_absent_is_null_with_a_reason() -> None:
    assert linux_thermal({}) == (None, None, "the OS reports no temperature sensors")


def test_linux_sensors_give_temperatures_and_a_state_from_their_thresholds() -> None:
    chips = {"coretemp": [reading(51.0, 80.0, 100.0), reading(55.0, 80.0, 100.0)]}
    assert linux_thermal(chips) == ("nominal", {"cpu": 55.0, "coretemp": 55.0}, None)
    hot = {"coretemp": [reading(85.0, 80.0, 100.0)], "nvme": [reading(40.0)]}
    assert linux_thermal(hot)[0] == "serious"
    assert linux_thermal({"k10temp": [reading(101.0, 80.0, 100.0)]})[0] == "critical"
    # Readings without thresholds: the temperatures are known, the state is not.
    state, temps, why = linux_thermal({"acpitz": [reading(42.0)]})
    assert (state, temps) == (None, {"cpu": 42.0, "acpitz": 42.0})
    assert why == "the sensors declare no high or critical threshold"


class Recorded:
    """A runner answering with recorded outputs; it records what was asked."""

    def __init__(self, outputs: dict[str, str | None]) -> None:
        self.outputs = outputs
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], timeout: float) -> str | None:
        assert timeout > 0  # every program run has a timeout
        assert argv[0] != "sudo"
        self.calls.append(tuple(argv))
        return self.outputs.get(argv[0])


def test_psi_file_gives_the_memory_pressure_on_linux(tmp_path: Path) -> None:
    psi = tmp_path / "memory"
    psi.write_text("some avg10=12.50 avg60=3.00 avg300=1.00 total=123\nfull avg10=0.00\n")
    probe = SystemProbe(platform="linux", runner=Recorded({}), psi_file=psi, first_interval=0)
    doc = probe()
    assert doc["memory_pressure"] == "warn"
    psi.write_text("some avg10=0.10 avg60=0.00 avg300=0.00 total=1\n")
    assert probe()["memory_pressure"] == "normal"
    psi.unlink()  # a kernel without PSI
    doc = probe()
    assert doc["memory_pressure"] is None
    assert doc["unavailable"]["memory_pressure"] == f"no pressure stall information ({psi})"


def test_linux_without_sensors_macmon_or_battery(tmp_path: Path) -> None:
    probe = SystemProbe(
        platform="linux",
        runner=Recorded({}),
        which=lambda _name: None,
        sensors=dict,
        psi_file=tmp_path / "none",
        first_interval=0,
    )
    doc = probe()
    assert list(doc) == [
        "cpu_percent",
        "memory",
        "swap",
        "memory_pressure",
        "thermal",
        "temperatures_c",
        "power",
        "gpu",
        "unavailable",
    ]
    assert (doc["thermal"], doc["temperatures_c"], doc["gpu"]) == (None, None, None)
    assert doc["unavailable"]["thermal"] == "the OS reports no temperature sensors"
    assert doc["unavailable"]["gpu"] == "not measured on this OS: macmon is for Apple silicon"
    assert doc["memory"]["total_bytes"] > 0
    assert 0.0 <= doc["cpu_percent"] <= 100.0


def test_macos_reads_pmset_sysctl_and_macmon_when_installed() -> None:
    runner = Recorded({"pmset": PMSET_THROTTLED, "sysctl": "2\n", "macmon": MACMON_LINE + "\n"})
    probe = SystemProbe(
        platform="darwin",
        runner=runner,
        which=lambda name: f"/opt/homebrew/bin/{name}",
        first_interval=0,
    )
    doc = probe()
    assert doc["thermal"] == "critical"
    assert doc["memory_pressure"] == "warn"
    assert doc["gpu"] == {"power_w": 0.49, "temp_c": 47.5, "ane_power_w": 0.0}
    assert doc["temperatures_c"] == {"cpu": 51.23, "gpu": 47.5}
    assert "gpu" not in doc["unavailable"] and "temperatures_c" not in doc["unavailable"]
    assert MACMON_ARGV in runner.calls
    assert ("pmset", "-g", "therm") in runner.calls


def test_macos_without_macmon_says_so_and_never_runs_it() -> None:
    runner = Recorded({"pmset": PMSET_COOL, "sysctl": "1"})
    probe = SystemProbe(platform="darwin", runner=runner, which=lambda _n: None, first_interval=0)
    doc = probe()
    assert doc["thermal"] == "nominal" and doc["memory_pressure"] == "normal"
    assert doc["gpu"] is None and doc["temperatures_c"] is None
    assert doc["unavailable"]["gpu"] == "macmon not installed (brew install macmon)"
    assert doc["unavailable"]["temperatures_c"] == (
        "macOS reports temperatures only through macmon"
    )
    assert not any(call[0] == "macmon" for call in runner.calls)


def test_a_program_that_fails_leaves_null_with_a_reason() -> None:
    runner = Recorded({"pmset": None, "sysctl": None, "macmon": "garbage"})
    probe = SystemProbe(platform="darwin", runner=runner, which=lambda n: n, first_interval=0)
    doc = probe()
    assert doc["thermal"] is None and doc["memory_pressure"] is None and doc["gpu"] is None
    assert doc["unavailable"]["thermal"] == "`pmset -g therm` gave no answer"
    assert doc["unavailable"]["gpu"] == "`macmon pipe` gave no sample"


def test_programs_run_at_most_every_few_seconds() -> None:
    now = [0.0]
    runner = Recorded({"pmset": PMSET_COOL, "sysctl": "1"})
    probe = SystemProbe(
        platform="darwin",
        runner=runner,
        which=lambda _n: None,
        clock=lambda: now[0],
        slow_every=5.0,
        first_interval=0,
    )
    probe()
    now[0] = 4.0
    probe()
    assert runner.calls.count(("pmset", "-g", "therm")) == 1  # cached
    now[0] = 5.0
    probe()
    assert runner.calls.count(("pmset", "-g", "therm")) == 2
    assert runner.calls.count(("sysctl", "-n", "kern.memorystatus_vm_pressure_level")) == 3
