"""`mlx validate` against a corpus of invalid mlx.yaml files (SPEC §3, §5).

Every file in ``tests/corpus/invalid/`` is a realistic mistake. Its leading comments say
exactly which errors the validator must report::

    # what the mistake is
    # expect: LINE:COL distinctive part of the message
    # known-bad: why the validator does not do this yet   (optional)

``LINE:COL`` are 1-based and count the header comments too. A file must produce exactly its
expected errors, no more. Files marked ``known-bad`` describe the behaviour we want but do
not get yet; they are strict xfails, so fixing the validator makes them fail until the
marker is removed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlxstate.cli.main import main

CORPUS = Path(__file__).parent / "corpus" / "invalid"
EXAMPLES = Path(__file__).parent.parent / "examples"

_EXPECT_RE = re.compile(r"^#\s*expect:\s*(\d+):(\d+)\s+(\S.*?)\s*$")
_KNOWN_BAD_RE = re.compile(r"^#\s*known-bad:\s*(\S.*?)\s*$")
_SUMMARY_RE = re.compile(r"^\d+ errors? in ")


@dataclass(frozen=True)
class Expectation:
    line: int
    col: int
    phrase: str

    def __str__(self) -> str:
        return f"{self.line}:{self.col} {self.phrase}"


@dataclass(frozen=True)
class Case:
    path: Path
    expectations: tuple[Expectation, ...]
    known_bad: tuple[str, ...]


def load_case(path: Path) -> Case:
    """The expectations in the leading comment block of a corpus file."""
    expectations: list[Expectation] = []
    known_bad: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        if m := _EXPECT_RE.match(line):
            expectations.append(Expectation(int(m[1]), int(m[2]), m[3]))
        elif m := _KNOWN_BAD_RE.match(line):
            known_bad.append(m[1])
    return Case(path, tuple(expectations), tuple(known_bad))


CORPUS_FILES = sorted(CORPUS.glob("*.yaml"))
CASES = [load_case(p) for p in CORPUS_FILES]


def _params() -> list[Any]:
    params = []
    for case in CASES:
        marks = (
            [pytest.mark.xfail(strict=True, reason="; ".join(case.known_bad))]
            if case.known_bad
            else []
        )
        params.append(pytest.param(case, id=case.path.name, marks=marks))
    return params


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(args)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err, out + err
    assert "internal error" not in out + err, out + err
    return code, out


def _report(case: Case, out: str) -> str:
    want = "\n".join(f"  {e}" for e in case.expectations)
    return f"expected:\n{want}\ngot:\n{out}"


@pytest.fixture(autouse=True)
def _unset_corpus_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # app-path-unset-var.yaml relies on this variable being unset.
    monkeypatch.delenv("LMSTUDIO_HOME", raising=False)


# --- the corpus itself -------------------------------------------------------------------


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS_FILES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[c.path.name for c in CASES])
def test_corpus_file_is_well_formed(case: Case) -> None:
    assert case.expectations, f"{case.path.name} has no '# expect: LINE:COL phrase' header"
    lines = case.path.read_text(encoding="utf-8").splitlines()
    for e in case.expectations:
        assert 1 <= e.line <= len(lines) + 1, f"{e} is outside the file"
        assert len(e.phrase) >= 4, f"phrase of {e} is too vague"


def test_corpus_has_a_file_with_many_errors() -> None:
    assert max(len(c.expectations) for c in CASES) >= 5


# --- text output ------------------------------------------------------------------------


@pytest.mark.parametrize("case", _params())
def test_validate_reports_exactly_the_expected_errors(
    case: Case, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(["validate", "-f", str(case.path)], capsys)
    assert code == 1, _report(case, out)
    lines = out.splitlines()
    errors = [line for line in lines if "error:" in line]
    for e in case.expectations:
        prefix = f"{case.path}:{e.line}:{e.col}: error:"
        assert any(line.startswith(prefix) and e.phrase in line for line in errors), (
            f"missing {e}\n" + _report(case, out)
        )
    assert len(errors) == len(case.expectations), _report(case, out)
    # One line per error plus the summary: a message must never spill onto a second line.
    others = [line for line in lines if line not in errors]
    assert all(_SUMMARY_RE.match(line) for line in others), _report(case, out)


# --- --json -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", _params())
def test_validate_json_matches_text(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    _, text = _run(["validate", "-f", str(case.path)], capsys)
    code, out = _run(["validate", "--json", "-f", str(case.path)], capsys)
    assert code == 1
    doc = json.loads(out)
    assert doc["valid"] is False
    assert doc["file"] == str(case.path)
    errors = doc["errors"]
    for err in errors:
        assert set(err) == {"path", "line", "col", "message"}
        assert isinstance(err["path"], str)
        assert isinstance(err["line"], int) and err["line"] >= 1
        assert isinstance(err["col"], int) and err["col"] >= 1
        assert isinstance(err["message"], str) and err["message"]
    for e in case.expectations:
        assert any(
            (err["line"], err["col"]) == (e.line, e.col) and e.phrase in err["message"]
            for err in errors
        ), f"missing {e} in {errors}"
    assert len(errors) == len(case.expectations)
    # Same errors as the text output, in the same order.
    rendered = [
        f"{case.path}:{err['line']}:{err['col']}: error: "
        + (f"{err['path']}: " if err["path"] else "")
        + err["message"]
        for err in errors
    ]
    assert rendered == [line for line in text.splitlines() if "error:" in line]


# --- --format github --------------------------------------------------------------------


def _github_property(text: str) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C")


def _github_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


@pytest.mark.parametrize("case", _params())
def test_validate_github_annotations(case: Case, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["validate", "--format", "github", "-f", str(case.path)], capsys)
    assert code == 1
    annotations = [line for line in out.splitlines() if line.startswith("::error ")]
    assert annotations == out.splitlines(), "github format prints only annotations"
    file = _github_property(str(case.path))
    for e in case.expectations:
        head = f"::error file={file},line={e.line},col={e.col}::"
        assert any(
            line.startswith(head) and _github_data(e.phrase) in line for line in annotations
        ), f"missing {e} in\n{out}"
    assert len(annotations) == len(case.expectations)


# --- neighbours of the corpus -----------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n", b"   \n", b"\xef\xbb\xbf"],
    ids=["zero-bytes", "newlines", "spaces", "bom"],
)
def test_empty_file(content: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mlx.yaml"
    path.write_bytes(content)
    code, out = _run(["validate", "-f", str(path)], capsys)
    assert code == 1
    errors = [line for line in out.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:1:1: error:")
    assert "the file is empty" in errors[0]


def test_store_paths_resolve_under_the_isolated_home(
    isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The corpus uses ~/.ollama/models/... and ~/.cache/huggingface/hub/...: they must be
    # judged against the test's HOME, never the real one.
    for name, store in [
        ("app-path-in-ollama-store.yaml", isolated_env / ".ollama" / "models"),
        ("app-path-in-hf-cache.yaml", isolated_env / ".cache" / "huggingface" / "hub"),
    ]:
        code, out = _run(["validate", "-f", str(CORPUS / name)], capsys)
        assert code == 1
        assert f"({store})" in out, out


VALID_NEIGHBOURS = {
    "dedup-off": "version: 1\nsettings:\n  dedup: off\n",
    "dedup-false": "version: 1\nsettings:\n  dedup: false\n",
    "null-sections": "version: 1\nsettings:\nmodels:\napps:\nbenchmarks:\ndashboard:\n",
    "size-int-and-iec": "version: 1\nsettings:\n  disk:\n    min_free: 512MiB\n",
    "token-env-name": "version: 1\nsettings:\n  huggingface:\n    token_env: MY_HF_TOKEN\n",
    "schedules": (
        "version: 1\nmodels:\n  q:\n    source: ollama://qwen2.5:7b\nbenchmarks:\n"
        "  a:\n    models: [q]\n    schedule: '@every 90m'\n"
        "  b:\n    models: [q]\n    schedule: '*/15 * * * 1-5'\n"
        "  c:\n    models: [q]\n    schedule: '@hourly'\n    prompts: [hi]\n"
    ),
    "absent-not-referenced": (
        "version: 1\nmodels:\n  old:\n    source: ollama://llama2:7b\n    ensure: absent\n"
        "  new:\n    source: ollama://llama2:7b-chat\napps:\n  x:\n    path: ~/x\n"
        "    models: [new]\n"
    ),
    "same-source-other-revision": (
        "version: 1\nmodels:\n  a:\n    source: hf://org/repo\n"
        "  b:\n    source: hf://org/repo\n    revision: v2\n"
    ),
    "ollama-forms": (
        "version: 1\nmodels:\n  a:\n    source: ollama://qwen2.5\n"
        "  b:\n    source: ollama://hf.co/bartowski/gemma-2-2b-it-GGUF:Q4_K_M\n"
        "  c:\n    source: ollama://localhost:5000/ns/model:_tag\n"
    ),
}


@pytest.mark.parametrize("content", VALID_NEIGHBOURS.values(), ids=VALID_NEIGHBOURS.keys())
def test_valid_neighbours_of_the_corpus(
    content: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Near-misses of corpus entries that must stay valid, so the corpus cannot pass by
    # rejecting everything.
    path = tmp_path / "mlx.yaml"
    path.write_text(content, encoding="utf-8")
    code, out = _run(["validate", "-f", str(path)], capsys)
    assert code == 0, out


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _run(["validate", "-f", str(path)], capsys)
    assert code == 0, out
