"""``mlx stats``: bytes per store, saved by dedup and links, reclaimable, reclaimed."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.helpers import hf_dir, mlx, ollama_dir, state_dir
from tests.helpers.apply import go_offline, no_traceback


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    go_offline(monkeypatch)


def _stats(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    result = mlx(capsys, "stats", "--json")
    no_traceback(result)
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert isinstance(doc, dict)
    return doc


def test_bytes_per_store_and_reclaimable(capsys: pytest.CaptureFixture[str]) -> None:
    m = ob.add_model(ollama_dir(), "a:1", ob.default_layers("a", 8192))
    orphan = ob.add_orphan_blob(ollama_dir(), b"o" * 1000, age=7200)
    rev = hb.add_revision(hf_dir(), "org/m", {"w.bin": b"w" * 3000}, lfs={"w.bin"})

    doc = _stats(capsys)
    text = mlx(capsys, "stats")

    stores = doc["stores"]
    assert isinstance(stores, dict)
    assert stores["ollama"] == {
        "bytes": m.size + orphan.stat().st_size,
        "models": 1,
        "garbage_bytes": 1000,
    }
    assert stores["huggingface"]["bytes"] == rev.size_on_disk == 3000
    reclaim = doc["reclaimable"]
    assert isinstance(reclaim, dict) and reclaim["orphans"] == 1000
    assert text.code == 0 and "Ollama" in text.out and "Reclaimed" in text.out


def test_reclaimed_over_time_comes_from_what_clean_and_apply_freed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    Path("mlx.yaml").write_text("version: 1\nmodels: {}\n")
    ob.add_orphan_blob(ollama_dir(), b"o" * 1000, age=7200)
    hb.add_orphan_blob(hf_dir(), "org/m", b"h" * 500, age=7200)
    hb.add_revision(hf_dir(), "org/m", {"c.json": b"{}\n"})
    assert mlx(capsys, "clean", "-y").code == 0
    with (state_dir() / "journal.jsonl").open("ab") as journal:
        journal.write(b'\xff not json\n{"event": "done", "run": "x", "action": "y"}\n')

    doc = _stats(capsys)

    back = doc["reclaimed"]
    assert isinstance(back, dict)
    month = time.strftime("%Y-%m")
    assert back["bytes"] == 1500
    assert back["by_month"] == [{"month": month, "bytes": 1500, "actions": 2}]
    assert back["by_kind"] == {"cleanup.orphan": 1500}


def test_saved_by_links_counts_app_links_instead_of_copies(
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = ob.fake_gguf("l", 6000)
    ob.add_model(ollama_dir(), "l:1", [("model", data)])
    Path("mlx.yaml").write_text(
        "version: 1\nmodels:\n  l:\n    source: ollama://l:1\n"
        "apps:\n  app:\n    path: ./app\n    layout: dir\n    models: [l]\n"
    )
    assert mlx(capsys, "apply", "-y").code == 0

    doc = _stats(capsys)

    saved = doc["saved"]
    assert isinstance(saved, dict)
    assert saved["links"] == {"bytes": 6000, "links": 1}


@pytest.mark.parametrize("when", ["1e300", "NaN", "-Infinity", "1" + "0" * 400])
def test_a_journal_time_no_clock_has_is_counted_not_a_crash(
    capsys: pytest.CaptureFixture[str], when: str
) -> None:
    journal = state_dir() / "journal.jsonl"
    journal.parent.mkdir(parents=True, exist_ok=True)
    journal.write_bytes(
        b'{"event":"started","run":"r","action":"a","spec":{"free_bytes":7,"kind":"k"}}\n'
        + b'{"event":"done","run":"r","action":"a","time":'
        + when.encode()
        + b"}\n\xff\xfe not json\n"
    )

    result = mlx(capsys, "stats", "--json")

    no_traceback(result)
    assert result.code == 0, result.err
    assert json.loads(result.out)["reclaimed"]["by_kind"] == {"k": 7}
