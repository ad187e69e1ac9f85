"""``mlx init [--force]``: an mlx.yaml that declares exactly what the stores hold now."""

from __future__ import annotations

import fnmatch
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from mlxstate.mlxyaml.load import LoadedSpec, load_spec
from mlxstate.settings import read_environment
from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.helpers import mlx

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def ollama_dir() -> Path:
    return Path(os.environ["OLLAMA_MODELS"])


def hf_dir() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub"


def load(path: Path | str = "mlx.yaml") -> LoadedSpec:
    return load_spec(Path(path), read_environment())


def sources(loaded: LoadedSpec) -> dict[str, str]:
    """source → name."""
    return {str(m.source): name for name, m in loaded.spec.models.items()}


def run_init(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    result = mlx(capsys, "init", *args)
    assert result.code == 0, result.err
    assert "Traceback" not in result.err
    return result.out


def assert_valid(capsys: pytest.CaptureFixture[str], path: str = "mlx.yaml") -> None:
    result = mlx(capsys, "validate", "-f", path)
    assert result.code == 0, result.out + result.err


@pytest.fixture
def installed() -> dict[str, Any]:
    """Two tags of one Ollama model, an hf.co pull, a namespaced model; HF repos with the
    same name under two orgs, a repo whose main moved on (old commit detached, a tag on
    it), a dataset and a space."""
    om, hf = ollama_dir(), hf_dir()
    for name in (
        "qwen2.5:7b",
        "qwen2.5:14b",
        "llama3.2:latest",
        "hf.co/bartowski/Gemma-2-2b-it-GGUF:Q4_K_M",
        "someone/tinymodel:v2",
    ):
        ob.add_model(om, name)
    a = hb.add_revision(hf, "org-a/Model", {"config.json": b'{"a": 1}'})
    b = hb.add_revision(hf, "org-b/Model", {"config.json": b'{"b": 1}'})
    old = hb.add_revision(hf, "mlx-community/Llama-3.2-1B", {"w.safetensors": b"1" * 10})
    hb.set_ref(hf, "mlx-community/Llama-3.2-1B", "v1", old.commit)
    new = hb.add_revision(hf, "mlx-community/Llama-3.2-1B", {"w.safetensors": b"2" * 10})
    hb.add_revision(hf, "org/some-data", {"d.parquet": b"d"}, repo_type="dataset")
    hb.add_revision(hf, "org/a-space", {"app.py": b"print()"}, repo_type="space")
    return {
        "ollama": {
            "ollama://qwen2.5:7b": ("qwen2.5", "7b"),
            "ollama://qwen2.5:14b": ("qwen2.5", "14b"),
            "ollama://llama3.2:latest": ("llama3.2",),
            "ollama://hf.co/bartowski/Gemma-2-2b-it-GGUF:Q4_K_M": ("gemma-2-2b-it-gguf",),
            "ollama://someone/tinymodel:v2": ("tinymodel", "v2"),
        },
        "hf": {
            "hf://org-a/Model": a.commit,
            "hf://org-b/Model": b.commit,
            "hf://mlx-community/Llama-3.2-1B": new.commit,
        },
    }


def test_init_declares_every_model_and_repo(
    capsys: pytest.CaptureFixture[str], installed: dict[str, Any]
) -> None:
    out = run_init(capsys)
    assert "mlx.yaml" in out and "5 Ollama models" in out and "3 Hugging Face repos" in out
    assert_valid(capsys)
    loaded = load()
    by_source = sources(loaded)
    assert set(by_source) == set(installed["ollama"]) | set(installed["hf"])
    for source, commit in installed["hf"].items():
        model = loaded.spec.models[by_source[source]]
        assert model.revision == commit  # the commit `main` points to, not the tag's
        assert model.include is None and model.exclude is None
    for source in installed["ollama"]:
        model = loaded.spec.models[by_source[source]]
        assert model.revision is None and model.ensure == "present"

    # Names: valid, unique, and readable (they contain the model's own name and tag).
    names = list(loaded.spec.models)
    assert len(names) == len(set(names)) == 8
    assert all(NAME_RE.match(n) for n in names)
    for source, parts in installed["ollama"].items():
        assert all(part in by_source[source] for part in parts), by_source[source]
    assert by_source["ollama://qwen2.5:7b"] != by_source["ollama://qwen2.5:14b"]
    model_names = {by_source["hf://org-a/Model"], by_source["hf://org-b/Model"]}
    assert len(model_names) == 2 and all("model" in n for n in model_names)
    assert "llama-3.2-1b" in by_source["hf://mlx-community/Llama-3.2-1B"]
    # Each name is written once, as a key of `models:`.
    text = Path("mlx.yaml").read_text()
    for name in names:
        assert len(re.findall(rf"^  {re.escape(name)}:", text, re.M)) == 1


def test_init_skips_datasets_and_spaces_in_a_comment(
    capsys: pytest.CaptureFixture[str], installed: dict[str, Any]
) -> None:
    out = run_init(capsys)
    assert "skipped 2" in out
    text = Path("mlx.yaml").read_text()
    comments = [line for line in text.splitlines() if line.lstrip().startswith("#")]
    assert any("org/some-data" in line for line in comments)
    assert any("org/a-space" in line for line in comments)
    declared = json.dumps(sorted(sources(load())))
    assert "some-data" not in declared and "a-space" not in declared


def test_init_round_trip_status_declares_everything(
    capsys: pytest.CaptureFixture[str], installed: dict[str, Any]
) -> None:
    run_init(capsys)
    by_source = sources(load())
    result = mlx(capsys, "status", "--json")
    assert result.code == 0, result.err
    doc = json.loads(result.out)
    models = doc["stores"]["ollama"]["models"]
    assert len(models) == 5
    for m in models:
        assert m["declared_as"] == by_source[m["source"]], m["name"]
    repos = [r for r in doc["stores"]["huggingface"]["repos"] if r["type"] == "model"]
    assert len(repos) == 3
    for r in repos:
        assert r["declared_as"] == by_source[r["source"]], r["id"]


PRESENT = {
    "config.json": b'{"model_type": "llama"}',
    "model-00001-of-00002.safetensors": b"1" * 100,
    "tokenizer/tokenizer.json": b'{"v": 1}',
    "weird[1].json": b"[1]",
    "what?.txt": b"?",
    "star*.md": b"*",
    "with space.txt": b" ",
}
REMOTE_ONLY = {
    "model-00002-of-00002.safetensors": b"2" * 100,
    "README.md": b"# readme\n",
    "weird1.json": b"1",  # what weird[1].json would match as a glob
    "whatX.txt": b"X",  # what what?.txt would match as a glob
    "star-anything.md": b"-",  # what star*.md would match as a glob
    "tokenizer/extra.json": b"{}",
}


def test_init_partial_snapshot_gets_exact_include(capsys: pytest.CaptureFixture[str]) -> None:
    hf = hf_dir()
    partial = hb.add_revision(hf, "org/partial", PRESENT, remote_files={**PRESENT, **REMOTE_ONLY})
    hb.add_revision(hf, "org/complete", {"a.json": b"{}", "b.safetensors": b"b" * 20})
    hb.add_revision(hf, "org/no-tree", {"a.json": b"{}"}, tree=False)
    run_init(capsys)
    assert_valid(capsys)
    loaded = load()
    by_source = sources(loaded)

    model = loaded.spec.models[by_source["hf://org/partial"]]
    assert model.revision == partial.commit
    patterns = list(model.include or [])
    assert len(patterns) == len(PRESENT)
    remote = [*PRESENT, *REMOTE_ONLY]
    matched = {p for p in remote if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)}
    assert matched == set(PRESENT)
    # Each pattern names exactly one present file.
    for pat in patterns:
        assert len([p for p in remote if fnmatch.fnmatchcase(p, pat)]) == 1, pat

    assert loaded.spec.models[by_source["hf://org/complete"]].include is None
    assert loaded.spec.models[by_source["hf://org/no-tree"]].include is None


def test_init_refuses_to_overwrite_without_force(
    capsys: pytest.CaptureFixture[str], installed: dict[str, Any]
) -> None:
    original = b"# my hand-written file\nversion: 1\nmodels: {}\n"
    Path("mlx.yaml").write_bytes(original)
    result = mlx(capsys, "init")
    assert result.code == 1
    assert "Traceback" not in result.err
    assert "already exists" in result.err and "--force" in result.err
    assert Path("mlx.yaml").read_bytes() == original

    run_init(capsys, "--force")
    assert Path("mlx.yaml").read_bytes() != original
    assert_valid(capsys)
    assert len(load().spec.models) == 8


def test_init_force_replaces_an_invalid_file(capsys: pytest.CaptureFixture[str]) -> None:
    ob.add_model(ollama_dir(), "qwen2.5:7b")
    Path("mlx.yaml").write_text("version: 2\nmodels: [oops\n")
    run_init(capsys, "--force")
    assert_valid(capsys)
    assert set(sources(load())) == {"ollama://qwen2.5:7b"}


@pytest.mark.parametrize("stores_exist", [False, True], ids=["no-stores", "empty-stores"])
def test_init_with_empty_stores_writes_valid_empty_models(
    capsys: pytest.CaptureFixture[str], stores_exist: bool
) -> None:
    if stores_exist:
        (ollama_dir() / "manifests").mkdir(parents=True)
        (ollama_dir() / "blobs").mkdir()
        hf_dir().mkdir(parents=True)
    out = run_init(capsys)
    assert "0 Ollama models" in out
    assert_valid(capsys)
    text = Path("mlx.yaml").read_text()
    assert re.search(r"^models: \{\}$", text, re.M)
    assert re.search(r"^version: 1$", text, re.M)
    assert load().spec.models == {}


def test_init_file_option_writes_there(
    capsys: pytest.CaptureFixture[str], installed: dict[str, Any]
) -> None:
    run_init(capsys, "-f", "other.yaml")
    assert Path("other.yaml").is_file()
    assert not Path("mlx.yaml").exists()
    assert_valid(capsys, "other.yaml")
    assert len(load("other.yaml").spec.models) == 8

    before = Path("other.yaml").read_bytes()
    result = mlx(capsys, "init", "-f", "other.yaml")
    assert result.code == 1
    assert Path("other.yaml").read_bytes() == before

    sub = Path("conf", "deep", "mlx.yaml")
    run_init(capsys, "-f", str(sub))
    assert_valid(capsys, str(sub))


def test_init_does_not_touch_the_stores(
    capsys: pytest.CaptureFixture[str], installed: dict[str, Any]
) -> None:
    def listing() -> list[tuple[str, int]]:
        out = []
        for root in (ollama_dir(), hf_dir()):
            for dirpath, dirs, files in os.walk(root):
                for name in (*dirs, *files):
                    path = Path(dirpath, name)
                    out.append((str(path), path.lstat().st_mtime_ns))
        return sorted(out)

    before = listing()
    run_init(capsys)
    assert listing() == before


@pytest.mark.parametrize(
    ("kind", "name"),
    [("ollama", "1234:latest"), ("ollama", "true:latest"), ("hf", "org/1.0")],
)
def test_init_with_names_yaml_reads_as_non_strings(
    capsys: pytest.CaptureFixture[str], kind: str, name: str
) -> None:
    if kind == "ollama":
        ob.add_model(ollama_dir(), name)
    else:
        hb.add_revision(hf_dir(), name, {"config.json": b"{}"})
    result = mlx(capsys, "init")
    assert result.code == 0, result.err
    assert_valid(capsys)
    assert len(load().spec.models) == 1
