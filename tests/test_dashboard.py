"""The dashboard's snapshot (docs/dashboard.md): its shape against the committed JSON
Schema, its figures against the loopback fake Ollama with loaded models and built stores,
the sampler's caching, the agent's ``dashboard.json``, and `mlx dashboard --once`.

The machine's own figures come through the ``system_figures``/``host_facts`` seams and the
clock and free space through theirs, so the ``--once`` snapshots are the same everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from syrupy.assertion import SnapshotAssertion

from mlxstate.dashboard.sampler import Sampler
from mlxstate.dashboard.snapshot import SNAPSHOT_FILE, read_snapshot, write_snapshot
from mlxstate.engine import Session
from mlxstate.facts import DiskSpace
from mlxstate.registry import Registry
from mlxstate.seams import Seams
from mlxstate.settings import read_environment
from mlxstate.text import iso_time
from mlxstate.watch.loop import Agent, Event
from mlxstate.watch.state import AgentStore, agent_lock
from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.fakes.ollama_server import DEFAULT_VERSION, FakeOllama
from tests.helpers import dead_url, hf_dir, mlx, ollama_dir, state_dir
from tests.helpers.bench import T0, make_run, save_runs
from tests.helpers.watch import EMPTY, Script

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "schemas" / "dashboard.schema.json").read_text()
)
NOW = T0 + 86400.0  # a day after the recorded benchmark runs: inside the 7 days of history
FREE = 100 * 10**9

SYSTEM: dict[str, Any] = {
    "cpu_percent": 12.5,
    "memory": {
        "total_bytes": 64 * 10**9,
        "used_bytes": 16 * 10**9,
        "available_bytes": 48 * 10**9,
        "percent": 25.0,
    },
    "swap": {"total_bytes": 2 * 10**9, "used_bytes": 0},
    "memory_pressure": "normal",
    "thermal": "nominal",
    "temperatures_c": {"cpu": 51.0},
    "power": {"source": "ac", "battery_percent": None},
    "gpu": None,
    "unavailable": {"gpu": "macmon not installed (brew install macmon)"},
}
HOST = {"name": "studio", "os": "darwin 25.1", "arch": "arm64", "cpu": "Apple M2 Ultra",
        "memory_bytes": 64 * 10**9}  # fmt: skip

SPEC = """\
version: 1
models:
  qwen:
    source: ollama://qwen2.5:7b
  llama:
    source: ollama://llama3.2:1b
  tiny:
    source: hf://org/tiny
dashboard:
  panels: [system, models, disk, benchmarks]
"""


def fixed_seams(clock: float = NOW) -> Seams:
    return Seams(
        clock=lambda: clock,
        disk_space=lambda path: DiskSpace(path, 1, FREE),
        system_figures=lambda: json.loads(json.dumps(SYSTEM)),
        host_facts=lambda: dict(HOST),
    )


def environment(server: FakeOllama) -> None:
    """Two models in the Ollama store (one loaded), an undeclared HF repo, an orphan blob."""
    ob.add_model(ollama_dir(), "qwen2.5:7b")
    ob.add_model(ollama_dir(), "llama3.2:1b")
    ob.add_orphan_blob(ollama_dir(), b"left behind" * 100)
    hb.add_revision(hf_dir(), "org/other", {"config.json": b"{}", "w.bin": b"w" * 3000})
    server.set_running("qwen2.5:7b", size_vram=2048, context_length=8192)
    # A fixed expiry: four minutes after the snapshot's time.
    server.running[next(iter(server.running))]["expires_at"] = iso_time(NOW + 240)


def sampler(**options: Any) -> Sampler:
    session = Session(read_environment(), None, fixed_seams())
    return Sampler(session, **options)


def validate(doc: dict[str, Any]) -> None:
    jsonschema.validate(doc, SCHEMA)


# --- the document -----------------------------------------------------------------------------


def test_snapshot_against_fake_ollama_and_built_stores(ollama_server: FakeOllama) -> None:
    environment(ollama_server)
    Path("mlx.yaml").write_text(SPEC)
    save_runs(
        make_run("r1", model="qwen", gen_tps=(40.0, 40.0, 40.0), started=T0),
        make_run("r2", model="qwen", gen_tps=(48.0, 48.0, 48.0), started=T0 + 3600),
        make_run("old", model="qwen", started=T0 - 8 * 86400),  # before the history window
    )
    doc = sampler().sample()
    validate(doc)
    assert (doc["format_version"], doc["time"], doc["host"]) == ("1", iso_time(NOW), HOST)
    assert doc["system"] == SYSTEM
    ollama = doc["ollama"]
    assert (ollama["reachable"], ollama["version"], ollama["error"]) == (
        True,
        DEFAULT_VERSION,
        None,
    )
    [running] = ollama["running"]
    assert running["name"] == "qwen2.5:7b"
    assert (running["vram_bytes"], running["context_length"]) == (2048, 8192)
    assert running["size_bytes"] > 0 and running["expires_at"] == iso_time(NOW + 240)
    stores = {s["kind"]: s for s in doc["stores"]}
    assert stores["ollama"]["models"] == 2 and stores["huggingface"]["models"] == 1
    assert stores["ollama"]["reclaimable_bytes"] == 1100  # the orphan blob
    assert stores["huggingface"]["size_bytes"] == 3002
    assert {s["free_bytes"] for s in doc["stores"]} == {FREE}
    # No agent runs: drift from a plan. tiny is missing; qwen and llama are present.
    drift = doc["drift"]
    assert (drift["declared"], drift["present"], drift["source"]) == (3, 2, "plan")
    assert drift["pending"]["total"] >= 1 and drift["pending"].get("hf.download") == 1
    assert drift["error"] is None and drift["at"] == iso_time(NOW)
    assert doc["agent"]["running"] is False
    [bench] = doc["benchmarks"]
    assert (bench["model"], bench["benchmark"], bench["engine"]) == ("qwen", "nightly", "ollama")
    assert bench["latest"] == {
        "time": iso_time(T0 + 3600),
        "status": "ok",
        "gen_tps": 48.0,
        "ttft_ms": 100.0,
    }
    assert [h["gen_tps"] for h in bench["history"]] == [40.0, 48.0]


def test_without_mlx_yaml_stores_at_default_places_and_drift_unknown(
    ollama_server: FakeOllama,
) -> None:
    environment(ollama_server)
    doc = sampler().sample()
    validate(doc)
    assert [s["kind"] for s in doc["stores"]] == ["ollama", "huggingface"]
    assert doc["stores"][0]["path"] == str(ollama_dir())
    assert doc["drift"] == {
        "declared": None,
        "present": None,
        "pending": None,
        "source": None,
        "at": None,
        "error": "no mlx.yaml found: nothing is declared",
    }


def test_an_invalid_mlx_yaml_is_drift_unknown_with_why(ollama_server: FakeOllama) -> None:
    Path("mlx.yaml").write_text("version: 1\nmodels:\n  Bad Name:\n    source: x\n")
    doc = sampler().sample()
    validate(doc)
    assert doc["drift"]["declared"] is None
    assert doc["drift"]["error"].startswith("mlx.yaml is invalid (mlx.yaml:3:3")


def test_ollama_down_is_a_fact_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    doc = sampler().sample()
    validate(doc)
    assert doc["ollama"]["reachable"] is False and doc["ollama"]["running"] == []
    assert doc["ollama"]["error"] == "connection refused (is `ollama serve` running?)"


def test_drift_comes_from_the_running_agents_summary(ollama_server: FakeOllama) -> None:
    Path("mlx.yaml").write_text(SPEC)
    summary = {
        "time": "2026-11-30T14:59:00Z",
        "declared": 5,
        "present": 4,
        "pending": {"total": 2, "ollama.delete": 1, "ollama.pull": 1},
        "error": None,
    }
    agent = {"running": True, "pid": 1, "suspended": False, "conditions": []}
    made = sampler(agent=lambda _settings: (agent, summary))
    drift = made.sample()["drift"]
    assert drift == {
        "declared": 5,
        "present": 4,
        "pending": summary["pending"],
        "source": "agent",
        "at": "2026-11-30T14:59:00Z",
        "error": None,
    }
    stopped = {**agent, "running": False}  # a stale summary of a stopped agent: plan instead
    made = sampler(agent=lambda _settings: (stopped, summary))
    assert made.sample()["drift"]["source"] == "plan"


def test_stores_are_scanned_every_n_seconds_or_when_they_change(
    ollama_server: FakeOllama,
) -> None:
    ob.add_model(ollama_dir(), "qwen2.5:7b")
    now = [NOW]
    session = Session(read_environment(), None, Seams(clock=lambda: now[0]))
    made = Sampler(session, system=dict, host=dict, stores_every=60.0)

    def models() -> int:
        return int(made.sample()["stores"][0]["models"])

    assert models() == 1
    ob.add_model(ollama_dir(), "llama3.2:1b")
    now[0] += 30
    assert models() == 1  # cached
    made.stores_changed()  # watchfiles saw the store change
    assert models() == 2
    ob.add_model(ollama_dir(), "phi3:mini")
    now[0] += 60
    assert models() == 3  # the periodic rescan


def test_a_plan_is_made_every_n_seconds_when_its_inputs_changed(ollama_server: FakeOllama) -> None:
    Path("mlx.yaml").write_text(SPEC)
    now = [NOW]
    session = Session(
        read_environment(), None, Seams(clock=lambda: now[0], disk_space=lambda _p: None)
    )
    made = Sampler(session, system=dict, host=dict, plan_every=60.0)
    assert made.sample()["drift"]["present"] == 0
    ob.add_model(ollama_dir(), "qwen2.5:7b")
    now[0] += 10
    assert made.sample()["drift"]["present"] == 0
    now[0] += 50
    drift = made.sample()["drift"]
    assert (drift["present"], drift["at"]) == (1, iso_time(now[0]))
    now[0] += 60  # (the first read of a new manifest may change its access time once)
    at = made.sample()["drift"]["at"]
    now[0] += 60  # nothing changed since: the last plan stands
    assert made.sample()["drift"]["at"] == at
    Path("mlx.yaml").write_text(SPEC + "# edited\n")
    now[0] += 60
    assert made.sample()["drift"]["at"] == iso_time(now[0])


def test_snapshot_file_is_written_atomically_and_read_back(tmp_path: Path) -> None:
    doc = {"format_version": "1", "time": "x"}
    path = write_snapshot(tmp_path / "st", doc)
    assert path == tmp_path / "st" / SNAPSHOT_FILE
    assert read_snapshot(tmp_path / "st") == doc
    assert [p.name for p in (tmp_path / "st").iterdir()] == [SNAPSHOT_FILE]  # no temp left
    path.write_text("{not json")
    assert read_snapshot(tmp_path / "st") is None
    path.write_text('{"format_version": "2"}')
    assert read_snapshot(tmp_path / "st") is None


# --- the agent writes dashboard.json -----------------------------------------------------------


def run_agent(script: Script, seen: list[dict[str, Any] | None]) -> list[Event]:
    events: list[Event] = []
    seams = Seams(clock=script.clock, system_figures=lambda: dict(SYSTEM), host_facts=HOST.copy)
    session = Session(read_environment(), Path("mlx.yaml"), seams)
    with agent_lock(state_dir()), Registry.open(state_dir()) as registry:
        agent = Agent(session, Path("mlx.yaml"), AgentStore(registry), events.append)
        script.hooks = {1: lambda: seen.append(read_snapshot(state_dir()))}
        agent.start()
        agent.run(script.wait, script.done)
        agent.stop()
    return events


def test_the_agent_writes_the_snapshot_after_each_iteration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    Path("mlx.yaml").write_text(SPEC.replace("  tiny:\n    source: hf://org/tiny\n", ""))
    ob.add_model(ollama_dir(), "qwen2.5:7b")
    seen: list[dict[str, Any] | None] = []
    script = Script([(1.0, False, None), (1.0, False, None), (1.0, False, None)])
    events = run_agent(script, seen)
    [during] = seen
    assert during is not None
    validate(during)
    assert during["agent"]["running"] is True
    drift = during["drift"]
    # The missing model is pulled from a daemon that is down: its pull stays pending.
    assert (drift["source"], drift["declared"], drift["present"]) == ("agent", 2, 1)
    assert drift["pending"] == {"total": 1, "ollama.pull": 1}
    assert [s["kind"] for s in during["stores"]] == ["ollama"]
    after = read_snapshot(state_dir())
    assert after is not None and after["agent"]["running"] is False  # written at stop
    assert after["time"] == iso_time(script.now)
    assert not [e for e in events if "dashboard" in e.message]


def test_a_snapshot_that_cannot_be_written_is_logged_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    Path("mlx.yaml").write_text(EMPTY)
    (state_dir() / SNAPSHOT_FILE).mkdir(parents=True)  # os.replace onto a folder fails
    script = Script([(1.0, False, None)] * 4)
    events = run_agent(script, [])
    logs = [e.message for e in events if "dashboard snapshot" in e.message]
    assert len(logs) == 1
    assert logs[0].startswith("could not write the dashboard snapshot: ")
    assert [e.event for e in events if e.event != "log"][-1] == "stopped"  # the loop went on


# --- mlx dashboard --once ----------------------------------------------------------------------


def normalized(text: str, server: FakeOllama, tmp_path: Path) -> str:
    return text.replace(server.url.rstrip("/"), "http://127.0.0.1:PORT").replace(
        str(tmp_path), "<tmp>"
    )


def test_once_text_frame(
    ollama_server: FakeOllama,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    snapshot: SnapshotAssertion,
) -> None:
    environment(ollama_server)
    Path("mlx.yaml").write_text(SPEC)
    save_runs(
        make_run("r1", model="qwen", gen_tps=(40.0, 40.0, 40.0), started=T0),
        make_run("r2", model="qwen", gen_tps=(48.0, 48.0, 48.0), started=T0 + 3600),
    )
    result = mlx(capsys, "dashboard", "--once", seams=fixed_seams())
    assert result.code == 0, result.err
    text = normalized(result.out, ollama_server, tmp_path)
    # Panels in dashboard.panels order, then the agent line.
    titles = [line for line in text.splitlines() if line in ("Models", "System", "Disk")]
    assert titles == ["System", "Models", "Disk"]
    assert text.rstrip().endswith("Agent: not running (`mlx watch` starts it)")
    assert "qwen2.5:7b" in text and "4m" in text
    assert text == snapshot
    alias = mlx(capsys, "dash", "--once", seams=fixed_seams())
    assert normalized(alias.out, ollama_server, tmp_path) == text


def test_once_json(
    ollama_server: FakeOllama,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    snapshot: SnapshotAssertion,
) -> None:
    environment(ollama_server)
    Path("mlx.yaml").write_text(SPEC)
    result = mlx(capsys, "dashboard", "--once", "--json", seams=fixed_seams())
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    validate(doc)
    assert json.loads(normalized(result.out, ollama_server, tmp_path)) == snapshot


def test_help_lists_dash_as_an_alias(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "--help")
    assert result.code == 0
    assert "dashboard" in result.out
    rows = [line.strip("│ ").split() for line in result.out.splitlines()]
    assert ["dash", "Alias", "of", "`mlx", "dashboard`."] in rows


def test_json_without_once_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "dashboard", "--json")
    assert result.code == 1
    assert result.err.splitlines()[0] == (
        "error: --json prints one snapshot: add --once (`mlx dashboard --once --json`)"
    )


def test_a_named_file_that_does_not_exist_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "dashboard", "--once", "-f", "nope.yaml")
    assert result.code == 1
    assert "nope.yaml" in result.err and "Traceback" not in result.err
