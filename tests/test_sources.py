from pathlib import Path

import pytest

from mlxstate.sources import FileSource, HfSource, OllamaSource, parse_source


@pytest.mark.parametrize(
    ("text", "host", "namespace", "model", "tag", "name"),
    [
        (
            "qwen2.5-coder:7b",
            "registry.ollama.ai",
            "library",
            "qwen2.5-coder",
            "7b",
            "qwen2.5-coder:7b",
        ),
        ("llama3", "registry.ollama.ai", "library", "llama3", "latest", "llama3:latest"),
        ("jmorgan/m:q4", "registry.ollama.ai", "jmorgan", "m", "q4", "jmorgan/m:q4"),
        (
            "hf.co/bartowski/gemma-GGUF:Q4_K_M",
            "hf.co",
            "bartowski",
            "gemma-GGUF",
            "Q4_K_M",
            "hf.co/bartowski/gemma-GGUF:Q4_K_M",
        ),
        ("localhost:5000/ns/m:v1", "localhost:5000", "ns", "m", "v1", "localhost:5000/ns/m:v1"),
    ],
)
def test_ollama_sources_fill_in_ollama_defaults(
    text: str, host: str, namespace: str, model: str, tag: str, name: str
) -> None:
    src = parse_source(f"ollama://{text}")
    assert src == OllamaSource(host=host, namespace=namespace, model=model, tag=tag)
    assert isinstance(src, OllamaSource)
    assert src.name == name
    assert src.manifest_relpath == Path("manifests", host, namespace, model, tag)


def test_hf_source_and_cache_folder() -> None:
    src = parse_source("hf://mlx-community/Llama-3.2-1B-Instruct-4bit")
    assert src == HfSource("mlx-community/Llama-3.2-1B-Instruct-4bit")
    assert isinstance(src, HfSource)
    assert src.cache_folder == "models--mlx-community--Llama-3.2-1B-Instruct-4bit"
    assert str(src) == "hf://mlx-community/Llama-3.2-1B-Instruct-4bit"


def test_file_source_expands_home_and_resolves_relative(isolated_env: Path, tmp_path: Path) -> None:
    assert parse_source("file://~/models/x") == FileSource(isolated_env / "models" / "x")
    assert parse_source("file://rel/../lora", tmp_path) == FileSource(tmp_path / "lora")
    assert parse_source("file:///abs/p") == FileSource(Path("/abs/p"))


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("qwen", "has no scheme"),
        ("http://x/y", "unknown scheme 'http://'"),
        ("hf://justone", "invalid Hugging Face repo id"),
        ("hf://a--b/c", "'..' and '--' are not allowed"),
        ("hf://a/b..c", "'..' and '--' are not allowed"),
        ("hf://a/b/c", "invalid Hugging Face repo id"),
        ("ollama://a/b/c/d", "too many '/'"),
        ("ollama://m:", "empty tag"),
        ("ollama://m o", "invalid model"),
        ("ollama://-x", "invalid model"),
        ("ollama://", "invalid model"),
        ("file://", "empty path"),
    ],
)
def test_bad_sources_say_what_is_expected(text: str, phrase: str) -> None:
    with pytest.raises(ValueError, match=phrase.replace("(", r"\(")):
        parse_source(text)
