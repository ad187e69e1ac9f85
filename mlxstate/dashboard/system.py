"""The machine's figures for the dashboard, read without privileges (docs/dashboard.md,
"Where each figure comes from").

psutil gives CPU, memory, swap and battery everywhere; memory pressure comes from
``sysctl`` (macOS) or PSI (Linux); thermal state from ``pmset -g therm`` (macOS) or the
sensors psutil reads (Linux); GPU/ANE power from ``macmon`` when it is installed. A figure
the OS does not give is ``None`` with a reason in ``unavailable``, never a made-up zero.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from mlxstate.dashboard.commands import Runner, Which, run, which
from mlxstate.machine import PSI_FILE, mac_pressure, psi_pressure

__all__ = [
    "SystemProbe",
    "Thermal",
    "linux_thermal",
    "macmon_figures",
    "pmset_thermal",
]

Thermal = Literal["nominal", "fair", "serious", "critical"]
Sensors = Callable[[], dict[str, list[Any]]]  # psutil.sensors_temperatures()

PMSET_TIMEOUT = 2.0
MACMON_TIMEOUT = 5.0
# One macmon sample over 200 ms: its default (1 s) would block the sampler that long.
MACMON_ARGV = ("macmon", "pipe", "-s", "1", "-i", "200")
_RANK: dict[Thermal, int] = {"nominal": 0, "fair": 1, "serious": 2, "critical": 3}
# At most six digits: int() refuses a string of 4,300 digits, and no level has more.
_SPEED = re.compile(r"CPU_Speed_Limit\s*=\s*(\d{1,6})\b")
_WARNING = re.compile(r"thermal warning level (?:set to|=|is)?\s*(\d{1,6})\b", re.IGNORECASE)
# Chips whose reading is "the CPU" (Intel, AMD, Raspberry Pi / ARM boards, ACPI zones).
_CPU_CHIPS = ("coretemp", "k10temp", "zenpower", "cpu_thermal", "soc_thermal", "acpitz")


def pmset_thermal(text: str) -> Thermal:
    """The thermal state in ``pmset -g therm`` output: the worse of the CPU speed limit
    (100 = not throttled) and the recorded thermal warning level (0 = normal). "No thermal
    warning level has been recorded" and no speed limit is a machine running cool."""
    state: Thermal = "nominal"
    if (speed := _SPEED.search(text)) is not None:
        limit = int(speed.group(1))
        state = _worse(state, _speed_state(limit))
    if (warning := _WARNING.search(text)) is not None:
        level = int(warning.group(1))
        state = _worse(state, _warning_state(level))
    return state


def _speed_state(limit: int) -> Thermal:
    if limit >= 100:
        return "nominal"
    if limit >= 80:
        return "fair"
    return "serious" if limit >= 50 else "critical"


def _warning_state(level: int) -> Thermal:
    # IOKit's levels: 0 normal, 5 danger, 10 crisis (anything between is on the way).
    if level <= 0:
        return "nominal"
    if level < 5:
        return "fair"
    return "serious" if level < 10 else "critical"


def _worse(a: Thermal, b: Thermal) -> Thermal:
    return a if _RANK[a] >= _RANK[b] else b


def linux_thermal(
    chips: dict[str, list[Any]],
) -> tuple[Thermal | None, dict[str, float] | None, str | None]:
    """(state, temperatures by chip, why the state is unknown) from psutil's sensors.
    The state compares each reading with the thresholds the chip itself declares."""
    temps: dict[str, float] = {}
    state: Thermal | None = None
    for chip, readings in sorted(chips.items()):
        values = [r for r in readings if _number(getattr(r, "current", None)) is not None]
        if not values:
            continue
        temps[chip] = round(max(float(r.current) for r in values), 1)
        for r in values:
            high, critical = getattr(r, "high", None), getattr(r, "critical", None)
            if critical and r.current >= critical:
                state = _worse(state or "nominal", "critical")
            elif high and r.current >= high:
                state = _worse(state or "nominal", "serious")
            elif high or critical:
                state = state or "nominal"
    if not temps:
        return None, None, "the OS reports no temperature sensors"
    cpu = next((temps[c] for c in _CPU_CHIPS if c in temps), None)
    shown = {"cpu": cpu, **temps} if cpu is not None else temps
    why = None if state is not None else "the sensors declare no high or critical threshold"
    return state, shown, why


def macmon_figures(line: str) -> tuple[dict[str, float | None], dict[str, float]] | None:
    """(gpu, temperatures) from one line of ``macmon pipe``; None when it is not that."""
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):  # not a sample, or nested without end
        return None
    if not isinstance(doc, dict):
        return None
    temp = doc.get("temp") if isinstance(doc.get("temp"), dict) else {}
    assert isinstance(temp, dict)
    gpu = {
        "power_w": _number(doc.get("gpu_power")),
        "temp_c": _number(temp.get("gpu_temp_avg")),
        "ane_power_w": _number(doc.get("ane_power")),
    }
    temps = {
        key: value
        for key, value in (
            ("cpu", _number(temp.get("cpu_temp_avg"))),
            ("gpu", _number(temp.get("gpu_temp_avg"))),
        )
        if value is not None
    }
    if all(v is None for v in gpu.values()):
        return None
    return gpu, temps


def _number(value: Any) -> float | None:
    """A finite number, else None: ``1e999`` parses as infinity, which JSON cannot carry."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int of 400 digits
        return None
    return round(number, 2) if math.isfinite(number) else None


def _psutil_sensors() -> dict[str, list[Any]]:
    import psutil

    read = getattr(psutil, "sensors_temperatures", None)  # absent on macOS
    if read is None:
        return {}
    try:
        return dict(read())
    except Exception:  # psutil parses driver files that vary by machine: not reported
        return {}


class SystemProbe:
    """The ``system`` part of a snapshot. Keeps what needs a previous call (CPU percent)
    and caches what costs a program run (pmset, macmon) for a few seconds."""

    def __init__(
        self,
        *,
        platform: str = sys.platform,
        runner: Runner = run,
        which: Which = which,
        sensors: Sensors = _psutil_sensors,
        psi_file: Path = PSI_FILE,
        clock: Callable[[], float] = time.monotonic,
        slow_every: float = 5.0,
        first_interval: float = 0.1,
    ) -> None:
        self.platform, self.runner, self.which = platform, runner, which
        self.sensors, self.psi_file, self.clock = sensors, psi_file, clock
        self.slow_every = slow_every  # pmset, sensors and macmon at most this often
        self.first_interval = first_interval  # the first CPU figure is measured over this
        self._primed = False
        self._slow: tuple[float, dict[str, Any]] | None = None
        self._born = time.monotonic()
        self._prime()

    def __call__(self) -> dict[str, Any]:
        import psutil

        unavailable: dict[str, str] = {}
        memory = psutil.virtual_memory()
        doc: dict[str, Any] = {
            "cpu_percent": self._cpu(psutil),
            "memory": {
                "total_bytes": int(memory.total),
                "used_bytes": int(memory.used),
                "available_bytes": int(memory.available),
                "percent": round(float(memory.percent), 1),
            },
            "swap": self._swap(psutil, unavailable),
            "memory_pressure": self._pressure(unavailable),
            "power": self._power(psutil, unavailable),
        }
        slow = self._slow_figures()
        doc.update({k: v for k, v in slow.items() if k != "unavailable"})
        unavailable.update(slow["unavailable"])
        doc["unavailable"] = unavailable
        return {key: doc[key] for key in _ORDER}

    def _prime(self) -> None:
        """psutil measures CPU since its previous call: make one now, so the first figure
        needs no wait when the first sample comes later (the agent)."""
        import psutil

        psutil.cpu_percent(interval=None)

    def _cpu(self, psutil: Any) -> float:
        if not self._primed:
            self._primed = True
            wait = self.first_interval - (time.monotonic() - self._born)
            if wait > 0:  # sampled at once (`--once`): measure over the rest of the interval
                return round(float(psutil.cpu_percent(interval=wait)), 1)
        return round(float(psutil.cpu_percent(interval=None)), 1)

    def _swap(self, psutil: Any, unavailable: dict[str, str]) -> dict[str, int] | None:
        try:
            swap = psutil.swap_memory()
        except (OSError, RuntimeError) as exc:
            unavailable["swap"] = f"the OS does not report it ({exc})"
            return None
        return {"total_bytes": int(swap.total), "used_bytes": int(swap.used)}

    def _pressure(self, unavailable: dict[str, str]) -> str | None:
        if self.platform == "darwin":
            argv = ("sysctl", "-n", "kern.memorystatus_vm_pressure_level")
            level = mac_pressure(self.runner(argv, PMSET_TIMEOUT))
            why = "sysctl kern.memorystatus_vm_pressure_level gave no level"
        else:
            level = psi_pressure(self.psi_file)
            why = f"no pressure stall information ({self.psi_file})"
        if level is None:
            unavailable["memory_pressure"] = why
        return level

    def _power(self, psutil: Any, unavailable: dict[str, str]) -> dict[str, Any]:
        try:
            battery = psutil.sensors_battery()
        except Exception:  # psutil parses driver files that vary by machine: not reported
            battery = None
        if battery is None:
            unavailable["power"] = "no battery, or the OS does not report the power source"
            return {"source": None, "battery_percent": None}
        plugged = battery.power_plugged
        source = None if plugged is None else "ac" if plugged else "battery"
        return {"source": source, "battery_percent": round(float(battery.percent), 1)}

    def _slow_figures(self) -> dict[str, Any]:
        now = self.clock()
        if self._slow is not None and now - self._slow[0] < self.slow_every:
            return self._slow[1]
        unavailable: dict[str, str] = {}
        thermal, temps = self._thermal(unavailable)
        gpu, gpu_temps = self._gpu(unavailable)
        temps = {**(temps or {}), **gpu_temps} or None
        if temps is None:
            unavailable.setdefault("temperatures_c", "the OS reports no temperatures")
        figures = {
            "thermal": thermal,
            "temperatures_c": temps,
            "gpu": gpu,
            "unavailable": unavailable,
        }
        self._slow = (now, figures)
        return figures

    def _thermal(self, unavailable: dict[str, str]) -> tuple[str | None, dict[str, float] | None]:
        if self.platform == "darwin":
            text = self.runner(("pmset", "-g", "therm"), PMSET_TIMEOUT)
            if text is None:
                unavailable["thermal"] = "`pmset -g therm` gave no answer"
                return None, None
            unavailable["temperatures_c"] = "macOS reports temperatures only through macmon"
            return pmset_thermal(text), None
        state, temps, why = linux_thermal(self.sensors())
        if why is not None:
            unavailable["thermal"] = why
        if temps is None:
            unavailable["temperatures_c"] = "the OS reports no temperature sensors"
        return state, temps

    def _gpu(self, unavailable: dict[str, str]) -> tuple[dict[str, Any] | None, dict[str, float]]:
        if self.which("macmon") is None:
            unavailable["gpu"] = (
                "macmon not installed (brew install macmon)"
                if self.platform == "darwin"
                else "not measured on this OS: macmon is for Apple silicon"
            )
            return None, {}
        out = self.runner(MACMON_ARGV, MACMON_TIMEOUT)
        line = next((x for x in (out or "").splitlines() if x.strip()), "")
        figures = macmon_figures(line)
        if figures is None:
            unavailable["gpu"] = "`macmon pipe` gave no sample"
            return None, {}
        unavailable.pop("temperatures_c", None)
        return figures


_ORDER = (
    "cpu_percent",
    "memory",
    "swap",
    "memory_pressure",
    "thermal",
    "temperatures_c",
    "power",
    "gpu",
    "unavailable",
)
