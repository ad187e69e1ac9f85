"""``mlx plan`` through the real CLI, on real-format stores written by the builders.

Sizes and digests asserted here come from what the builders wrote (blob bytes, file sizes),
never from mlxstate's own helpers. Nothing here may reach the internet: the autouse
``hub_offline`` fixture points huggingface_hub at a dead loopback port, and the ``--refresh``
tests point it at the loopback fake hub.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import huggingface_hub.constants
import pytest
from ruamel.yaml import YAML
from syrupy.assertion import SnapshotAssertion

from mlxstate.hosts import Host, exclusion
from mlxstate.mlxyaml.models import WhenSpec
from mlxstate.registry import Registry
from mlxstate.seams import Seams
from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.builders.common import make_tree_old
from tests.fakes.hf_hub import FakeHfHub
from tests.helpers import (
    REPO_EXAMPLES,
    Result,
    dead_url,
    hf_dir,
    manage,
    mlx,
    ollama_dir,
    state_dir,
)

NO_CHANGES = "No changes. Your models match mlx.yaml."
TOP_KEYS = {
    "format_version",
    "mlxstate_version",
    "spec",
    "observed",
    "actions",
    "summary",
    "warnings",
    "conflicts",  # added with links: things in the way mlx leaves alone
    "workspace",
    "options",
    "host",  # the machine planned for (`when:`, `--host`)
    "skipped",  # what `when:` keeps off that machine
}
# SPEC §6 keys, plus the fields format 1 added: an action's `model` and `params` (what apply
# needs to carry out a saved plan exactly) and the summary's `download_unknown`.
ACTION_KEYS = {
    *("id", "op", "kind", "subject", "download_bytes", "free_bytes", "reason"),
    *("model", "params", "reason_code"),
}
SUMMARY_KEYS = {"add", "change", "destroy", "download_bytes", "free_bytes", "download_unknown"}


def freed(deleted: list[Any], kept: list[Any]) -> list[int]:
    """Bytes each delete frees, in plan order: blobs no kept model uses, each counted once."""
    keep = {b.digest for m in kept for b in m.blobs}
    seen: set[str] = set()
    out = []
    for model in deleted:
        blobs = {b.digest: b.size for b in model.blobs}
        out.append(sum(n for d, n in blobs.items() if d not in keep and d not in seen))
        seen |= set(blobs)
    return out


KINDS_NOW = {"ollama.pull", "ollama.delete", "hf.download", "hf.delete"}
SYMBOLS = {"create": "+", "update": "~", "delete": "-", "replace": "-/+"}
EXAMPLES = sorted(p.name for p in REPO_EXAMPLES.glob("*.yaml"))

# HF repo contents: one LFS weight file and two small git files.
WEIGHTS = b"\x00safetensors" + bytes(range(256)) * 40  # 10252 bytes, LFS (binary)
CONFIG = b'{"model_type": "llama", "hidden_size": 64}\n'
TOKENIZER = b'{"version": "1.0", "model": {"type": "BPE"}}\n'
HF_FILES = {"config.json": CONFIG, "model.safetensors": WEIGHTS, "tokenizer.json": TOKENIZER}


# --- environment --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No daemon, and a hub endpoint that refuses connections: a stray request fails fast
    on loopback instead of reaching huggingface.co."""
    monkeypatch.setenv("OLLAMA_HOST", dead_url())
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", dead_url())
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


@pytest.fixture
def hub(fake_hub: FakeHfHub) -> FakeHfHub:
    """The fake hub, reached only through ``HF_ENDPOINT`` (set by the ``fake_hub`` fixture):
    the library's own import-time endpoint stays the dead one of ``hub_offline``."""
    return fake_hub


# --- helpers ------------------------------------------------------------------------------------


def write_spec(text: str, path: Path | None = None) -> Path:
    target = path or Path("mlx.yaml")
    target.write_text(text)
    return target


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.out + result.err


def plan(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> str:
    result = mlx(capsys, "plan", *args)
    no_traceback(result)
    assert result.code == code, (result.out, result.err)
    return result.out


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    result = mlx(capsys, "plan", "--json", *args)
    assert result.code == 0, result.err
    doc = json.loads(result.out)  # stdout holds exactly one JSON document
    assert isinstance(doc, dict)
    return doc


def plan_error(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    result = mlx(capsys, "plan", *args)
    no_traceback(result)
    assert result.code == 1, (result.out, result.err)
    return result


def action_line(text: str, name: str) -> str:
    """The plan line for the model ``name`` (symbol first, then the name)."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in SYMBOLS.values() and parts[1] == name:
            return line
    raise AssertionError(f"no action line for {name!r} in:\n{text}")


def action_names(text: str) -> dict[str, str]:
    """name -> symbol for every action line of a human plan."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in SYMBOLS.values():
            out[parts[1]] = parts[0]
    return out


def summary_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.startswith("Plan: ")]
    assert len(lines) == 1, text
    return lines[0]


def actions_by_id(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in doc["actions"]}


def position(spec_text: str, needle: str) -> tuple[int, int]:
    """1-based (line, col) of the first occurrence of ``needle`` in the spec text."""
    for number, line in enumerate(spec_text.splitlines(), start=1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(needle)


def tree_listing(*roots: Path) -> dict[str, tuple[Any, ...]]:
    """Every entry below ``roots``: kind, size, mode, mtime_ns (links: their target)."""
    out: dict[str, tuple[Any, ...]] = {}
    for root in roots:
        if not root.exists():
            out[str(root)] = ("absent",)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            for name in (*dirnames, *filenames):
                path = Path(dirpath, name)
                st = path.lstat()
                if path.is_symlink():
                    out[str(path)] = ("link", os.readlink(path), st.st_mtime_ns)
                elif path.is_dir():
                    out[str(path)] = ("dir", st.st_mtime_ns, st.st_mode)
                else:
                    out[str(path)] = ("file", st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def add_ollama(name: str, size: int = 4096) -> ob.ManifestInfo:
    return ob.add_model(ollama_dir(), name, ob.default_layers(name, size))


def add_hf(repo_id: str, files: dict[str, bytes] | None = None, **kw: Any) -> hb.CachedRevision:
    return hb.add_revision(hf_dir(), repo_id, HF_FILES if files is None else files, **kw)


# The host the examples are planned as: a big Mac (fleet examples skip the rest with `when:`).
EXAMPLE_HOST = Host("studio", 192 * 10**9, "macos")
EXAMPLE_HOST_ARGS = ("--host", "studio", "--memory", "192GB", "--os", "macos")


def declared_models(example: Path) -> list[str]:
    """Names an example declares that a fresh machine lacks (not absent, not file://, and
    for EXAMPLE_HOST)."""
    doc = YAML(typ="safe").load(example.read_text())
    return sorted(
        name
        for name, model in (doc.get("models") or {}).items()
        if model.get("ensure", "present") != "absent"
        and not str(model["source"]).startswith("file://")
        and exclusion(WhenSpec.model_validate(model.get("when") or {}), EXAMPLE_HOST) is None
    )


SATISFIED_SPEC = """\
version: 1
models:
  qwen:
    source: ollama://qwen2.5:7b
  tiny:
    source: hf://org/tiny
"""


@pytest.fixture
def satisfied() -> dict[str, Any]:
    """Stores holding exactly what SATISFIED_SPEC declares."""
    write_spec(SATISFIED_SPEC)
    return {"qwen": add_ollama("qwen2.5:7b"), "tiny": add_hf("org/tiny")}


# --- a fresh machine ----------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES)
def test_examples_on_a_fresh_machine_plan_every_model(
    capsys: pytest.CaptureFixture[str], example: str
) -> None:
    path = REPO_EXAMPLES / example
    expected = declared_models(path)
    assert expected, "an example without downloadable models proves nothing"

    text = plan(capsys, "-f", str(path), *EXAMPLE_HOST_ARGS)
    models_section = text.split("Links:")[0]  # the examples' apps add link lines after
    assert action_names(models_section) == dict.fromkeys(expected, "+")
    # Lines, not names: one model linked into two apps is two actions.
    link_text = text.split("Links:")[1] if "Links:" in text else ""
    links = sum(line.split()[:1] == ["+"] for line in link_text.splitlines())
    assert summary_line(text).startswith(
        f"Plan: {len(expected) + links} to add, 0 to change, 0 to destroy."
    )
    plan(capsys, "-f", str(path), *EXAMPLE_HOST_ARGS, "--detailed-exitcode", code=2)
    assert not ollama_dir().exists() and not hf_dir().exists()


def test_fresh_machine_json_lists_creates_with_unknown_sizes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = plan_json(capsys, "-f", str(REPO_EXAMPLES / "minimal.yaml"))
    kinds = {a["id"]: (a["op"], a["kind"], a["download_bytes"]) for a in doc["actions"]}
    assert kinds == {
        "model/qwen-coder": ("create", "ollama.pull", None),
        "model/llama-1b": ("create", "hf.download", None),
    }
    assert doc["summary"]["add"] == 2


# --- stores that match the spec -----------------------------------------------------------------


def test_satisfied_stores_say_no_changes(
    capsys: pytest.CaptureFixture[str], satisfied: dict[str, Any]
) -> None:
    text = plan(capsys)
    assert NO_CHANGES in text
    assert "Plan:" not in text
    plan(capsys, "--detailed-exitcode", code=0)
    doc = plan_json(capsys)
    assert doc["actions"] == []
    assert doc["summary"] == dict.fromkeys(SUMMARY_KEYS, 0)


def test_pinned_commit_that_is_cached_is_satisfied(capsys: pytest.CaptureFixture[str]) -> None:
    rev = add_hf("org/tiny", refs=())  # detached: no ref, only the pinned snapshot
    write_spec(
        f"version: 1\nmodels:\n  tiny:\n    source: hf://org/tiny\n    revision: {rev.commit}\n"
    )
    assert NO_CHANGES in plan(capsys, "--detailed-exitcode")


def test_pinned_commit_not_cached_is_an_update(capsys: pytest.CaptureFixture[str]) -> None:
    add_hf("org/tiny")
    pinned = "ab" * 20
    write_spec(f"version: 1\nmodels:\n  tiny:\n    source: hf://org/tiny\n    revision: {pinned}\n")
    line = action_line(plan(capsys), "tiny")
    assert line.split()[0] == "~"
    assert pinned[:12] in line


# --- repairs ------------------------------------------------------------------------------------


def test_broken_ollama_model_is_repaired_with_the_missing_bytes(
    capsys: pytest.CaptureFixture[str], satisfied: dict[str, Any]
) -> None:
    info: ob.ManifestInfo = satisfied["qwen"]
    weights = info.layer("model")
    assert weights is not None
    ob.remove_blob(ollama_dir(), weights.digest)

    text = plan(capsys)
    line = action_line(text, "qwen")
    assert line.split()[0] == "~"
    assert "ollama://qwen2.5:7b" in line
    assert "repair" in line and weights.hex[:12] in line
    assert "download 4.1 kB" in line  # 4096 bytes of GGUF, decimal units like Ollama
    assert summary_line(text).startswith("Plan: 0 to add, 1 to change, 0 to destroy.")

    action = actions_by_id(plan_json(capsys))["model/qwen"]
    assert (action["op"], action["kind"]) == ("update", "ollama.pull")
    assert action["download_bytes"] == weights.size == 4096


def test_truncated_ollama_blob_counts_the_whole_blob(
    capsys: pytest.CaptureFixture[str], satisfied: dict[str, Any]
) -> None:
    info: ob.ManifestInfo = satisfied["qwen"]
    weights = info.layer("model")
    assert weights is not None
    ob.truncate_blob(ollama_dir(), weights.digest, 100)
    action = actions_by_id(plan_json(capsys))["model/qwen"]
    assert action["op"] == "update"
    assert action["download_bytes"] == weights.size
    assert "100 bytes" in action["reason"]


def test_hf_dangling_snapshot_link_is_repaired(
    capsys: pytest.CaptureFixture[str], satisfied: dict[str, Any]
) -> None:
    rev: hb.CachedRevision = satisfied["tiny"]
    rev.files["model.safetensors"].blob_path.unlink()

    line = action_line(plan(capsys), "tiny")
    assert line.split()[0] == "~"
    assert "model.safetensors" in line and "repair" in line
    action = actions_by_id(plan_json(capsys))["model/tiny"]
    assert (action["op"], action["kind"]) == ("update", "hf.download")
    assert action["download_bytes"] == len(WEIGHTS)
    plan(capsys, "--detailed-exitcode", code=2)


def test_hf_snapshot_missing_files_of_its_listing_is_repaired(
    capsys: pytest.CaptureFixture[str],
) -> None:
    extra = b"# Tiny\n" * 10
    add_hf("org/tiny", remote_files={**HF_FILES, "README.md": extra})
    write_spec(SATISFIED_SPEC.split("  qwen:")[0] + "  tiny:\n    source: hf://org/tiny\n")
    action = actions_by_id(plan_json(capsys))["model/tiny"]
    assert action["op"] == "update" and "README.md" in action["reason"]
    assert action["download_bytes"] == len(extra)


def test_include_that_the_partial_snapshot_satisfies_is_no_change(
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_hf("org/tiny", remote_files={**HF_FILES, "model-f16.safetensors": b"\x00" * 50})
    write_spec(
        "version: 1\nmodels:\n  tiny:\n    source: hf://org/tiny\n"
        '    include: ["*.json", "model.safetensors"]\n'
    )
    assert NO_CHANGES in plan(capsys, "--detailed-exitcode")


# --- deletes: ensure absent, prune ---------------------------------------------------------------


def test_ensure_absent_deletes_an_unmanaged_model_and_frees_its_bytes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = add_ollama("llama2:7b", size=20_000)
    rev = add_hf("org/gone")
    write_spec(
        "version: 1\nmodels:\n"
        "  old:\n    source: ollama://llama2:7b\n    ensure: absent\n"
        "  gone:\n    source: hf://org/gone\n    ensure: absent\n"
    )
    text = plan(capsys)
    line = action_line(text, "old")
    assert line.split()[0] == "-"
    assert "ensure: absent" in line
    assert action_line(text, "gone").split()[0] == "-"
    assert summary_line(text).startswith("Plan: 0 to add, 0 to change, 2 to destroy.")

    actions = actions_by_id(plan_json(capsys))
    assert actions["model/old"]["kind"] == "ollama.delete"
    assert actions["model/old"]["free_bytes"] == info.size
    assert actions["model/gone"]["kind"] == "hf.delete"
    assert actions["model/gone"]["free_bytes"] == rev.size_on_disk
    assert f"free {info.size / 1000:.1f} kB" in line


def test_ensure_absent_on_a_missing_model_is_no_change(capsys: pytest.CaptureFixture[str]) -> None:
    write_spec("version: 1\nmodels:\n  old:\n    source: ollama://llama2:7b\n    ensure: absent\n")
    assert NO_CHANGES in plan(capsys, "--detailed-exitcode")


PRUNE_SPEC = """\
version: 1
settings:
  prune: true
models:
  qwen:
    source: ollama://qwen2.5:7b
"""


def test_prune_deletes_managed_undeclared_and_never_unmanaged(
    capsys: pytest.CaptureFixture[str],
) -> None:
    qwen = add_ollama("qwen2.5:7b")
    managed = add_ollama("mistral:7b")
    phi = add_ollama("phi3:mini")  # the user's own: not in the registry
    user_repo = add_hf("user/own")
    manage("ollama://qwen2.5:7b", "qwen")
    manage("ollama://mistral:7b", "mistral")
    write_spec(PRUNE_SPEC)

    doc = plan_json(capsys)
    assert [(a["id"], a["op"], a["kind"]) for a in doc["actions"]] == [
        ("prune/ollama://mistral:7b", "delete", "ollama.delete")
    ]
    assert doc["actions"][0]["free_bytes"] == freed([managed], [qwen, phi])[0] > 0
    text = plan(capsys)
    assert action_names(text) == {"mistral": "-"}  # the name it was installed under
    assert "phi3" not in text and "user/own" not in text
    assert user_repo.snapshot_dir.is_dir()


def test_without_prune_a_managed_undeclared_model_is_only_a_warning(
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_ollama("qwen2.5:7b")
    add_ollama("mistral:7b")
    manage("ollama://mistral:7b", "mistral")
    write_spec(PRUNE_SPEC.replace("prune: true", "prune: false"))
    doc = plan_json(capsys)
    assert doc["actions"] == []
    assert any("mistral:7b" in w for w in doc["warnings"])
    assert NO_CHANGES in plan(capsys, "--detailed-exitcode")


def test_deleting_an_alias_that_shares_every_blob_frees_nothing(
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = add_ollama("qwen2.5:7b")
    ob.write_manifest(ollama_dir(), "mycopy:latest", info.raw)  # what `ollama cp` does
    write_spec(
        "version: 1\nmodels:\n  qwen:\n    source: ollama://qwen2.5:7b\n"
        "  copy:\n    source: ollama://mycopy:latest\n    ensure: absent\n"
    )
    action = actions_by_id(plan_json(capsys))["model/copy"]
    assert action["op"] == "delete"
    assert action["free_bytes"] == 0


def test_ollama_names_match_with_default_tag_and_any_case(
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_ollama("qwen2.5:latest")
    add_ollama("hf.co/bartowski/Gemma-GGUF:Q4_K_M")
    add_hf("Org/Tiny")
    write_spec(
        "version: 1\nmodels:\n  qwen:\n    source: ollama://QWEN2.5\n"
        "  gemma:\n    source: ollama://hf.co/bartowski/gemma-gguf:q4_k_m\n"
        "  tiny:\n    source: hf://Org/Tiny\n"
    )
    assert NO_CHANGES in plan(capsys, "--detailed-exitcode")


def test_hf_repo_ids_match_exactly_on_a_case_sensitive_cache(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """models--Org--Tiny is not hf://org/tiny where the filesystem keeps both apart."""
    add_hf("Org/Tiny")
    write_spec("version: 1\nmodels:\n  tiny:\n    source: hf://org/tiny\n")
    out = plan(capsys, "--detailed-exitcode", code=2)
    assert "+ tiny" in out and "hf://org/tiny" in out


def test_hf_repo_ids_match_in_any_case_where_the_filesystem_folds_case(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """On macOS's default filesystem both spellings are one folder: one repo."""
    add_hf("Org/Tiny")
    write_spec("version: 1\nmodels:\n  tiny:\n    source: hf://org/tiny\n")
    result = mlx(capsys, "plan", "--detailed-exitcode", seams=Seams(folds_case=lambda _: True))
    assert result.code == 0 and NO_CHANGES in result.out, result.out + result.err


# --- plan problems: exit 1, FILE:LINE:COL, no traceback -----------------------------------------


REPLACE_SPEC = """\
version: 1
settings:
  prune: true
models:
  chat:
    source: ollama://qwen2.5:7b
    protect: true
"""


def test_replace_of_a_protected_model_fails_with_its_position(
    capsys: pytest.CaptureFixture[str],
) -> None:
    add_ollama("llama3.2:1b")
    manage("ollama://llama3.2:1b", "chat")  # `chat` used to be llama3.2
    write_spec(REPLACE_SPEC)
    result = plan_error(capsys)
    line, col = position(REPLACE_SPEC, "protect: true")
    problem = [x.strip() for x in result.err.splitlines() if x.strip().startswith("mlx.yaml:")]
    assert len(problem) == 1, result.err
    assert problem[0].startswith(f"mlx.yaml:{line}:")
    assert int(problem[0].split(":")[2]) in (col, col + len("protect: "))
    assert "chat" in problem[0] and "protect" in problem[0]
    assert result.out == ""


def test_replace_without_protect_is_minus_plus(capsys: pytest.CaptureFixture[str]) -> None:
    old = add_ollama("llama3.2:1b")
    manage("ollama://llama3.2:1b", "chat")
    write_spec(REPLACE_SPEC.replace("    protect: true\n", ""))
    doc = plan_json(capsys)
    action = actions_by_id(doc)["model/chat"]
    assert (action["op"], action["kind"]) == ("replace", "ollama.pull")
    assert action["free_bytes"] == old.size
    assert (doc["summary"]["add"], doc["summary"]["destroy"]) == (1, 1)
    saved = mlx(capsys, "plan", "--json", "--out", "plan.json")
    assert Path("plan.json").read_text() == saved.out
    assert saved.out.isascii() and "\\u2192" in saved.out  # the → of the reason, escaped
    text = plan(capsys)
    assert action_line(text, "chat").split()[0] == "-/+"
    assert "ollama://llama3.2:1b → ollama://qwen2.5:7b" in text
    assert summary_line(text).startswith("Plan: 1 to add, 0 to change, 1 to destroy.")


def test_missing_file_source_fails_with_its_position(capsys: pytest.CaptureFixture[str]) -> None:
    spec = "version: 1\nmodels:\n  lora:\n    source: file://loras/nowhere\n"
    write_spec(spec)
    result = plan_error(capsys, "-f", "mlx.yaml")
    line, col = position(spec, "source:")
    problem = [x.strip() for x in result.err.splitlines() if x.strip().startswith("mlx.yaml:")]
    assert len(problem) == 1, result.err
    assert problem[0].startswith(f"mlx.yaml:{line}:")
    assert int(problem[0].split(":")[2]) in (col, col + len("source: "))
    assert "nowhere" in problem[0] and "does not exist" in problem[0]
    plan_error(capsys, "--detailed-exitcode")


def test_existing_file_source_is_no_action(capsys: pytest.CaptureFixture[str]) -> None:
    Path("loras/mine").mkdir(parents=True)
    write_spec("version: 1\nmodels:\n  lora:\n    source: file://loras/mine\n")
    assert NO_CHANGES in plan(capsys, "--detailed-exitcode")


def test_min_free_refuses_downloads_with_the_numbers(
    capsys: pytest.CaptureFixture[str], satisfied: dict[str, Any]
) -> None:
    weights = satisfied["qwen"].layer("model")
    ob.remove_blob(ollama_dir(), weights.digest)
    write_spec(
        SATISFIED_SPEC.replace("models:", "settings:\n  disk:\n    min_free: 900TB\nmodels:")
    )
    result = plan_error(capsys)
    assert "min_free" in result.err and "900.0 TB" in result.err


def test_invalid_spec_exits_1_with_validation_errors(capsys: pytest.CaptureFixture[str]) -> None:
    write_spec("version: 1\nmodels:\n  x:\n    source: ollama://qwen\n    colour: red\n")
    result = plan_error(capsys)
    assert "mlx.yaml:5:5: error:" in result.err, result.err
    assert "colour" in result.err
    assert result.out == ""


def test_missing_spec_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    result = plan_error(capsys)
    assert "mlx init" in result.err


# --- --target -----------------------------------------------------------------------------------


def test_target_limits_the_plan_and_warns(capsys: pytest.CaptureFixture[str]) -> None:
    write_spec(SATISFIED_SPEC)
    result = mlx(capsys, "plan", "--target", "qwen")
    assert result.code == 0
    assert action_names(result.out) == {"qwen": "+"}
    # Warnings are logs: on stderr, the plan alone on stdout.
    assert "partial plan" not in result.out
    assert any(
        x.startswith("warning: ") and "partial plan" in x and "--target" in x
        for x in result.err.splitlines()
    )
    doc = plan_json(capsys, "--target", "qwen")
    assert [a["id"] for a in doc["actions"]] == ["model/qwen"]
    assert any("partial" in w for w in doc["warnings"])
    both = plan_json(capsys, "--target", "qwen", "--target", "tiny")
    assert [a["id"] for a in both["actions"]] == ["model/qwen", "model/tiny"]


def test_unknown_target_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    write_spec(SATISFIED_SPEC)
    result = plan_error(capsys, "--target", "nope")
    assert "nope" in result.err
    assert result.out == ""


# --- JSON ---------------------------------------------------------------------------------------


MIXED_SPEC = """\
version: 1
settings:
  prune: true
models:
  qwen:
    source: ollama://qwen2.5:7b
  tiny:
    source: hf://org/tiny
  fresh:
    source: ollama://gemma2:2b
  old:
    source: ollama://llama2:7b
    ensure: absent
"""


@pytest.fixture
def mixed() -> dict[str, Any]:
    """One of each: repair (qwen), create (fresh), delete (old), prune (mistral), no-op (tiny)."""
    qwen = add_ollama("qwen2.5:7b")
    weights = qwen.layer("model")
    assert weights is not None
    ob.remove_blob(ollama_dir(), weights.digest)
    old = add_ollama("llama2:7b", size=30_000)
    mistral = add_ollama("mistral:7b", size=12_000)
    manage("ollama://mistral:7b", "mistral")
    tiny = add_hf("org/tiny")
    add_hf("someone/else", {"config.json": b"{}"})
    write_spec(MIXED_SPEC)
    return {"qwen": qwen, "weights": weights, "old": old, "mistral": mistral, "tiny": tiny}


def test_json_has_exactly_the_spec_shape(
    capsys: pytest.CaptureFixture[str], mixed: dict[str, Any]
) -> None:
    result = mlx(capsys, "plan", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert set(doc) == TOP_KEYS
    assert doc["format_version"] == "1"
    assert isinstance(doc["mlxstate_version"], str) and doc["mlxstate_version"]
    assert set(doc["spec"]) == {"path", "sha256"}
    assert Path(doc["spec"]["path"]).is_absolute()
    assert Path(doc["spec"]["path"]) == Path("mlx.yaml").resolve()
    assert doc["spec"]["sha256"] == hashlib.sha256(Path("mlx.yaml").read_bytes()).hexdigest()
    assert set(doc["observed"]) == {"fingerprint"}
    fp = doc["observed"]["fingerprint"]
    assert isinstance(fp, str) and len(fp) == 64 and int(fp, 16) >= 0
    assert isinstance(doc["warnings"], list) and all(isinstance(w, str) for w in doc["warnings"])

    for action in doc["actions"]:
        assert set(action) == ACTION_KEYS
        assert action["op"] in SYMBOLS
        assert action["kind"] in KINDS_NOW
        for key in ("id", "subject", "reason", "reason_code"):
            assert isinstance(action[key], str) and action[key]
        for key in ("download_bytes", "free_bytes"):
            assert action[key] is None or type(action[key]) is int
    assert len({a["id"] for a in doc["actions"]}) == len(doc["actions"])

    by_id = actions_by_id(doc)
    assert {i: (a["op"], a["kind"]) for i, a in by_id.items()} == {
        "model/qwen": ("update", "ollama.pull"),
        "model/fresh": ("create", "ollama.pull"),
        "model/old": ("delete", "ollama.delete"),
        "prune/ollama://mistral:7b": ("delete", "ollama.delete"),
    }
    assert {i: a["reason_code"] for i, a in by_id.items()} == {
        "model/qwen": "repair",
        "model/fresh": "declared-not-present",
        "model/old": "ensure-absent",
        "prune/ollama://mistral:7b": "prune",
    }
    assert by_id["model/qwen"]["download_bytes"] == mixed["weights"].size
    assert by_id["model/fresh"]["download_bytes"] is None  # Ollama sizes are unknown offline
    old_free, mistral_free = freed([mixed["old"], mixed["mistral"]], [mixed["qwen"]])
    assert by_id["model/old"]["free_bytes"] == old_free > 0
    assert by_id["prune/ollama://mistral:7b"]["free_bytes"] == mistral_free > 0
    # deletes (which free space) come before the downloads that need it
    ops = [a["op"] for a in doc["actions"]]
    assert ops == sorted(ops, key=["delete", "replace", "update", "create"].index)

    summary = doc["summary"]
    assert set(summary) == SUMMARY_KEYS
    assert all(type(v) is int for v in summary.values())
    actions = doc["actions"]
    assert summary["add"] == sum(a["op"] in ("create", "replace") for a in actions)
    assert summary["change"] == sum(a["op"] == "update" for a in actions)
    assert summary["destroy"] == sum(a["op"] in ("delete", "replace") for a in actions)
    assert summary["download_bytes"] == sum(a["download_bytes"] or 0 for a in actions)
    assert summary["free_bytes"] == sum(a["free_bytes"] or 0 for a in actions)
    assert (summary["add"], summary["change"], summary["destroy"]) == (1, 1, 2)


def test_json_spec_path_is_absolute_from_a_relative_file_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    Path("conf").mkdir()
    write_spec(SATISFIED_SPEC, Path("conf/my.yaml"))
    doc = plan_json(capsys, "-f", "conf/my.yaml")
    assert doc["spec"]["path"] == str((tmp_path / "conf" / "my.yaml").resolve())


def test_json_prints_only_json_on_stdout_even_with_warnings(
    capsys: pytest.CaptureFixture[str], mixed: dict[str, Any]
) -> None:
    result = mlx(capsys, "plan", "--json", "--target", "qwen", "--out", "plan.json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)  # raises if anything but one document is there
    assert doc["warnings"]
    assert "Warning" not in result.out and "Saved" not in result.out


def test_json_with_detailed_exitcode(
    capsys: pytest.CaptureFixture[str], mixed: dict[str, Any]
) -> None:
    result = mlx(capsys, "plan", "--json", "--detailed-exitcode")
    assert result.code == 2
    assert json.loads(result.out)["actions"]


def test_out_writes_the_same_document_atomically(
    capsys: pytest.CaptureFixture[str], mixed: dict[str, Any], tmp_path: Path
) -> None:
    before = set(os.listdir(tmp_path))
    text = plan(capsys, "--out", "plan.json")
    assert "plan.json" in text and "mlx apply plan.json" in text
    assert set(os.listdir(tmp_path)) - before == {"plan.json"}  # no temp file left behind
    saved = json.loads(Path("plan.json").read_text())
    assert saved == plan_json(capsys)

    Path("plan.json").write_text("old content")
    result = mlx(capsys, "plan", "--json", "--out", "plan.json")
    assert Path("plan.json").read_text() == result.out  # the same bytes
    assert set(os.listdir(tmp_path)) - before == {"plan.json"}


def test_out_into_an_unwritable_place_is_a_clean_error(
    capsys: pytest.CaptureFixture[str], satisfied: dict[str, Any]
) -> None:
    Path("afile").write_text("x")
    result = plan_error(capsys, "--out", "afile/plan.json")
    assert "afile/plan.json" in result.err


def test_a_failed_plan_writes_no_plan_file(capsys: pytest.CaptureFixture[str]) -> None:
    write_spec("version: 1\nmodels:\n  lora:\n    source: file://nowhere\n")
    plan_error(capsys, "--out", "plan.json")
    assert not Path("plan.json").exists()


def test_spec_path_is_absolute_when_found_through_mlx_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    Path("sub").mkdir()
    write_spec(SATISFIED_SPEC, Path("sub/x.yaml"))
    monkeypatch.setenv("MLX_FILE", "sub/x.yaml")
    assert plan_json(capsys)["spec"]["path"] == str((tmp_path / "sub" / "x.yaml").resolve())


def test_quiet_prints_nothing_without_changes_and_the_plan_with_them(
    capsys: pytest.CaptureFixture[str], satisfied: dict[str, Any]
) -> None:
    assert plan(capsys, "-q") == ""
    weights = satisfied["qwen"].layer("model")
    ob.remove_blob(ollama_dir(), weights.digest)
    assert action_line(plan(capsys, "-q"), "qwen").split()[0] == "~"


# --- determinism and the fingerprint -------------------------------------------------------------


def test_plan_is_deterministic(capsys: pytest.CaptureFixture[str], mixed: dict[str, Any]) -> None:
    assert plan(capsys) == plan(capsys)
    first, second = mlx(capsys, "plan", "--json"), mlx(capsys, "plan", "--json")
    assert first.out == second.out


def fingerprint(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    result = mlx(capsys, "plan", "--json", *args)
    assert result.code == 0, result.err
    return str(json.loads(result.out)["observed"]["fingerprint"])


def test_fingerprint_follows_the_facts_the_plan_depends_on(
    capsys: pytest.CaptureFixture[str], satisfied: dict[str, Any]
) -> None:
    base = fingerprint(capsys)
    assert fingerprint(capsys) == base

    # Unrelated, unmanaged things and the passing of time do not matter.
    add_hf("someone/unrelated", {"config.json": b"{}"})
    add_ollama("phi3:mini")
    make_tree_old(ollama_dir())
    make_tree_old(hf_dir())
    assert fingerprint(capsys) == base

    # A declared model's blob going missing does.
    weights = satisfied["qwen"].layer("model")
    ob.remove_blob(ollama_dir(), weights.digest)
    broken = fingerprint(capsys)
    assert broken != base

    # And a registry change (mlx now manages something) does too.
    manage("ollama://phi3:mini", "phi")
    assert fingerprint(capsys) != broken


def test_fingerprint_changes_with_an_hf_dangling_link(
    capsys: pytest.CaptureFixture[str], satisfied: dict[str, Any]
) -> None:
    base = fingerprint(capsys)
    satisfied["tiny"].files["config.json"].blob_path.unlink()
    assert fingerprint(capsys) != base


def test_fingerprint_changes_when_the_hub_listing_makes_a_repair(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rev = add_hf("org/tiny", tree=False)
    write_spec("version: 1\nmodels:\n  tiny:\n    source: hf://org/tiny\n")
    before = plan_json(capsys)
    assert before["actions"] == []
    hb.write_tree_cache(
        rev.repo_dir,
        rev.commit,
        hb.describe_files({**HF_FILES, "README.md": b"hello\n"}).values(),
    )
    after = plan_json(capsys)
    assert [a["op"] for a in after["actions"]] == ["update"]
    assert after["observed"]["fingerprint"] != before["observed"]["fingerprint"]


# --- plan changes nothing -----------------------------------------------------------------------


def test_plan_changes_nothing_on_disk(
    capsys: pytest.CaptureFixture[str], mixed: dict[str, Any], tmp_path: Path
) -> None:
    roots = (ollama_dir(), hf_dir(), tmp_path / "mlx.yaml")
    before = tree_listing(*roots)
    spec_bytes = Path("mlx.yaml").read_bytes()
    registry = (state_dir() / "registry.db").read_bytes()
    plan(capsys)
    plan_json(capsys)
    plan(capsys, "--detailed-exitcode", code=2)
    assert tree_listing(*roots) == before
    assert Path("mlx.yaml").read_bytes() == spec_bytes
    with Registry.open(state_dir()) as reg:
        sources = sorted(m.source for m in reg.facts().models)
    assert sources == ["ollama://mistral:7b"]
    assert len(registry) > 0


def test_plan_on_a_fresh_machine_creates_no_store(capsys: pytest.CaptureFixture[str]) -> None:
    write_spec(SATISFIED_SPEC)
    plan(capsys)
    assert not ollama_dir().exists()
    assert not hf_dir().exists()


# --- init round trip ----------------------------------------------------------------------------


def test_init_then_plan_says_no_changes(capsys: pytest.CaptureFixture[str]) -> None:
    add_ollama("qwen2.5:7b")
    add_ollama("hf.co/bartowski/Gemma-GGUF:Q4_K_M")
    add_ollama("someone/custom:v1")
    add_hf("org/full")
    add_hf(
        "org/partial",
        {"config.json": CONFIG, "model-q4.safetensors": WEIGHTS},
        remote_files={
            "config.json": CONFIG,
            "model-q4.safetensors": WEIGHTS,
            "model-f16.safetensors": WEIGHTS + b"f16",
            "README.md": b"# partial\n",
        },
    )
    add_hf("org/nolisting", tree=False)
    hb.add_revision(hf_dir(), "org/data", {"train.csv": b"a,b\n"}, repo_type="dataset")

    init = mlx(capsys, "init")
    assert init.code == 0, init.err
    text = plan(capsys, "--detailed-exitcode")
    assert NO_CHANGES in text
    assert plan_json(capsys)["actions"] == []


# --- colour -------------------------------------------------------------------------------------


def test_color_only_when_asked(
    capsys: pytest.CaptureFixture[str], mixed: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" in plan(capsys)  # the test can tell colour from none
    assert "\x1b[" not in plan(capsys, "--no-color")
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in plan(capsys)
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.delenv("FORCE_COLOR")
    assert "\x1b[" not in plan(capsys)  # captured stdout is not a TTY


# --- --refresh against the fake hub --------------------------------------------------------------


NEW_WEIGHTS = b"\x00safetensors-v2" + bytes(reversed(range(256))) * 30
REFRESH_SPEC = "version: 1\nmodels:\n  tiny:\n    source: hf://org/tiny\n"


@pytest.fixture
def moved_head(hub: FakeHfHub) -> dict[str, str]:
    """The cache has main at c1; the hub's main moved to c2 (new weights, same config)."""
    old = hub.add_repo("org/tiny", HF_FILES)
    new = hub.push("org/tiny", {**HF_FILES, "model.safetensors": NEW_WEIGHTS})
    add_hf("org/tiny", commit=old)
    write_spec(REFRESH_SPEC)
    return {"old": old, "new": new}


def test_without_refresh_the_hub_is_never_asked(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub, moved_head: dict[str, str]
) -> None:
    hub.clear_requests()
    assert NO_CHANGES in plan(capsys, "--detailed-exitcode")
    plan_json(capsys)
    assert hub.count() == 0


def test_refresh_shows_a_moved_branch_with_old_and_new_commits(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub, moved_head: dict[str, str]
) -> None:
    hub.clear_requests()
    text = plan(capsys, "--refresh")
    line = action_line(text, "tiny")
    assert line.split()[0] == "~"
    assert moved_head["old"][:12] in line and moved_head["new"][:12] in line
    assert line.index(moved_head["old"][:12]) < line.index(moved_head["new"][:12])
    assert "→" in line
    assert "unknown" not in line
    assert hub.count() >= 1

    action = actions_by_id(plan_json(capsys, "--refresh"))["model/tiny"]
    assert (action["op"], action["kind"]) == ("update", "hf.download")
    assert action["download_bytes"] == len(NEW_WEIGHTS)  # config and tokenizer are cached
    plan(capsys, "--refresh", "--detailed-exitcode", code=2)


def test_refresh_on_an_up_to_date_branch_is_no_change(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    commit = hub.add_repo("org/tiny", HF_FILES)
    add_hf("org/tiny", commit=commit)
    write_spec(REFRESH_SPEC)
    assert NO_CHANGES in plan(capsys, "--refresh", "--detailed-exitcode")
    assert hub.count() >= 1


def test_refresh_sizes_a_fresh_download(capsys: pytest.CaptureFixture[str], hub: FakeHfHub) -> None:
    hub.add_repo("org/tiny", HF_FILES)
    write_spec("version: 1\nmodels:\n  tiny:\n    source: hf://org/tiny\n    include: ['*.json']\n")
    action = actions_by_id(plan_json(capsys, "--refresh"))["model/tiny"]
    assert action["op"] == "create"
    assert action["download_bytes"] == len(CONFIG) + len(TOKENIZER)


def test_refresh_with_a_repo_missing_on_the_hub_exits_1(
    capsys: pytest.CaptureFixture[str], hub: FakeHfHub
) -> None:
    add_hf("org/tiny")
    write_spec(REFRESH_SPEC)
    result = plan_error(capsys, "--refresh")
    assert "org/tiny" in result.err and "tiny" in result.err
    assert "not found on the hub" in result.err
    assert len(result.err.strip().splitlines()) <= 3, result.err
    assert result.out == ""


def test_refresh_with_an_unreachable_hub_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    add_hf("org/tiny")
    write_spec(REFRESH_SPEC)
    result = plan_error(capsys, "--refresh")  # the autouse endpoint refuses connections
    assert "org/tiny" in result.err
    assert "without --refresh" in result.err


def test_refresh_uses_hf_endpoint_from_the_environment(
    capsys: pytest.CaptureFixture[str], fake_hub: FakeHfHub
) -> None:
    # The fake_hub fixture sets HF_ENDPOINT; the library's import-time copy stays dead, so
    # only an explicit endpoint= (what mlx passes) reaches the fake.
    commit = fake_hub.add_repo("org/tiny", HF_FILES)
    add_hf("org/tiny", commit=commit)
    write_spec(REFRESH_SPEC)
    result = mlx(capsys, "plan", "--refresh")
    assert result.code == 0, result.err
    assert fake_hub.count() >= 1


# --- the human output, as a snapshot ------------------------------------------------------------


def test_human_plan_snapshot(
    capsys: pytest.CaptureFixture[str],
    mixed: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    snapshot: SnapshotAssertion,
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.setenv("NO_COLOR", "1")
    rev: hb.CachedRevision = mixed["tiny"]
    rev.files["config.json"].blob_path.unlink()  # an HF repair too
    result = mlx(capsys, "plan")
    assert result.code == 0
    assert str(Path.home()) not in result.out + result.err  # nothing machine-specific
    # The workspace is named after the test's temporary folder: the one machine-specific bit.
    out = re.sub(r"^Workspace: \S+", "Workspace: WORKSPACE", result.out, flags=re.M)
    assert out == snapshot
    assert result.err == snapshot(name="stderr")
