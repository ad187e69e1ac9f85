"""Hosts: ``when: {hosts, min_memory, os}`` on models and apps, `mlx plan --host`, the host in
plan JSON and `mlx status` (docs/mlx-yaml.md, "Hosts")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlxstate.hosts import Host, exclusion, glob_problem, host_name, never_together, os_of
from mlxstate.mlxyaml.models import WhenSpec
from mlxstate.seams import Seams
from tests.builders import hf_cache as hb
from tests.helpers import hf_dir, manage, mlx

GB = 10**9
LAPTOP = Host("laptop", 16 * 2**30, "macos")

FLEET = """\
version: 1
settings: {prune: true}
models:
  small:
    source: ollama://llama3.2:1b
  big:
    source: hf://org/big
    when: {hosts: ["studio*"]}
  mem:
    source: ollama://llama3:70b
    when: {min_memory: 64GB}
"""


def when(**kw: object) -> WhenSpec:
    return WhenSpec.model_validate(kw)


# -- matching --------------------------------------------------------------------------------


def test_exclusion_hosts_globs_match_without_case() -> None:
    assert exclusion(when(hosts=["LAP*"]), LAPTOP) is None
    assert exclusion(when(hosts=["lap?op", "studio"]), LAPTOP) is None
    assert exclusion(when(hosts=["studio"]), LAPTOP) == "hosts [studio] do not match laptop"
    assert exclusion(None, LAPTOP) is None


def test_exclusion_min_memory_is_at_least_and_unknown_fails_closed() -> None:
    exact = Host("x", 64 * GB, "linux")
    assert exclusion(when(min_memory="64GB"), exact) is None
    assert exclusion(when(min_memory="64GB"), Host("x", 64 * GB - 1, "linux")) == (
        "needs min_memory 64.0 GB; x has 64.0 GB"
    )
    unknown = exclusion(when(min_memory="64GB"), Host("x", None, "linux"))
    assert unknown == "needs min_memory 64.0 GB; the memory of x is unknown (--memory)"


def test_exclusion_os_and_unknown_os_fails_closed() -> None:
    assert exclusion(when(os=["macos", "linux"]), LAPTOP) is None
    assert exclusion(when(os=["linux"]), LAPTOP) == "os [linux] only; laptop runs macos"
    assert "OS of laptop is unknown (--os)" in str(
        exclusion(when(os=["macos"]), Host("laptop", None, None))
    )


def test_os_of_platforms() -> None:
    assert [os_of(p) for p in ("darwin", "linux", "win32")] == ["macos", "linux", None]


def test_glob_problems() -> None:
    assert glob_problem("studio*") is None
    assert glob_problem("[ab]-mac?") is None
    assert glob_problem("") == "an empty host glob matches no host"
    assert "contains '/'" in str(glob_problem("a/b"))
    assert "can never match" in str(glob_problem("my mac"))


@pytest.mark.parametrize(
    ("app", "model", "disjoint"),
    [
        ({"hosts": ["laptop"]}, {"hosts": ["studio*"]}, True),
        ({"hosts": ["laptop"]}, {"hosts": ["LAP*"]}, False),
        ({"hosts": ["lap*"]}, {"hosts": ["laptop"]}, False),
        ({"hosts": ["lap*"]}, {"hosts": ["stu*"]}, True),
        ({"hosts": ["*-mini"]}, {"hosts": ["*-studio"]}, True),
        ({"hosts": ["mac-*"]}, {"hosts": ["*-studio"]}, False),  # mac-studio is both
        ({"os": ["linux"]}, {"os": ["macos"]}, True),
        ({"os": ["linux", "macos"]}, {"os": ["macos"]}, False),
        ({}, {"hosts": ["studio"]}, False),  # the app is everywhere
        ({"hosts": ["laptop"]}, {"min_memory": "64GB"}, False),  # memory can be anything
    ],
)
def test_never_together(app: dict[str, object], model: dict[str, object], disjoint: bool) -> None:
    assert (never_together(app, model) is not None) is disjoint


def test_host_name_checks_what_it_is_given() -> None:
    assert host_name(" studio ") == "studio"
    assert host_name() and "." not in host_name()  # the short hostname
    with pytest.raises(ValueError, match="invalid host name"):
        host_name("a/b")


# -- mlx plan --------------------------------------------------------------------------------


def test_plan_as_this_host_from_mlx_host_and_memory_seam(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("mlx.yaml").write_text(FLEET)
    monkeypatch.setenv("MLX_HOST", "studio-2")
    seams = Seams(memory_total=lambda: 192 * GB, platform="darwin")
    result = mlx(capsys, "plan", "--json", seams=seams)
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert doc["host"] == {
        "name": "studio-2",
        "memory_bytes": 192 * GB,
        "os": "macos",
        "given": False,
    }
    assert doc["skipped"] == []
    assert {a["id"] for a in doc["actions"]} == {"model/small", "model/big", "model/mem"}

    small = Seams(memory_total=lambda: 16 * GB, platform="darwin")
    doc = json.loads(mlx(capsys, "plan", "--json", seams=small).out)
    assert doc["skipped"] == [
        {
            "id": "model/mem",
            "subject": "ollama://llama3:70b",
            "reason": "needs min_memory 64.0 GB; studio-2 has 16.0 GB",
        }
    ]


def test_plan_host_option_text_and_unknowns(capsys: pytest.CaptureFixture[str]) -> None:
    Path("mlx.yaml").write_text(FLEET)
    result = mlx(capsys, "plan", "--host", "studio")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0] == "Skipped on this host (when:):"
    reason = "needs min_memory 64.0 GB; the memory of studio is unknown (--memory)"
    assert lines[1].split(None, 2) == ["mem", "ollama://llama3:70b", reason]
    assert lines[2] == ""
    assert "Host: studio (--host), memory unknown, os unknown" in lines
    doc = json.loads(mlx(capsys, "plan", "--json", "--host", "studio", "--memory", "64GB").out)
    assert doc["skipped"] == []
    assert doc["host"]["given"] is True and doc["host"]["memory_bytes"] == 64 * GB


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--host", "a/b"), "--host: invalid host name 'a/b'"),
        (("--host", "x", "--memory", "lots"), "--memory: expected a size such as 64GB"),
        (("--host", "x", "--os", "windows"), "--os: expected macos or linux, got 'windows'"),
    ],
)
def test_plan_host_options_bad_input(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    Path("mlx.yaml").write_text(FLEET)
    result = mlx(capsys, "plan", *args)
    assert result.code == 1
    assert message in result.err
    assert "Traceback" not in result.err


def test_bad_mlx_host_is_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("mlx.yaml").write_text(FLEET)
    monkeypatch.setenv("MLX_HOST", "my laptop")
    result = mlx(capsys, "plan")
    assert result.code == 1
    assert "$MLX_HOST: invalid host name 'my laptop'" in result.err


def test_plan_without_when_keeps_its_text(capsys: pytest.CaptureFixture[str]) -> None:
    """No `when:` and no --host: no skipped block, no host line (the text is as before)."""
    Path("mlx.yaml").write_text("version: 1\nmodels:\n  a:\n    source: ollama://phi3:mini\n")
    out = mlx(capsys, "plan").out
    assert out.startswith("mlx will perform the following actions:\n")
    assert "Host:" not in out and "Skipped" not in out


# -- never pruned, apply, saved plans, status ------------------------------------------------


def test_apply_never_prunes_a_model_skipped_here(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    hb.add_revision(hf_dir(), "org/big", {"config.json": b"{}", "w.safetensors": b"w" * 300})
    manage("hf://org/big", "big")
    folder = hb.repo_dir(hf_dir(), "org/big")
    monkeypatch.setenv("MLX_HOST", "laptop")
    spec = "version: 1\nsettings: {prune: true}\nmodels:\n  big:\n    source: hf://org/big\n"
    Path("mlx.yaml").write_text(spec + '    when: {hosts: ["studio*"]}\n')
    result = mlx(capsys, "apply", "-y")
    assert result.code == 0, result.err
    assert "hosts [studio*] do not match laptop" in result.out
    assert (folder / "snapshots").is_dir()
    # The same model, no longer declared at all, would be pruned: the skip is what kept it.
    Path("mlx.yaml").write_text("version: 1\nsettings: {prune: true}\nmodels: {}\n")
    doc = json.loads(mlx(capsys, "plan", "--json").out)
    assert [a["kind"] for a in doc["actions"]] == ["hf.delete"]


def test_saved_plan_for_another_host_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path("mlx.yaml").write_text(FLEET)
    monkeypatch.setenv("MLX_HOST", "laptop")
    assert mlx(capsys, "plan", "--host", "studio", "--out", "plan.json").code == 0
    result = mlx(capsys, "apply", "plan.json")
    assert result.code == 1
    assert "saved plan was made for host 'studio'; this machine is 'laptop'" in result.err
    assert not hb.repo_dir(hf_dir(), "org/big").exists()


def test_status_names_the_host(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLX_HOST", "tux")
    seams = Seams(memory_total=lambda: None, platform="linux")
    doc = json.loads(mlx(capsys, "status", "--json", seams=seams).out)
    assert doc["host"] == {"name": "tux", "memory_bytes": None, "os": "linux", "given": False}
    assert "Host: tux" in mlx(capsys, "status", seams=seams).out
