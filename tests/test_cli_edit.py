"""``mlx add`` / ``mlx rm``: edits of mlx.yaml that keep every other byte as written."""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from mlxstate.mlxyaml.load import LoadedSpec, load_spec
from mlxstate.settings import read_environment
from mlxstate.sources import HfSource, parse_source
from tests.helpers import REPO_EXAMPLES, Result, mlx

EXAMPLES = sorted(REPO_EXAMPLES.glob("*.yaml"))
MAC_STUDIO = REPO_EXAMPLES / "mac-studio.yaml"
MINIMAL = REPO_EXAMPLES / "minimal.yaml"
CI_TEAM = REPO_EXAMPLES / "ci-team.yaml"


# --- helpers ------------------------------------------------------------------------------------


def copy(example: Path, dest: str = "mlx.yaml") -> Path:
    target = Path(dest)
    shutil.copyfile(example, target)
    return target


def load(path: Path | str = "mlx.yaml") -> LoadedSpec:
    return load_spec(Path(path), read_environment())


def validates(capsys: pytest.CaptureFixture[str], path: Path | str = "mlx.yaml") -> LoadedSpec:
    result = mlx(capsys, "validate", "-f", str(path))
    assert result.code == 0, result.out + result.err
    return load(path)


def lines(text: str | bytes) -> list[str]:
    if isinstance(text, bytes):
        text = text.decode()
    return text.splitlines(keepends=True)


def changes(before: str | bytes, after: str | bytes) -> list[tuple[str, int, int, int, int]]:
    matcher = difflib.SequenceMatcher(None, lines(before), lines(after), autojunk=False)
    return [op for op in matcher.get_opcodes() if op[0] != "equal"]


def only_insertion(before: str | bytes, after: str | bytes) -> tuple[int, list[str]]:
    """(index in ``before``, inserted lines) when ``after`` is ``before`` plus one block."""
    ops = changes(before, after)
    assert len(ops) == 1 and ops[0][0] == "insert", ops
    _, i1, _, j1, j2 = ops[0]
    return i1, lines(after)[j1:j2]


def only_deletion(before: str | bytes, after: str | bytes) -> list[str]:
    """The deleted lines when ``after`` is ``before`` minus one block."""
    ops = changes(before, after)
    assert len(ops) == 1 and ops[0][0] == "delete", ops
    _, i1, i2, _, _ = ops[0]
    return lines(before)[i1:i2]


def unchanged_failure(result: Result, path: Path, before: bytes) -> None:
    assert result.code == 1, result.out + result.err
    assert "Traceback" not in result.err
    assert path.read_bytes() == before


def model_line(loaded: LoadedSpec, name: str) -> int:
    """0-based line of ``models.<name>``'s key."""
    return int(loaded.document["models"].lc.key(name)[0])


# --- mlx add on the examples -------------------------------------------------------------------


ADD_CASES: list[tuple[list[str], str, dict[str, Any]]] = [
    (["hf://org/NewRepo"], "newrepo", {"source": "hf://org/NewRepo"}),
    (
        ["ollama://qwen2.5:14b", "--name", "q14"],
        "q14",
        {"source": "ollama://qwen2.5:14b"},
    ),
    (
        [
            "hf://org/x",
            "--revision",
            "v2.0",
            "--include",
            "*.json",
            "--include",
            "*.safetensors",
            "--exclude",
            "*.md",
        ],
        "x",
        {
            "source": "hf://org/x",
            "revision": "v2.0",
            "include": ["*.json", "*.safetensors"],
            "exclude": ["*.md"],
        },
    ),
    (
        ["hf://org/pinned", "--revision", "0123456789abcdef0123456789abcdef01234567"],
        "pinned",
        {"source": "hf://org/pinned", "revision": "0123456789abcdef0123456789abcdef01234567"},
    ),
    (["file://~/models/thing"], "thing", {"source": "file://~/models/thing"}),
]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
@pytest.mark.parametrize(("args", "name", "fields"), ADD_CASES, ids=lambda x: str(x)[:30])
def test_add_to_examples_only_inserts_the_new_model_after_the_last(
    capsys: pytest.CaptureFixture[str],
    example: Path,
    args: list[str],
    name: str,
    fields: dict[str, Any],
) -> None:
    path = copy(example)
    before = path.read_text()
    original = load()
    last = list(original.spec.models)[-1]
    if args[0].startswith("file://~/"):
        (Path.home() / args[0].removeprefix("file://~/")).mkdir(parents=True)  # must exist

    result = mlx(capsys, "add", *args)
    assert result.code == 0, result.err
    assert f"models.{name}" in result.out

    after = path.read_text()
    at, inserted = only_insertion(before, after)  # every original line kept, in order
    assert inserted[0] == f"  {name}:\n"
    assert all(line.startswith("    ") for line in inserted[1:])
    loaded = validates(capsys)
    assert list(loaded.spec.models) == [*original.spec.models, name]
    # Right after the last model's block: only that model's own lines lie in between.
    between = lines(before)[model_line(original, last) + 1 : at]
    assert all(line.startswith("    ") for line in between), between
    model = loaded.spec.models[name]
    assert str(model.source) == str(parse_source(fields["source"]))
    assert model.revision == fields.get("revision")
    assert model.include == fields.get("include")
    assert model.exclude == fields.get("exclude")
    assert f'source: "{fields["source"]}"' in after or f"source: {fields['source']}" in after


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("ollama://qwen2.5:7b", "qwen2.5-7b"),
        ("ollama://llama3", "llama3"),
        ("ollama://llama3:latest", "llama3"),
        ("ollama://hf.co/bartowski/Gemma-GGUF:Q4_K_M", "gemma-gguf-q4_k_m"),
        ("hf://org/Repo", "repo"),
        ("hf://mlx-community/Llama-3.2-1B-Instruct-4bit", "llama-3.2-1b-instruct-4bit"),
        ("file://loras/my-lora", "my-lora"),
    ],
)
def test_add_derives_a_readable_name(
    capsys: pytest.CaptureFixture[str], source: str, expected: str
) -> None:
    path = Path("mlx.yaml")
    path.write_text("version: 1\nmodels:\n  existing:\n    source: hf://a/b\n")
    if source.startswith("file://"):
        Path(source.removeprefix("file://")).mkdir(parents=True)  # file:// must exist
    result = mlx(capsys, "add", source)
    assert result.code == 0, result.err
    assert list(validates(capsys).spec.models) == ["existing", expected]


@pytest.mark.parametrize(
    ("existing", "source", "check"),
    [
        (["repo"], "hf://org/Repo", lambda n: n == "org-repo"),
        (["repo", "org-repo"], "hf://org/Repo", lambda n: "repo" in n),
        (["qwen2.5-7b"], "ollama://qwen2.5:7b", lambda n: n.endswith("qwen2.5-7b")),
        (["tinymodel-v2"], "ollama://someone/tinymodel:v2", lambda n: n == "someone-tinymodel-v2"),
    ],
)
def test_add_derived_name_collisions_get_a_prefix(
    capsys: pytest.CaptureFixture[str], existing: list[str], source: str, check: Any
) -> None:
    body = "".join(f"  {n}:\n    source: hf://other/m{i}\n" for i, n in enumerate(existing))
    Path("mlx.yaml").write_text(f"version: 1\nmodels:\n{body}")
    result = mlx(capsys, "add", source)
    assert result.code == 0, result.err
    names = list(validates(capsys).spec.models)
    assert names[:-1] == existing
    new = names[-1]
    assert new not in existing and check(new), new


def test_add_duplicate_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    path = copy(MAC_STUDIO)
    before = path.read_bytes()
    result = mlx(capsys, "add", "hf://org/other", "--name", "qwen-coder")
    unchanged_failure(result, path, before)
    assert "qwen-coder" in result.err and "already exists" in result.err


@pytest.mark.parametrize(
    ("source", "declared_as"),
    [
        ("ollama://qwen2.5-coder:7b", "qwen-coder"),
        ("ollama://Qwen2.5-Coder:7b", "qwen-coder"),
        ("ollama://registry.ollama.ai/library/qwen2.5-coder:7b", "qwen-coder"),
        ("ollama://llama2:7b", "old-llama"),  # even one declared `ensure: absent`
        ("hf://mlx-community/llama-3.2-1b-instruct-4bit", "llama-1b"),
        ("hf://mlx-community/Qwen2.5-7B-Instruct-4bit", "qwen-mlx"),  # revision: main
        ("file://loras/my-lora", "my-lora"),
    ],
)
def test_add_same_source_is_refused(
    capsys: pytest.CaptureFixture[str], source: str, declared_as: str
) -> None:
    path = copy(MAC_STUDIO)
    before = path.read_bytes()
    for extra in ([], ["--name", "brand-new"]):
        result = mlx(capsys, "add", source, *extra)
        unchanged_failure(result, path, before)
        assert declared_as in result.err


@pytest.mark.parametrize(
    "source",
    [
        "nope",
        "ftp://host/model",
        "hf://only-org",
        "hf://a--b/c",
        "hf://a/b..c",
        "hf://org/repo.git",
        "ollama://a/b/c/d",
        "ollama://model:",
        "ollama://bad name",
        "file://",
        "",
    ],
)
def test_add_invalid_source_is_refused_with_a_clear_message(
    capsys: pytest.CaptureFixture[str], source: str
) -> None:
    path = copy(MINIMAL)
    before = path.read_bytes()
    result = mlx(capsys, "add", source)
    unchanged_failure(result, path, before)
    assert f"invalid source {source!r}" in result.err
    first = result.err.splitlines()[0]
    assert first.startswith("error: ")
    assert any(form in result.err for form in ("hf://", "ollama://", "file://"))


def test_add_option_that_only_fits_hf_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    path = copy(MINIMAL)
    before = path.read_bytes()
    result = mlx(capsys, "add", "ollama://phi3", "--include", "*.gguf")
    unchanged_failure(result, path, before)
    assert "include" in result.err and "hf://" in result.err
    assert "nothing was written" in result.err


def test_add_invalid_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    path = copy(MINIMAL)
    before = path.read_bytes()
    result = mlx(capsys, "add", "hf://o/r", "--name", "Not A Name")
    unchanged_failure(result, path, before)
    assert "Not A Name" in result.err


# --- mlx add on unusual models: sections ---------------------------------------------------------


def test_add_under_an_empty_models_key(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path("mlx.yaml")
    path.write_text("# top\nversion: 1\n\nmodels:\n\n# the apps\napps: {}\n")
    before = path.read_text()
    assert mlx(capsys, "add", "hf://org/Repo").code == 0
    at, inserted = only_insertion(before, path.read_text())
    assert lines(before)[at - 1] == "models:\n"
    assert inserted[0] == "  repo:\n"
    assert list(validates(capsys).spec.models) == ["repo"]


def test_add_under_empty_flow_models(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path("mlx.yaml")
    path.write_text('# top\nversion: 1\nmodels: {}\nsettings:\n  prune: true  # "keep"\n')
    before = path.read_text()
    assert mlx(capsys, "add", "ollama://qwen2.5:7b").code == 0
    # The `models: {}` line has to change; every other line stays, in order.
    [(tag, i1, i2, j1, _j2)] = changes(before, path.read_text())
    assert (tag, lines(before)[i1:i2]) == ("replace", ["models: {}\n"])
    assert lines(path.read_text())[j1] == "models:\n"
    assert list(validates(capsys).spec.models) == ["qwen2.5-7b"]


@pytest.mark.parametrize(
    "text",
    ["# top\nversion: 1\n", "version: 1", "version: 1\nsettings:\n  prune: false # no\n\n"],
    ids=["plain", "no-final-newline", "settings"],
)
def test_add_without_models_key(capsys: pytest.CaptureFixture[str], text: str) -> None:
    path = Path("mlx.yaml")
    path.write_text(text)
    assert mlx(capsys, "add", "hf://org/Repo").code == 0
    after = path.read_text()
    assert after.startswith(text)  # everything that was there stays, as it was
    assert list(validates(capsys).spec.models) == ["repo"]


def test_add_to_flow_style_models(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path("mlx.yaml")
    path.write_text(
        "# top comment\nversion: 1  # v\n"
        'models: {a: {source: "hf://o/r"}}\n'
        "# tail\nsettings:\n  prune: true   # keep\n"
    )
    before = path.read_text()
    assert mlx(capsys, "add", "ollama://qwen2.5:7b").code == 0
    loaded = validates(capsys)
    assert list(loaded.spec.models) == ["a", "qwen2.5-7b"]
    assert str(loaded.spec.models["a"].source) == "hf://o/r"
    after = path.read_text()
    outside = [line for line in lines(before) if not line.startswith("models:")]
    assert [line for line in lines(after) if not line.startswith("models:")] == outside


def test_add_to_flow_style_models_keeps_quotes(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path("mlx.yaml")
    path.write_text('version: 1\nmodels: {a: {source: "hf://o/r"}}\n')
    assert mlx(capsys, "add", "ollama://qwen2.5:7b").code == 0
    assert '"hf://o/r"' in path.read_text()


def test_add_without_any_file_creates_mlx_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "add", "ollama://qwen2.5:7b")
    assert result.code == 0, result.err
    path = Path("mlx.yaml")
    assert path.is_file()
    loaded = validates(capsys)
    assert list(loaded.spec.models) == ["qwen2.5-7b"]
    assert path.read_text().startswith("# yaml-language-server: $schema=")
    assert mlx(capsys, "add", "hf://org/Repo").code == 0
    assert list(validates(capsys).spec.models) == ["qwen2.5-7b", "repo"]


def test_add_edits_the_file_spec_discovery_finds(capsys: pytest.CaptureFixture[str]) -> None:
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "mlx" / "mlx.yaml"
    config.parent.mkdir(parents=True)
    shutil.copyfile(MINIMAL, config)
    assert mlx(capsys, "add", "hf://org/Repo").code == 0
    assert not Path("mlx.yaml").exists()
    assert "repo" in validates(capsys, config).spec.models


def test_add_to_an_invalid_file_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path("mlx.yaml")
    path.write_text("version: 1\nmodels:\n  a:\n    sorce: hf://o/r\n")
    before = path.read_bytes()
    result = mlx(capsys, "add", "hf://org/Repo")
    unchanged_failure(result, path, before)
    assert "mlx.yaml:4:5: error:" in result.err


def test_add_keeps_crlf_line_endings(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path("mlx.yaml")
    original = b"# top\r\nversion: 1\r\nmodels:\r\n  a:\r\n    source: hf://o/r\r\n"
    path.write_bytes(original)
    assert mlx(capsys, "add", "ollama://qwen2.5:7b").code == 0
    after = path.read_bytes()
    assert after.startswith(original)
    assert b"\n" not in after.replace(b"\r\n", b"")


@pytest.mark.parametrize(
    "args",
    [["ollama://1234"], ["hf://org/1.5"], ["hf://o/r", "--name", "1234"], ["ollama://null"]],
)
def test_add_names_that_yaml_reads_as_non_strings(
    capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    copy(MINIMAL)
    result = mlx(capsys, "add", *args)
    assert result.code == 0, result.err
    assert len(validates(capsys).spec.models) == 3


def test_add_after_a_last_model_with_an_indented_trailing_comment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = Path("mlx.yaml")
    path.write_text(
        "version: 1\nmodels:\n  a:\n    source: hf://o/r\n    # note about a\n\napps: {}\n"
    )
    assert mlx(capsys, "add", "ollama://qwen2.5:7b").code == 0
    text = path.read_text()
    assert text.index("# note about a") < text.index("qwen2.5-7b:")


# --- mlx rm -------------------------------------------------------------------------------------


RM_CASES = [
    (
        MINIMAL,
        "qwen-coder",  # the first model, with comment lines above it
        [
            "  # An Ollama model: ollama://[HOST/][NAMESPACE/]MODEL[:TAG]\n",
            "  # (defaults: registry.ollama.ai, library, latest)\n",
            "  qwen-coder:\n",
            "    source: ollama://qwen2.5-coder:7b\n",
            "\n",  # the blank line that separated it from the next model
        ],
    ),
    (
        MINIMAL,
        "llama-1b",  # the last model, with comment lines above it
        [
            "  # A Hugging Face repo, kept in the HF cache (~/.cache/huggingface/hub).\n",
            "  # `revision` defaults to main; pin a 40-hex commit for reproducible machines.\n",
            "  llama-1b:\n",
            "    source: hf://mlx-community/Llama-3.2-1B-Instruct-4bit\n",
        ],
    ),
    (
        MAC_STUDIO,
        "old-llama",  # a middle model
        [
            "  old-llama:\n",
            "    source: ollama://llama2:7b\n",
            "    ensure: absent                      # delete it, even though mlx did not "
            "install it\n",
        ],
    ),
    (
        MAC_STUDIO,
        "embeddings",  # the last model, followed by a blank line and `apps:`
        [
            "  embeddings:\n",
            "    source: hf://sentence-transformers/all-MiniLM-L6-v2\n",
            "    protect: true                       # a plan that would delete it fails instead\n",
        ],
    ),
    (
        CI_TEAM,
        "embed",
        ["  embed:\n", "    source: ollama://nomic-embed-text:v1.5\n"],
    ),
    (
        CI_TEAM,
        "reranker",
        [
            "  reranker:\n",
            "    source: hf://BAAI/bge-reranker-base\n",
            "    revision: v1.0\n",
            '    exclude: ["*.onnx", "*.bin"]\n',
        ],
    ),
]


@pytest.mark.parametrize(("example", "name", "removed"), RM_CASES, ids=lambda x: str(x)[-20:])
def test_rm_removes_the_model_and_its_comments_only(
    capsys: pytest.CaptureFixture[str], example: Path, name: str, removed: list[str]
) -> None:
    path = copy(example)
    before = path.read_text()
    result = mlx(capsys, "rm", name)
    assert result.code == 0, result.err
    assert f"models.{name}" in result.out
    assert only_deletion(before, path.read_text()) == removed
    names = list(validates(capsys).spec.models)
    assert names == [n for n in load_spec(example, read_environment()).spec.models if n != name]


def test_rm_keeps_the_next_models_comments_and_takes_its_inner_ones(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = Path("mlx.yaml")
    path.write_text(
        "version: 1\n"
        "models:\n"
        "  a:\n"
        "    source: hf://o/a\n"
        "\n"
        "  # about b\n"
        "  b:\n"
        "    # inside b\n"
        "    source: hf://o/b   # trailing\n"
        "  # about c\n"
        "  c:\n"
        "    source: 'hf://o/c'\n"
    )
    before = path.read_text()
    assert mlx(capsys, "rm", "b").code == 0
    assert only_deletion(before, path.read_text()) == [
        "  # about b\n",
        "  b:\n",
        "    # inside b\n",
        "    source: hf://o/b   # trailing\n",
    ]
    assert list(validates(capsys).spec.models) == ["a", "c"]


def test_rm_every_model_leaves_a_valid_file(capsys: pytest.CaptureFixture[str]) -> None:
    copy(MINIMAL)
    for name in ("llama-1b", "qwen-coder"):
        assert mlx(capsys, "rm", name).code == 0
    assert validates(capsys).spec.models == {}


def test_rm_from_flow_style_models(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path("mlx.yaml")
    path.write_text("# c\nversion: 1\nmodels: {a: {source: hf://o/a}, b: {source: hf://o/b}}\n")
    assert mlx(capsys, "rm", "a").code == 0
    assert list(validates(capsys).spec.models) == ["b"]
    assert path.read_text().startswith("# c\nversion: 1\n")


def test_rm_last_model_takes_its_indented_trailing_comment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = Path("mlx.yaml")
    path.write_text(
        "version: 1\nmodels:\n  a:\n    source: hf://o/a\n"
        "  b:\n    source: hf://o/b\n    # note about b\n\napps: {}\n"
    )
    assert mlx(capsys, "rm", "b").code == 0
    assert "note about b" not in path.read_text()


def test_rm_unknown_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    path = copy(MAC_STUDIO)
    before = path.read_bytes()
    result = mlx(capsys, "rm", "ghost")
    unchanged_failure(result, path, before)
    assert "ghost" in result.err


@pytest.mark.parametrize(
    ("name", "users"),
    [
        ("qwen-coder", ["apps.lmstudio", "benchmarks.nightly"]),
        ("llama-1b", ["apps.playground", "benchmarks.quick-check"]),
        ("my-lora", ["apps.playground"]),
    ],
)
def test_rm_model_in_use_is_refused_naming_the_users(
    capsys: pytest.CaptureFixture[str], name: str, users: list[str]
) -> None:
    path = copy(MAC_STUDIO)
    before = path.read_bytes()
    result = mlx(capsys, "rm", name)
    unchanged_failure(result, path, before)
    for user in users:
        assert user in result.err


def test_rm_without_a_file_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "rm", "anything")
    assert result.code == 1
    assert "mlx init" in result.err
    assert not Path("mlx.yaml").exists()


def test_rm_on_an_invalid_file_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    path = Path("mlx.yaml")
    path.write_text("version: 1\nmodels:\n  a:\n    source: hf://o/a\n    bogus: 1\n")
    before = path.read_bytes()
    result = mlx(capsys, "rm", "a")
    unchanged_failure(result, path, before)
    assert "mlx.yaml:5:5: error:" in result.err


# --- add then rm: a property --------------------------------------------------------------------


_SAFE = YAML(typ="safe", pure=True)


def _yaml_string(name: str) -> bool:
    """Whether YAML reads ``name:`` as a string key (numbers/bools/null: a known bug)."""
    doc = _SAFE.load(f"{name}: 1")
    return isinstance(doc, dict) and all(isinstance(k, str) for k in doc)


def _valid_source(text: str) -> bool:
    try:
        parse_source(text)
    except ValueError:
        return False
    return True


def _identity(source: str, revision: str | None) -> tuple[str, str | None]:
    parsed = parse_source(source, Path.cwd())
    rev = (revision or "main") if isinstance(parsed, HfSource) else None
    return str(parsed).lower(), rev


_WORD = r"[A-Za-z][A-Za-z0-9_.-]{0,10}"
_names = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True).filter(_yaml_string)
_parts = st.from_regex(_WORD, fullmatch=True).filter(
    lambda s: s.lower() not in ("null", "true", "false")
)
_hf = st.builds(lambda org, repo: f"hf://{org}/{repo}", _parts, _parts)
_ollama = st.builds(
    lambda model, tag: f"ollama://{model}" + (f":{tag}" if tag else ""),
    _parts,
    st.none() | st.from_regex(r"[a-z0-9][a-z0-9._]{0,6}", fullmatch=True),
)
_TAKEN_NAMES = st.sampled_from(["qwen-coder", "embeddings"])
_DECLARED_SOURCES = st.sampled_from(["ollama://qwen2.5-coder:7b", "hf://org/repo"])
_add = st.tuples(
    st.just("add"),
    # Mostly derived or fresh names, about one in ten already taken; likewise sources.
    st.integers(0, 9).flatmap(lambda k: _TAKEN_NAMES if k == 7 else st.none() if k < 4 else _names),
    st.integers(0, 9)
    .flatmap(lambda k: _DECLARED_SOURCES if k == 7 else _hf if k < 4 else _ollama)
    .filter(_valid_source),
    st.sampled_from([None, None, "main", "v1.0"]),
)
_rm = st.tuples(st.just("rm"), st.integers(0, 50), st.none(), st.none())
_ops = st.lists(st.one_of(_add, _add, _rm), min_size=2, max_size=5)


@pytest.mark.slow
@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=_ops)
def test_add_rm_sequences_keep_the_file_valid_and_round_trip(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, ops: list[tuple[Any, ...]]
) -> None:
    path = tmp_path / "prop.yaml"
    shutil.copyfile(MAC_STUDIO, path)
    original = path.read_bytes()
    env = read_environment()
    spec = load_spec(path, env).spec
    identities = {_identity(str(m.source), m.revision) for m in spec.models.values()}
    declared = set(spec.models)
    # (name, identity, bytes before its add or None once a later rm made them stale)
    added: list[tuple[str, tuple[str, str | None], bytes | None]] = []

    for op, arg, source, revision in ops:
        before = path.read_bytes()
        if op == "add":
            is_hf = source.startswith("hf://")
            args = ["add", source, "-f", str(path)]
            if arg is not None:
                args += ["--name", arg]
            if is_hf and revision:
                args += ["--revision", revision]
            ident = _identity(source, revision if is_hf else None)
            result = mlx(capsys, *args)
            if (arg is not None and arg in declared) or ident in identities:
                assert result.code == 1, (args, result.out)
                assert path.read_bytes() == before
                continue
            assert result.code == 0, (args, result.err)
            names = set(load_spec(path, env).spec.models)  # still valid
            [new] = names - declared
            assert arg is None or new == arg
            declared.add(new)
            identities.add(ident)
            added.append((new, ident, before))
            only_insertion(before, path.read_bytes())
        elif not added:
            result = mlx(capsys, "rm", "not-declared-anywhere", "-f", str(path))
            assert result.code == 1 and path.read_bytes() == before
        else:
            index = arg % len(added)
            new, ident, before_add = added.pop(index)
            result = mlx(capsys, "rm", new, "-f", str(path))
            assert result.code == 0, result.err
            assert new not in load_spec(path, env).spec.models  # still valid
            only_deletion(before, path.read_bytes())
            if index == len(added) and before_add is not None:
                assert path.read_bytes() == before_add  # add then rm: the same bytes
            # Snapshots taken after the removed model was added still contain it.
            added[index:] = [(n, i, None) for n, i, _ in added[index:]]
            declared.discard(new)
            identities.discard(ident)
    # Remove what is left, newest first: each rm restores the bytes before its add.
    for new, _ident, before_add in reversed(added):
        result = mlx(capsys, "rm", new, "-f", str(path))
        assert result.code == 0, result.err
        load_spec(path, env)
        if before_add is not None:
            assert path.read_bytes() == before_add
    assert path.read_bytes() == original


# --- atomic writes ------------------------------------------------------------------------------


def _fail_replace(*_args: object, **_kwargs: object) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("args", [["add", "hf://org/Repo"], ["rm", "old-llama"]], ids=["add", "rm"])
def test_failed_write_leaves_the_file_and_no_temp(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str]
) -> None:
    path = copy(MAC_STUDIO)
    before = path.read_bytes()
    listing = sorted(os.listdir(tmp_path))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mlxstate.fsutil.os.replace", _fail_replace)
        result = mlx(capsys, *args)
    assert result.code != 0
    assert "Traceback" not in result.err
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == listing


def test_failed_write_of_a_new_file_leaves_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    listing = sorted(os.listdir(tmp_path))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mlxstate.fsutil.os.replace", _fail_replace)
        result = mlx(capsys, "add", "hf://org/Repo")
    assert result.code != 0
    assert not Path("mlx.yaml").exists()
    assert sorted(os.listdir(tmp_path)) == listing


def test_failed_write_is_a_user_facing_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    copy(MAC_STUDIO)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mlxstate.fsutil.os.replace", _fail_replace)
        result = mlx(capsys, "add", "hf://org/Repo")
    assert result.code == 1
    assert "bug in mlxstate" not in result.err
    assert "mlx.yaml" in result.err and "No space left" in result.err
