"""``mlxstate.api`` (resolve, ensure), ``mlx which`` and the public names of ``mlxstate``.

Expected paths and digests come from what the builders wrote (blob bytes, snapshot
folders), never from mlxstate's own helpers.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import mlxstate
from mlxstate import api
from mlxstate.errors import EnsureFailed, NotDeclared, NotPresent
from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.builders.common import sha256_hex
from tests.fakes.ollama_server import FakeOllama
from tests.helpers import hf_dir, mlx, ollama_dir, state_dir
from tests.helpers.apply import go_offline, no_traceback

VISION = "llava:7b"
TEXT = "qwen2.5:0.5b"
GGUF = ob.fake_gguf("llava weights", 4096)
PROJECTOR = ob.fake_gguf("llava projector", 1024)
VISION_LAYERS = [
    ("model", GGUF),
    ("projector", PROJECTOR),
    ("template", b"{{ .Prompt }}"),
    ("params", b'{"stop":["</s>"]}'),
]
HF_GGUF = "org/gemma-gguf"
HF_FILES = {
    "gemma-Q4_K_M.gguf": ob.fake_gguf("gemma q4", 2048),
    "mmproj-F16.gguf": ob.fake_gguf("gemma mmproj", 512),
    "README.md": b"# gemma\n",
}
SPEC = f"""\
version: 1
models:
  vision:
    source: ollama://{VISION}
  chat:
    source: ollama://{TEXT}
  gemma:
    source: hf://{HF_GGUF}
  local:
    source: file://./weights/tiny.gguf
  gone:
    source: ollama://old:1b
    ensure: absent
"""


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    go_offline(monkeypatch)


@pytest.fixture
def spec() -> Path:
    path = Path("mlx.yaml")
    path.write_text(SPEC)
    return path.absolute()


def blob(data: bytes) -> Path:
    return ollama_dir() / "blobs" / f"sha256-{sha256_hex(data)}"


# --- resolve: Ollama ------------------------------------------------------------------------


def test_vision_model_resolves_to_its_gguf_and_mmproj_blobs(spec: Path) -> None:
    info = ob.add_model(ollama_dir(), VISION, VISION_LAYERS)
    found = api.resolve("vision")
    assert found.present and found.kind == "ollama"
    assert found.ollama_name == VISION
    assert found.gguf == blob(GGUF) and found.gguf.read_bytes() == GGUF
    assert found.mmproj == blob(PROJECTOR) and found.mmproj.read_bytes() == PROJECTOR
    assert found.path == info.path
    assert found.commit == info.digest  # what `ollama list` shows as its digest
    assert [f.name for f in found.files] == ["config", "model", "projector", "template", "params"]
    assert (found.hf_repo, found.revision) == (None, None)


def test_text_model_has_no_mmproj(spec: Path) -> None:
    ob.add_model(ollama_dir(), TEXT)
    found = api.resolve("chat")
    assert found.present and found.gguf is not None and found.mmproj is None


def test_missing_blob_is_not_present_and_gives_no_path_to_it(spec: Path) -> None:
    ob.add_model(ollama_dir(), VISION, VISION_LAYERS)
    ob.remove_blob(ollama_dir(), sha256_hex(PROJECTOR))
    found = api.resolve("vision")
    assert not found.present
    assert found.gguf == blob(GGUF) and found.mmproj is None
    assert [f.name for f in found.files if not f.present] == ["projector"]


def test_not_installed_ollama_model(spec: Path) -> None:
    found = api.resolve("vision")
    assert not found.present
    assert (found.path, found.gguf, found.files) == (None, None, ())
    assert found.ollama_name == VISION


def test_name_case_differs_on_disk(spec: Path) -> None:
    ob.add_model(ollama_dir(), "LLaVA:7B", VISION_LAYERS)
    assert api.resolve("vision").present  # Ollama matches names ignoring case


# --- resolve: Hugging Face ------------------------------------------------------------------


def test_hf_gguf_repo_resolves_to_snapshot_files_gguf_and_mmproj(spec: Path) -> None:
    rev = hb.add_revision(hf_dir(), HF_GGUF, HF_FILES)
    found = api.resolve("gemma")
    assert found.present and found.kind == "hf"
    assert (found.hf_repo, found.revision, found.commit) == (HF_GGUF, "main", rev.commit)
    assert found.path == rev.snapshot_dir
    assert [f.name for f in found.files] == sorted(HF_FILES)
    assert found.gguf == rev.snapshot_dir / "gemma-Q4_K_M.gguf"
    assert found.gguf.read_bytes() == HF_FILES["gemma-Q4_K_M.gguf"]
    assert found.mmproj == rev.snapshot_dir / "mmproj-F16.gguf"
    assert found.ollama_name is None


def test_hf_several_quantizations_give_no_gguf_until_include_narrows_them(
    spec: Path,
) -> None:
    files = {**HF_FILES, "gemma-Q8_0.gguf": ob.fake_gguf("gemma q8", 4096)}
    rev = hb.add_revision(hf_dir(), HF_GGUF, files)
    assert api.resolve("gemma").gguf is None
    spec.write_text(
        SPEC.replace(f"hf://{HF_GGUF}\n", f"hf://{HF_GGUF}\n    include: ['*Q8_0*', 'mmproj*']\n")
    )
    found = api.resolve("gemma")
    assert found.present
    assert found.gguf == rev.snapshot_dir / "gemma-Q8_0.gguf"
    assert [f.name for f in found.files] == ["gemma-Q8_0.gguf", "mmproj-F16.gguf"]


def test_hf_split_gguf_resolves_to_its_first_part(spec: Path) -> None:
    parts = {f"m-0000{i}-of-00002.gguf": ob.fake_gguf(f"part {i}", 512) for i in (1, 2)}
    rev = hb.add_revision(hf_dir(), HF_GGUF, parts)
    assert api.resolve("gemma").gguf == rev.snapshot_dir / "m-00001-of-00002.gguf"


def test_hf_dangling_file_is_not_present(spec: Path) -> None:
    rev = hb.add_revision(hf_dir(), HF_GGUF, HF_FILES)
    hb.remove_blob(rev, "mmproj-F16.gguf")
    found = api.resolve("gemma")
    assert not found.present and found.mmproj is None


def test_hf_file_the_hub_lists_but_never_downloaded_is_not_present(spec: Path) -> None:
    extra = {**HF_FILES, "tokenizer.json": b"{}"}
    hb.add_revision(hf_dir(), HF_GGUF, HF_FILES, remote_files=extra)
    assert not api.resolve("gemma").present


def test_hf_pinned_commit_and_ref_elsewhere(spec: Path) -> None:
    old = hb.add_revision(hf_dir(), HF_GGUF, {"a.gguf": b"old"}, refs=())
    new = hb.add_revision(hf_dir(), HF_GGUF, {"a.gguf": b"new"})
    assert api.resolve("gemma").commit == new.commit
    spec.write_text(
        SPEC.replace(f"hf://{HF_GGUF}\n", f"hf://{HF_GGUF}\n    revision: {old.commit}\n")
    )
    found = api.resolve("gemma")
    assert (found.commit, found.path) == (old.commit, old.snapshot_dir)


def test_hf_ref_not_cached(spec: Path) -> None:
    hb.add_revision(hf_dir(), HF_GGUF, HF_FILES, refs=("v2",))
    found = api.resolve("gemma")
    assert not found.present and found.commit is None and found.path is None


# --- resolve: file://, names, narrowness ------------------------------------------------------


def test_file_source(spec: Path) -> None:
    assert not api.resolve("local").present
    Path("weights").mkdir()
    Path("weights/tiny.gguf").write_bytes(b"GGUF")
    found = api.resolve("local")
    assert found.present and found.gguf == Path("weights/tiny.gguf").absolute()


def test_by_declared_source_and_explicit_file(spec: Path, tmp_path: Path) -> None:
    ob.add_model(ollama_dir(), VISION, VISION_LAYERS)
    assert api.resolve(f"ollama://{VISION.upper()}").name == "vision"
    other = tmp_path / "elsewhere" / "apps.yaml"
    other.parent.mkdir()
    other.write_text(f"version: 1\nmodels:\n  eyes:\n    source: ollama://{VISION}\n")
    assert api.resolve("eyes", file=other).present
    assert mlxstate.resolve("eyes", other).name == "eyes"
    importlib.import_module("mlxstate.one_model")  # a submodule must not shadow the function

    assert callable(mlxstate.resolve) and mlxstate.resolve is api.resolve


def test_not_declared_says_what_to_do(spec: Path) -> None:
    with pytest.raises(NotDeclared) as caught:
        api.resolve("visoin")
    assert caught.value.message == "'visoin' is not declared in mlx.yaml"
    assert caught.value.hint == "did you mean 'vision'?"


def test_reads_only_the_one_model(spec: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ob.add_model(ollama_dir(), VISION, VISION_LAYERS)
    ob.write_unparseable_manifest(ollama_dir(), "broken:1b")
    hb.add_revision(hf_dir(), HF_GGUF, HF_FILES)
    (hf_dir() / "models--junk").write_text("not a folder")

    def whole_store(*_: object) -> None:
        raise AssertionError("resolve scanned a whole store")

    monkeypatch.setattr("mlxstate.observe.ollama_store.scan_ollama_store", whole_store)
    monkeypatch.setattr("mlxstate.observe.hf_cache.scan_hf_cache", whole_store)
    monkeypatch.setattr("mlxstate.observe.ollama_store.manifest_files", whole_store)
    assert api.resolve("vision").present
    assert api.resolve("gemma").present


# --- mlx which ------------------------------------------------------------------------------


def test_which_json_document(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ob.add_model(ollama_dir(), VISION, VISION_LAYERS)
    result = mlx(capsys, "which", "vision", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    assert list(doc) == [
        *("name", "source", "kind", "present", "ollama_name", "hf_repo", "revision"),
        *("commit", "path", "files", "gguf", "mmproj"),
    ]
    assert doc["gguf"] == str(blob(GGUF)) and doc["mmproj"] == str(blob(PROJECTOR))
    assert doc["files"][2] == {
        "name": "projector",
        "path": str(blob(PROJECTOR)),
        "size": len(PROJECTOR),
        "present": True,
    }


def test_which_text(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rev = hb.add_revision(hf_dir(), HF_GGUF, HF_FILES)
    result = mlx(capsys, "which", "gemma")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["gemma", f"hf://{HF_GGUF}", "(present)"]
    assert f"snapshot  {rev.snapshot_dir}" in lines
    assert f"gguf      {rev.snapshot_dir / 'gemma-Q4_K_M.gguf'}" in lines


def test_which_not_present_exits_1_and_says_how(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = mlx(capsys, "which", "chat")
    assert result.code == 1
    assert result.err == "chat is not present: install it with `mlx apply --target chat`\n"
    result = mlx(capsys, "which", "chat", "--json")
    assert result.code == 1 and json.loads(result.out)["present"] is False


def test_which_not_declared_exits_1(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = mlx(capsys, "which", "nope")
    no_traceback(result)
    assert result.code == 1 and "'nope' is not declared in mlx.yaml" in result.err
    assert result.out == ""
    result = mlx(capsys, "which", "nope", "--json")
    assert result.code == 1
    assert json.loads(result.out) == {
        "name": "nope",
        "present": False,
        "error": "'nope' is not declared in mlx.yaml",
    }


def test_which_plain_calls_skip_the_parser_and_others_use_it(
    spec: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plain call (name, --json, -f, -q, --no-color) never imports the option parser;
    help and unknown options still go through it, with its usual errors."""
    import subprocess
    import sys

    ob.add_model(ollama_dir(), VISION, VISION_LAYERS)
    code = (
        "import sys; from mlxstate.cli.main import main; rc = main(sys.argv[1:]);"
        "print('typer' in sys.modules, rc, file=sys.stderr)"
    )
    plain = subprocess.run(
        [sys.executable, "-c", code, "which", "vision", "--json", "--file", str(spec), "-q"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(plain.stdout)["present"] is True
    assert plain.stderr.split() == ["False", "0"]
    assert "Usage" in mlx(capsys, "which", "--help").out
    bad = mlx(capsys, "which", "vision", "--bogus")
    assert bad.code == 1 and "No such option: --bogus" in bad.err  # the parser's own error
    assert mlx(capsys, "which", "vision", "-f", str(spec), "-v").code == 0  # parsed: same


# --- ensure ---------------------------------------------------------------------------------


@pytest.fixture
def local_weights(spec: Path) -> Path:
    """The file:// model exists (a plan fails while a declared file is missing)."""
    Path("weights").mkdir()
    Path("weights/tiny.gguf").write_bytes(b"GGUF")
    return spec


def test_ensure_installs_through_apply_and_returns_the_resolved_model(
    local_weights: Path, ollama_server: FakeOllama
) -> None:
    ollama_server.publish(VISION, VISION_LAYERS)
    events: list[api.ProgressEvent] = []
    found = api.ensure("vision", events.append)
    assert found.present and found.mmproj is not None
    assert found.mmproj.read_bytes() == PROJECTOR
    assert ollama_server.count("POST", "/api/pull") == 1
    assert any(e.kind == "bytes" and e.text == f"pull {VISION}" for e in events)
    journal = (state_dir() / "journal.jsonl").read_text()
    assert "model/vision" in journal  # the apply's journal, like `mlx apply --target`
    assert api.ensure("vision") == found  # present: nothing more to do
    assert ollama_server.count("POST", "/api/pull") == 1


def test_ensure_failure_is_typed(local_weights: Path, ollama_server: FakeOllama) -> None:
    with pytest.raises(EnsureFailed, match=r"^could not install chat: model/chat: "):
        api.ensure("chat")  # not in the daemon's registry
    with pytest.raises(NotPresent, match="declared `ensure: absent`"):
        api.ensure("gone")
    with pytest.raises(NotDeclared):
        api.ensure("nope")


# --- the package ----------------------------------------------------------------------------


def test_public_names_resolve() -> None:
    have_client = importlib.util.find_spec("mlxstate.client") is not None
    for name in mlxstate.__all__:
        if mlxstate._PUBLIC.get(name) == "mlxstate.client" and not have_client:
            continue
        assert getattr(mlxstate, name) is not None, name
    assert set(mlxstate.__all__) == {"__version__", *mlxstate._PUBLIC}
    assert (Path(mlxstate.__file__).parent / "py.typed").is_file()
    with pytest.raises(AttributeError):
        _ = mlxstate.no_such_name


def test_import_mlxstate_stays_cheap() -> None:
    code = (
        "import sys, mlxstate; "
        "print(sorted(m for m in sys.modules if m.startswith(('mlxstate.', 'pydantic'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_resolve_sees_an_edited_file_at_once(spec: Path) -> None:
    ob.add_model(ollama_dir(), VISION, VISION_LAYERS)
    assert api.resolve("vision").ollama_name == VISION
    spec.write_text(SPEC.replace(f"ollama://{VISION}", "ollama://bakllava:7b"))
    found = api.resolve("vision")  # the parsed file is kept by content, not by name
    assert (found.ollama_name, found.present) == ("bakllava:7b", False)
