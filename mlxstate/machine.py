"""What the machine is doing right now, read without privileges: host identity, power
source, memory pressure. Benchmarks record it with every run and skip scheduled runs on
battery or under pressure; the dashboard shows it. A value the OS does not give is
``None`` ("unknown"), never a made-up zero."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Conditions",
    "Pressure",
    "conditions",
    "cpu_name",
    "host_facts",
    "mac_pressure",
    "memory_pressure",
    "psi_pressure",
]

Pressure = Literal["normal", "warn", "critical"]
PSI_FILE = Path("/proc/pressure/memory")
# PSI "some avg10": the share of the last 10 s in which at least one task waited for memory.
_PSI_WARN = 10.0
_PSI_CRITICAL = 40.0
# macOS kern.memorystatus_vm_pressure_level: 1 normal, 2 warn, 4 critical.
_MAC_LEVELS: dict[str, Pressure] = {"1": "normal", "2": "warn", "4": "critical"}


@dataclass(frozen=True, slots=True)
class Conditions:
    on_battery: bool | None  # None: no battery, or the OS does not say
    battery_percent: float | None
    memory_pressure: Pressure | None
    memory_used_percent: float
    swap_used_bytes: int

    def document(self) -> dict[str, Any]:
        return {
            "power_source": (
                None if self.on_battery is None else ("battery" if self.on_battery else "ac")
            ),
            "battery_percent": self.battery_percent,
            "memory_pressure": self.memory_pressure,
            "memory_used_percent": self.memory_used_percent,
            "swap_used_bytes": self.swap_used_bytes,
        }


def conditions(platform_name: str = sys.platform) -> Conditions:
    import psutil

    battery = None
    try:
        battery = psutil.sensors_battery()
    except (OSError, RuntimeError, AttributeError):
        battery = None
    memory = psutil.virtual_memory()
    try:
        swap = int(psutil.swap_memory().used)
    except (OSError, RuntimeError):
        swap = 0
    return Conditions(
        on_battery=None if battery is None else not battery.power_plugged,
        battery_percent=None if battery is None else round(float(battery.percent), 1),
        memory_pressure=memory_pressure(platform_name),
        memory_used_percent=round(float(memory.percent), 1),
        swap_used_bytes=swap,
    )


def memory_pressure(platform_name: str = sys.platform) -> Pressure | None:
    if platform_name == "darwin":
        return mac_pressure(sysctl("kern.memorystatus_vm_pressure_level"))
    return psi_pressure(PSI_FILE)


def sysctl(name: str) -> str | None:
    """``sysctl -n NAME`` (macOS; no privileges needed); None when it cannot say."""
    try:
        done = subprocess.run(
            ["sysctl", "-n", name], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def mac_pressure(sysctl_out: str | None) -> Pressure | None:
    """What ``sysctl -n kern.memorystatus_vm_pressure_level`` printed, as a level."""
    return None if sysctl_out is None else _MAC_LEVELS.get(sysctl_out.strip())


def psi_pressure(path: Path) -> Pressure | None:
    """Linux pressure stall information: ``some avg10=1.23 avg60=... total=...``."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        fields = line.split()
        if fields[:1] != ["some"]:
            continue
        for item in fields[1:]:
            key, _, value = item.partition("=")
            if key == "avg10":
                try:
                    avg = float(value)
                except ValueError:
                    return None
                if avg >= _PSI_CRITICAL:
                    return "critical"
                return "warn" if avg >= _PSI_WARN else "normal"
    return None


def cpu_name(platform_name: str = sys.platform) -> str:
    if platform_name == "darwin" and (brand := sysctl("machdep.cpu.brand_string")):
        return brand
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware") and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def host_facts(platform_name: str = sys.platform) -> dict[str, Any]:
    import psutil

    return {
        "name": socket.gethostname(),
        "os": f"{platform.system().lower()} {platform.release()}",
        "arch": platform.machine(),
        "cpu": cpu_name(platform_name),
        "memory_bytes": int(psutil.virtual_memory().total),
        "cpu_count": os.cpu_count() or 0,
    }
