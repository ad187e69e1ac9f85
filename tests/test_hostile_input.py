"""Hostile mlx.yaml files and edit arguments: one clear line, exit 1, nothing written.

Never exit 3, never a traceback, never a hang or a MemoryError (docs/mlx-yaml.md).
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mlxstate.inventory import REPOSITORY, SCHEMA_URL
from mlxstate.mlxyaml.plain import MAX_DEPTH, MAX_NODES
from mlxstate.mlxyaml.read import MAX_SPEC_BYTES
from mlxstate.sources import parse_source
from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.helpers import Result, hf_dir, mlx, ollama_dir

ROOT = Path(__file__).resolve().parent.parent
VALID = "version: 1\nmodels:\n  llama:\n    source: hf://org/llama\n"


def failed_cleanly(result: Result | subprocess.CompletedProcess[str]) -> str:
    """stdout + stderr of a run that failed as a user error (exit 1), not as a bug."""
    code = result.code if isinstance(result, Result) else result.returncode
    out = result.out if isinstance(result, Result) else result.stdout
    err = result.err if isinstance(result, Result) else result.stderr
    assert code == 1, out + err
    assert "Traceback" not in err and "internal error" not in err, err
    return out + err


def validate(capsys: pytest.CaptureFixture[str], text: str | bytes) -> list[str]:
    path = Path("mlx.yaml")
    path.write_bytes(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    result = mlx(capsys, "validate")
    failed_cleanly(result)
    assert result.out.splitlines()[-1].endswith("in mlx.yaml"), result.out
    return result.out.splitlines()[:-1]


def subprocess_mlx(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """A separate process: a hang is a failed test (timeout), not a hung suite."""
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mlxstate", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --- 1. lone surrogates -------------------------------------------------------------------------

SURROGATE = (
    "text contains \\ud800, half of a UTF-16 surrogate pair, which is not a character; "
    "write the character itself (or its \\U0001xxxx escape)"
)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            'version: 1\nmodels:\n  a:\n    source: "ollama://x\\ud800"\n',
            "4:13: error: models.a.source",
        ),
        (
            'version: 1\nmodels:\n  "a\\ud800":\n    source: hf://o/r\n',
            "3:3: error: models.a\\ud800",
        ),
        (
            "version: 1\nmodels:\n  a:\n    source: hf://o/r\napps:\n  x:\n    path: /tmp/x\n"
            '    models: [a, "\\ud800"]\n',
            "8:17: error: apps.x.models[1]",
        ),
        ('version: 1\nsettings:\n  state_dir: "/tmp/\\udfff"\n', "3:14: error: settings.state_dir"),
    ],
)
def test_lone_surrogate_is_an_error_at_its_value(
    capsys: pytest.CaptureFixture[str], text: str, where: str
) -> None:
    [line] = validate(capsys, text)
    expected = SURROGATE.replace("ud800", "udfff") if "udfff" in text else SURROGATE
    assert line == f"mlx.yaml:{where}: {expected}"


def test_lone_surrogate_fails_plan_and_add_cleanly(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path("mlx.yaml")
    path.write_text('version: 1\nmodels:\n  a:\n    source: "ollama://x\\ud800"\n')
    before = path.read_bytes()
    assert "4:13" in failed_cleanly(mlx(capsys, "plan"))
    assert "4:13" in failed_cleanly(mlx(capsys, "add", "hf://org/other"))
    assert path.read_bytes() == before


# --- 2. size cap, devices, FIFOs, folders -------------------------------------------------------


def test_file_over_one_mib_is_refused_with_its_size(capsys: pytest.CaptureFixture[str]) -> None:
    Path("mlx.yaml").write_text(VALID + "#" * (MAX_SPEC_BYTES - len(VALID)) + "\n")
    size = MAX_SPEC_BYTES + 1
    for command in ("validate", "plan", "status"):
        out = failed_cleanly(mlx(capsys, command))
        assert f"error: mlx.yaml: mlx.yaml is {size} bytes; the limit is 1 MiB" in out


def test_file_of_exactly_one_mib_is_read(capsys: pytest.CaptureFixture[str]) -> None:
    Path("mlx.yaml").write_text(VALID + "#" * (MAX_SPEC_BYTES - len(VALID) - 1) + "\n")
    assert Path("mlx.yaml").stat().st_size == MAX_SPEC_BYTES
    result = mlx(capsys, "validate")
    assert result.code == 0, result.out + result.err


@pytest.mark.parametrize("command", ["validate", "plan", "status"])
def test_dev_zero_is_refused_without_reading_it_all(command: str) -> None:
    out = failed_cleanly(subprocess_mlx(command, "-f", "/dev/zero"))
    assert "error: /dev/zero: mlx.yaml is more than 1048576 bytes; the limit is 1 MiB" in out


def test_dev_zero_with_json_is_one_json_document() -> None:
    result = subprocess_mlx("validate", "-f", "/dev/zero", "--json")
    failed_cleanly(result)
    doc = json.loads(result.stdout)
    assert doc["valid"] is False and "the limit is 1 MiB" in doc["errors"][0]["message"]


def test_fifo_without_writer_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    out = failed_cleanly(subprocess_mlx("validate", "-f", str(fifo), timeout=30))
    assert "the file is empty" in out


def test_directory_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    for args in (["validate"], ["plan"], ["rm", "x"]):
        out = failed_cleanly(mlx(capsys, *args, "-f", str(folder)))
        assert f"{folder} is a directory, not an mlx.yaml file" in out
    out = failed_cleanly(mlx(capsys, "add", "hf://org/x", "-f", str(folder)))
    assert "is not a regular file" in out
    out = failed_cleanly(mlx(capsys, "init", "--force", "-f", str(folder)))
    assert "is not a regular file" in out
    assert folder.is_dir() and not any(folder.iterdir())


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path("mlx.yaml")
    path.write_text(VALID)
    path.chmod(0)
    out = failed_cleanly(mlx(capsys, "validate"))
    assert "cannot read mlx.yaml: Permission denied" in out


# --- 4. huge integers ---------------------------------------------------------------------------


def test_5000_digit_integer_is_reported_at_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    limit = sys.get_int_max_str_digits()
    text = "version: 1\nsettings:\n  disk:\n    min_free: " + "9" * 5000 + "\n"
    [line] = validate(capsys, text)
    assert line == (
        f"mlx.yaml:4:15: error: number too large: an integer may have at most {limit} digits"
    )


def test_huge_hex_integer_is_reported_at_the_value(capsys: pytest.CaptureFixture[str]) -> None:
    # Hex escapes the int-string limit when parsed, but not when printed in a message.
    text = "version: 1\nbenchmarks:\n  b:\n    models: [a]\n    runs: 0x" + "f" * 5000 + "\n"
    lines = validate(capsys, text)
    assert (
        "mlx.yaml:5:11: error: benchmarks.b.runs: number too large (more than 300 digits)" in lines
    )


def test_huge_integer_key_is_reported_at_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    # An explicit key (`? `): a plain one is limited to 1024 characters by YAML.
    [line] = validate(capsys, "version: 1\nmodels:\n  ? 0x" + "f" * 5000 + "\n  : {}\n")
    assert line == "mlx.yaml:3:5: error: models.<number>: number too large (more than 300 digits)"


# --- 5. trailing newlines -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ('version: 1\nmodels:\n  "llama\\n":\n    source: hf://o/r\n', "invalid model name"),
        (
            "version: 1\nmodels:\n  a:\n    source: hf://o/r\n"
            'apps:\n  "lms\\n":\n    path: /tmp/lms\n',
            "invalid app name",
        ),
        (
            "version: 1\nmodels:\n  a:\n    source: hf://o/r\n"
            'benchmarks:\n  "b\\n":\n    models: [a]\n',
            "invalid benchmark name",
        ),
        (
            'version: 1\nmodels:\n  a:\n    source: hf://o/r\n    revision: "main\\n"\n',
            "invalid revision",
        ),
        (
            'version: 1\nsettings:\n  huggingface:\n    token_env: "HF_TOKEN\\n"\n',
            "NAME of an environment variable",
        ),
        ('version: 1\nsettings:\n  workspace: "dotfiles\\n"\n', "workspace"),
    ],
)
def test_names_ending_in_a_newline_are_invalid(
    capsys: pytest.CaptureFixture[str], text: str, phrase: str
) -> None:
    lines = validate(capsys, text)
    assert any(phrase in line for line in lines), lines


@pytest.mark.parametrize(
    "source",
    [
        "hf://org/repo\n",
        "ollama://qwen2.5:7b\n",
        "ollama://ns/model\n",
        "ollama://host.example/ns/m:tag\n",
        "ollama://host.example\n/ns/m:tag",
    ],
)
def test_source_ids_ending_in_a_newline_are_invalid(source: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        parse_source(source)


def test_workspace_names_ending_in_a_newline_are_invalid() -> None:
    workspace = pytest.importorskip("mlxstate.workspace")
    assert workspace.valid_workspace("dotfiles")
    assert not workspace.valid_workspace("dotfiles\n")


def test_yaml_key_quotes_a_name_ending_in_a_newline() -> None:
    from mlxstate.edit import yaml_key

    assert yaml_key("llama") == "llama"
    assert yaml_key("llama\n") == '"llama\\n"'
    assert yaml_key("true") == '"true"'


# --- 6. mlx add with what users paste -----------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "meant"),
    [
        ("https://huggingface.co/mlx-community/Llama-3.2-1B", "hf://mlx-community/Llama-3.2-1B"),
        ("https://huggingface.co/org/repo/tree/main", "hf://org/repo"),
        ("https://huggingface.co/org/repo/blob/main/model.gguf", "hf://org/repo"),
        ("https://hf.co/org/repo", "hf://org/repo"),
        ("huggingface.co/org/repo", "hf://org/repo"),
        ("qwen2.5:7b", "ollama://qwen2.5:7b"),
        ("llama3", "ollama://llama3"),
        ("hf.co/bartowski/Gemma-GGUF:Q4_K_M", "ollama://hf.co/bartowski/Gemma-GGUF:Q4_K_M"),
        ("mlx-community/Llama-3.2-1B", "hf://mlx-community/Llama-3.2-1B"),
    ],
)
def test_add_suggests_the_source_form(
    capsys: pytest.CaptureFixture[str], given: str, meant: str
) -> None:
    path = Path("mlx.yaml")
    path.write_text(VALID)
    before = path.read_bytes()
    out = failed_cleanly(mlx(capsys, "add", given))
    assert f"did you mean {meant!r}?" in out
    assert f"hint: run `mlx add {meant}`" in out
    assert path.read_bytes() == before


def test_add_dataset_url_gets_no_model_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    Path("mlx.yaml").write_text(VALID)
    out = failed_cleanly(mlx(capsys, "add", "https://huggingface.co/datasets/org/data"))
    assert "did you mean" not in out and "unknown scheme 'https://'" in out


def test_validate_suggests_the_source_form_too(capsys: pytest.CaptureFixture[str]) -> None:
    [line] = validate(capsys, "version: 1\nmodels:\n  q:\n    source: qwen2.5:7b\n")
    assert line.startswith(
        "mlx.yaml:4:13: error: models.q.source: 'qwen2.5:7b' has no scheme; "
        "did you mean 'ollama://qwen2.5:7b'?"
    )


@pytest.mark.parametrize("exists", [True, False])
def test_add_missing_file_source_fails_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], exists: bool
) -> None:
    path = Path("mlx.yaml")
    if exists:
        path.write_text(VALID)
    out = failed_cleanly(mlx(capsys, "add", "file://~/missing"))
    assert f"{Path.home() / 'missing'} does not exist" in out
    assert path.read_text() == VALID if exists else not path.exists()


# --- 7. mlx init and LM Studio's folder ---------------------------------------------------------


def lms() -> Path:
    return Path.home() / ".lmstudio" / "models"


def test_init_declares_lmstudio_folder_with_the_models_linked_there(
    capsys: pytest.CaptureFixture[str],
) -> None:
    linked = ob.add_model(ollama_dir(), "qwen2.5:7b")
    ob.add_model(ollama_dir(), "llama3.2:latest")  # present, but not in LM Studio
    layer = linked.layer("model")
    assert layer is not None
    link = lms() / "library" / "qwen2.5-7b" / "qwen2.5-7b.gguf"
    link.parent.mkdir(parents=True)
    link.symlink_to(linked.blob_path(layer))
    (lms() / "someone" / "own").mkdir(parents=True)
    (lms() / "someone" / "own" / "own.gguf").write_bytes(b"GGUF")  # the user's; left alone

    result = mlx(capsys, "init")
    assert result.code == 0, result.err
    assert "1 app folder(s)" in result.out
    text = Path("mlx.yaml").read_text()
    assert "apps:\n  lmstudio:  # found by `mlx status`\n" in text
    assert '    path: "~/.lmstudio/models"\n    layout: lmstudio\n' in text
    assert "    models: [qwen2.5-7b]\n" in text
    plan = mlx(capsys, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err
    assert link.is_symlink() and (lms() / "someone" / "own" / "own.gguf").read_bytes() == b"GGUF"


def test_init_lists_an_hf_gguf_repo_only_when_every_gguf_is_linked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    files = {"m-Q4.gguf": b"GGUF" + b"4" * 100, "m-Q8.gguf": b"GGUF" + b"8" * 100}
    full = hb.add_revision(hf_dir(), "org/Full-GGUF", files)
    # Other bytes: the same GGUF already linked for Full would count as held (one entry per
    # model), and Half's missing Q8 would then need no link.
    other = {name: data.replace(b"GGUF", b"GGUF-half") for name, data in files.items()}
    half = hb.add_revision(hf_dir(), "org/Half-GGUF", other)
    for rev, names in ((full, ["m-Q4.gguf", "m-Q8.gguf"]), (half, ["m-Q4.gguf"])):
        for name in names:
            link = lms() / rev.repo_id / name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(os.path.realpath(rev.snapshot_dir / name))
    assert mlx(capsys, "init").code == 0
    assert "    models: [full-gguf]\n" in Path("mlx.yaml").read_text()
    plan = mlx(capsys, "plan", "--detailed-exitcode")
    assert plan.code == 0, plan.out + plan.err


def test_init_declares_an_empty_lmstudio_folder(capsys: pytest.CaptureFixture[str]) -> None:
    lms().mkdir(parents=True)
    assert mlx(capsys, "init").code == 0
    assert "    models: []\n" in Path("mlx.yaml").read_text()
    assert mlx(capsys, "plan", "--detailed-exitcode").code == 0


def test_init_without_lmstudio_writes_no_apps(capsys: pytest.CaptureFixture[str]) -> None:
    assert mlx(capsys, "init").code == 0
    assert "apps:" not in Path("mlx.yaml").read_text()


# --- 8. the schema URL and the project's URLs ---------------------------------------------------


def test_schema_url_agrees_with_pyproject_urls() -> None:
    from mlxstate.cli.schema import SCHEMA_ID

    urls = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]
    assert urls["Repository"] == urls["Homepage"] == REPOSITORY
    assert urls["Documentation"].startswith(REPOSITORY + "/")
    owner_repo = REPOSITORY.removeprefix("https://github.com/")
    expected = f"https://raw.githubusercontent.com/{owner_repo}/main/schemas/mlx.schema.json"
    assert SCHEMA_URL == SCHEMA_ID == expected
    assert json.loads((ROOT / "schemas" / "mlx.schema.json").read_text())["$id"] == SCHEMA_URL
    for doc in (ROOT / "docs").glob("*.md"):
        for url in re.findall(r"\$schema=(https://\S+)", doc.read_text()):
            assert url == SCHEMA_URL, doc


def test_init_and_add_write_the_schema_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert mlx(capsys, "add", "hf://org/x").code == 0
    assert Path("mlx.yaml").read_text().startswith(f"# yaml-language-server: $schema={SCHEMA_URL}")
    assert mlx(capsys, "init", "--force").code == 0
    assert Path("mlx.yaml").read_text().startswith(f"# yaml-language-server: $schema={SCHEMA_URL}")


# --- 9. more hostile files ----------------------------------------------------------------------


@pytest.mark.slow
def test_deep_nesting_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    [line] = validate(capsys, "version: 1\nmodels: " + "[" * 100_000 + "\n")
    assert line.startswith("mlx.yaml:1:1: error: the document is nested too deeply")


def test_nesting_past_the_depth_limit_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    depth = MAX_DEPTH + 5  # deep enough for the limit, shallow enough for the YAML parser
    text = "version: 1\nmodels:\n" + "".join(f"{' ' * (i + 1)}a:\n" for i in range(depth))
    [line] = validate(capsys, text)
    assert line == f"mlx.yaml:1:1: error: the document is nested more than {MAX_DEPTH} levels deep"


def test_billion_laughs_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["version: 1", 'a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 8)}]" for i in range(1, 10)]
    [line] = validate(capsys, "\n".join([*lines, "models: *a9", ""]))
    assert (
        line
        == f"mlx.yaml:1:1: error: document too large (over {MAX_NODES} nodes, counting aliases)"
    )


def test_recursive_alias_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    # ruamel resolves an alias inside its own anchor to null, except at the top level.
    [line] = validate(capsys, "version: 1\nmodels: &m [*m]\n")
    assert line == "mlx.yaml:2:9: error: models: expected a mapping (key: value), got a list"
    [line] = validate(capsys, "&m [*m]\n")
    assert "the top level must be a mapping" in line


@pytest.mark.parametrize("seed", range(8))
def test_binary_garbage_is_one_line(capsys: pytest.CaptureFixture[str], seed: int) -> None:
    data = random.Random(seed).randbytes(4096)
    assert len(validate(capsys, data)) == 1


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            b"version: 1\nmodels:\n  a:\n    source: \x00\n",
            "4:13: error: unacceptable character #x0000",
        ),
        (b"version: 1\n\xff\xfe\n", "2:1: error: file is not valid UTF-8 text"),
        ("version: 1\n".encode("utf-16"), "1:1: error: file is UTF-16 text; save it as UTF-8"),
        (b"version: 1\nmodels: !!int\n", "2:9: error: invalid value"),
        (b"version: 1\nmodels:\n  a:\n    source: !!float x\n", "4:13: error: invalid value"),
    ],
)
def test_bad_bytes_and_tags_are_one_line_at_their_place(
    capsys: pytest.CaptureFixture[str], data: bytes, expected: str
) -> None:
    [line] = validate(capsys, data)
    assert line.startswith(f"mlx.yaml:{expected}"), line


def test_bom_and_crlf_are_fine_and_kept_by_add(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path("mlx.yaml")
    path.write_bytes(b"\xef\xbb\xbf" + VALID.replace("\n", "\r\n").encode())
    assert mlx(capsys, "validate").code == 0
    assert mlx(capsys, "add", "hf://org/other").code == 0
    after = path.read_bytes()
    assert after.count(b"\r\n") == after.count(b"\n") and b"hf://org/other" in after


def test_symlink_loop_as_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    loop = Path("loop.yaml")
    loop.symlink_to(loop.name)
    for args in (["validate"], ["plan"], ["rm", "x"]):
        failed_cleanly(mlx(capsys, *args, "-f", str(loop)))
    for args in (["add", "hf://org/x"], ["init"], ["init", "--force"]):
        out = failed_cleanly(mlx(capsys, *args, "-f", str(loop)))
        assert "loop.yaml is a symlink loop" in out
    assert loop.is_symlink() and os.readlink(loop) == loop.name


def test_init_force_never_replaces_a_fifo(capsys: pytest.CaptureFixture[str]) -> None:
    fifo = Path("pipe.yaml")
    os.mkfifo(fifo)
    out = failed_cleanly(mlx(capsys, "init", "--force", "-f", str(fifo)))
    assert "pipe.yaml is not a regular file" in out
    assert fifo.is_fifo()


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("/tmp/apps", "/tmp/apps/inner", "/tmp/apps/inner and apps.a (/tmp/apps) are nested"),
        ("/tmp/apps/inner", "/tmp/apps", "/tmp/apps and apps.a (/tmp/apps/inner) are nested"),
        ("/tmp/apps", "/tmp/apps", "/tmp/apps is already the path of apps.a"),
    ],
)
def test_nested_app_folders_in_either_order(
    capsys: pytest.CaptureFixture[str], first: str, second: str, message: str
) -> None:
    text = f"version: 1\napps:\n  a:\n    path: {first}\n  b:\n    path: {second}\n"
    lines = validate(capsys, text)
    assert any(line.startswith(f"mlx.yaml:6:11: error: apps.b.path: {message}") for line in lines)


def test_many_unknown_models_still_name_each(capsys: pytest.CaptureFixture[str]) -> None:
    names = ", ".join(f"ghost{i}" for i in range(100))
    text = (
        "version: 1\nmodels:\n  ghost:\n    source: hf://o/r\n"
        f"apps:\n  a:\n    path: /tmp/a\n    models: [{names}]\n"
    )
    lines = validate(capsys, text)
    assert len(lines) == 100
    assert "did you mean 'ghost'?" in lines[0]
