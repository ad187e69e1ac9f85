"""Resolving declared models upstream: the hub through huggingface_hub (files_metadata),
Ollama tags through the registry's distribution API. Against the loopback fakes."""

from __future__ import annotations

import hashlib
import json

import httpx
import pytest

from mlxstate.lock.model import input_hash
from mlxstate.lock.resolve import (
    MANIFEST_MEDIA_TYPE,
    ResolveError,
    manifest_url,
    resolve_model,
)
from mlxstate.mlxyaml.models import ModelSpec, SettingsSpec
from mlxstate.settings import Environment, Settings, resolve
from mlxstate.sources import OllamaSource, parse_source
from tests.builders.hf_cache import describe_files
from tests.builders.ollama_store import manifest_path
from tests.fakes.hf_hub import FakeHfHub
from tests.fakes.ollama_registry import FakeOllamaRegistry
from tests.fakes.ollama_server import FakeOllama

FILES = {
    "config.json": b'{"model_type": "llama"}',
    "model.safetensors": b"weights" * 100,
    "sub/tokenizer.json": b"{}",
}


def _settings(
    hub: FakeHfHub | None = None,
    registry: FakeOllamaRegistry | None = None,
    **environ: str,
) -> Settings:
    env = {"HOME": "/nonexistent", **environ}
    if hub is not None:
        env["HF_ENDPOINT"] = hub.url
    doc = {"ollama": {"registry": registry.url}} if registry is not None else {}
    return resolve(SettingsSpec.model_validate(doc), Environment.from_mapping(env))


def _spec(source: str, **extra: object) -> ModelSpec:
    return ModelSpec.model_validate({"source": source, **extra})


def test_hf_entry_pins_the_commit_and_every_file(fake_hub: FakeHfHub) -> None:
    commit = fake_hub.add_repo("org/repo", FILES, lfs={"model.safetensors"})
    spec = _spec("hf://org/repo")
    entry = resolve_model("repo", spec, _settings(fake_hub))
    assert entry.source == "hf://org/repo" and entry.input_hash == input_hash(spec)
    assert entry.hf is not None and entry.ollama is None
    assert (entry.hf.revision, entry.hf.commit) == ("main", commit)
    facts = describe_files(FILES, lfs={"model.safetensors"})
    by_path = {f.path: f for f in entry.hf.files}
    assert sorted(by_path) == sorted(FILES)
    weights = by_path["model.safetensors"]
    assert (weights.size, weights.sha256, weights.blob_id) == (
        len(FILES["model.safetensors"]),
        hashlib.sha256(FILES["model.safetensors"]).hexdigest(),
        None,
    )
    config = by_path["config.json"]
    assert (config.size, config.sha256, config.blob_id) == (
        len(FILES["config.json"]),
        None,
        facts["config.json"].blob_id,
    )


def test_hf_include_and_exclude_select_as_downloads_do(fake_hub: FakeHfHub) -> None:
    fake_hub.add_repo("org/repo", FILES, lfs={"model.safetensors"})
    settings = _settings(fake_hub)
    entry = resolve_model("r", _spec("hf://org/repo", include=["*.json"]), settings)
    assert entry.hf is not None
    # `*` crosses `/` as in huggingface_hub's filter_repo_objects.
    assert sorted(f.path for f in entry.hf.files) == ["config.json", "sub/tokenizer.json"]
    entry = resolve_model(
        "r", _spec("hf://org/repo", include=["sub/"], exclude=["*.bin"]), settings
    )
    assert entry.hf is not None
    assert [f.path for f in entry.hf.files] == ["sub/tokenizer.json"]


def test_hf_revision_tag_resolves_to_its_commit(fake_hub: FakeHfHub) -> None:
    first = fake_hub.add_repo("org/repo", FILES)
    fake_hub.set_ref("org/repo", "v1", first)
    fake_hub.push("org/repo", {"config.json": b"{}"})
    entry = resolve_model("r", _spec("hf://org/repo", revision="v1"), _settings(fake_hub))
    assert entry.hf is not None and (entry.hf.revision, entry.hf.commit) == ("v1", first)


def test_hf_include_matching_nothing_is_one_line(fake_hub: FakeHfHub) -> None:
    fake_hub.add_repo("org/repo", FILES)
    with pytest.raises(ResolveError) as caught:
        resolve_model("r", _spec("hf://org/repo", include=["*.gguf"]), _settings(fake_hub))
    assert caught.value.message == (
        "models.r: include [*.gguf] matches no file of hf://org/repo@main "
        f"(3 files at {fake_hub.repo('org/repo').refs['main'][:12]})"
    )
    assert caught.value.reason.startswith("include [*.gguf]")


@pytest.mark.parametrize(
    ("source", "revision", "expected"),
    [
        ("hf://org/missing", "main", "models.r: hf://org/missing not found on the hub"),
        ("hf://org/repo", "nope", "models.r: hf://org/repo has no revision 'nope' on the hub"),
    ],
)
def test_hf_missing_repo_or_revision(
    fake_hub: FakeHfHub, source: str, revision: str, expected: str
) -> None:
    fake_hub.add_repo("org/repo", FILES)
    with pytest.raises(ResolveError) as caught:
        resolve_model("r", _spec(source, revision=revision), _settings(fake_hub))
    assert caught.value.message.startswith(expected)
    assert "\n" not in caught.value.message


def test_hf_gated_repo_names_the_token_variable(fake_hub: FakeHfHub) -> None:
    fake_hub.add_repo("org/gated", FILES)
    fake_hub.gate("org/gated")
    settings = resolve(
        SettingsSpec.model_validate({"huggingface": {"token_env": "MY_HF"}}),
        Environment.from_mapping({"HOME": "/x", "HF_ENDPOINT": fake_hub.url}),
    )
    with pytest.raises(ResolveError) as caught:
        resolve_model("g", _spec("hf://org/gated"), settings)
    assert caught.value.message == (
        "models.g: hf://org/gated is gated: accept its terms on the hub and put a token of "
        "that account in $MY_HF (settings.huggingface.token_env)"
    )
    # With a token whose account did not accept the terms: the hub says so (403 GatedRepo).
    with_token = resolve(
        SettingsSpec.model_validate({"huggingface": {"token_env": "MY_HF"}}),
        Environment.from_mapping({"HOME": "/x", "HF_ENDPOINT": fake_hub.url, "MY_HF": "hf_x"}),
    )
    with pytest.raises(ResolveError) as caught:
        resolve_model("g", _spec("hf://org/gated"), with_token)
    assert caught.value.message.startswith("models.g: hf://org/gated is gated")
    assert "$MY_HF (settings.huggingface.token_env)" in caught.value.message


def test_hf_token_comes_from_token_env(fake_hub: FakeHfHub) -> None:
    fake_hub.add_repo("org/repo", FILES)
    fake_hub.require_token("hf_secret")
    spec = _spec("hf://org/repo")
    with pytest.raises(ResolveError) as caught:
        resolve_model("r", spec, _settings(fake_hub))
    assert "HTTP 401" in caught.value.message and "$HF_TOKEN" in caught.value.message
    entry = resolve_model("r", spec, _settings(fake_hub, HF_TOKEN="hf_secret"))
    assert entry.hf is not None and len(entry.hf.files) == 3


def test_hf_unreachable_hub_is_one_line() -> None:
    with FakeHfHub() as hub:
        settings = _settings(hub)
    with pytest.raises(ResolveError) as caught:
        resolve_model("r", _spec("hf://org/repo"), settings)
    assert caught.value.message.startswith("models.r: cannot reach the hub at http://127.0.0.1:")


# --- Ollama -----------------------------------------------------------------------------------


def test_ollama_entry_is_the_manifest_digest_and_blobs(
    ollama_registry: FakeOllamaRegistry,
) -> None:
    model = ollama_registry.publish("qwen2.5:7b")
    spec = _spec("ollama://qwen2.5:7b")
    entry = resolve_model("qwen", spec, _settings(registry=ollama_registry))
    assert entry.ollama is not None and entry.hf is None
    assert entry.ollama.name == "registry.ollama.ai/library/qwen2.5:7b"
    assert entry.ollama.digest == "sha256:" + hashlib.sha256(model.manifest).hexdigest()
    doc = json.loads(model.manifest)
    expected = [doc["config"], *doc["layers"]]
    assert [(x.digest, x.size, x.media_type) for x in entry.ollama.layers] == [
        (e["digest"], e["size"], e["mediaType"]) for e in expected
    ]
    request = ollama_registry.requests[-1]
    assert request.path == "/v2/library/qwen2.5/manifests/7b"
    assert request.headers["accept"] == MANIFEST_MEDIA_TYPE


def test_ollama_tag_that_moved_resolves_to_the_new_digest(
    ollama_registry: FakeOllamaRegistry,
) -> None:
    settings = _settings(registry=ollama_registry)
    spec = _spec("ollama://me/tiny:latest")
    first = ollama_registry.publish("me/tiny", [("model", b"one")])
    assert resolve_model("t", spec, settings).ollama.digest == first.digest  # type: ignore[union-attr]
    moved = ollama_registry.publish("me/tiny", [("model", b"two")])
    assert moved.digest != first.digest
    assert resolve_model("t", spec, settings).ollama.digest == moved.digest  # type: ignore[union-attr]


def test_ollama_unknown_tag_and_failures(ollama_registry: FakeOllamaRegistry) -> None:
    settings = _settings(registry=ollama_registry)
    with pytest.raises(ResolveError) as caught:
        resolve_model("x", _spec("ollama://nope:1b"), settings)
    assert caught.value.message == (
        f"models.x: ollama://nope:1b not found at the registry {ollama_registry.url} "
        "(check the model name and tag)"
    )
    ollama_registry.publish("qwen:7b")
    ollama_registry.fail(r"/v2/.*", 503)
    with pytest.raises(ResolveError) as caught:
        resolve_model("x", _spec("ollama://qwen:7b"), settings)
    assert "failed with HTTP 503" in caught.value.message


def test_ollama_garbage_manifest_is_refused(ollama_registry: FakeOllamaRegistry) -> None:
    ollama_registry.fail(r"/v2/.*", 200)  # a 200 whose body is {"error": ...}
    with pytest.raises(ResolveError) as caught:
        resolve_model("x", _spec("ollama://qwen:7b"), _settings(registry=ollama_registry))
    assert "is not a manifest" in caught.value.message


def test_ollama_unreachable_registry() -> None:
    with FakeOllamaRegistry() as registry:
        settings = _settings(registry=registry)
        url = registry.url
    with pytest.raises(ResolveError) as caught:
        resolve_model("x", _spec("ollama://qwen:7b"), settings)
    assert caught.value.message.startswith(f"models.x: cannot reach the registry at {url}")


def test_other_hosts_resolve_at_their_own_address() -> None:
    settings = _settings()
    assert settings.ollama_registry == "https://registry.ollama.ai"
    src = parse_source("ollama://hf.co/bartowski/Qwen-GGUF:Q4_K_M")
    assert isinstance(src, OllamaSource)
    assert manifest_url(src, settings) == ("https://hf.co/v2/bartowski/Qwen-GGUF/manifests/Q4_K_M")
    default = parse_source("ollama://qwen2.5")
    assert isinstance(default, OllamaSource)
    assert manifest_url(default, settings) == (
        "https://registry.ollama.ai/v2/library/qwen2.5/manifests/latest"
    )


def test_registry_setting_is_validated() -> None:
    with pytest.raises(ValueError, match="invalid registry URL"):
        SettingsSpec.model_validate({"ollama": {"registry": "ftp://x"}})
    spec = SettingsSpec.model_validate({"ollama": {"registry": "http://127.0.0.1:5000/"}})
    assert spec.ollama.registry == "http://127.0.0.1:5000"


def test_file_sources_are_not_resolvable(tmp_path: object) -> None:
    with pytest.raises(ResolveError, match="nothing upstream to lock"):
        resolve_model("f", _spec("file:///tmp/x.gguf"), _settings())


def test_fake_daemon_pulls_from_the_fake_registry(
    ollama_server: FakeOllama, ollama_registry: FakeOllamaRegistry
) -> None:
    """The fakes together: a tag moved at the registry is what the daemon's next pull gets."""
    ollama_server.upstream = ollama_registry.url
    first = ollama_registry.publish("me/tiny", [("model", b"one")])
    _pull(ollama_server, "me/tiny")
    path = manifest_path(ollama_server.models_dir, "me/tiny")
    assert path.read_bytes() == first.manifest
    moved = ollama_registry.publish("me/tiny", [("model", b"two")])
    _pull(ollama_server, "me/tiny")
    assert path.read_bytes() == moved.manifest
    assert ollama_registry.count("GET", r"/v2/me/tiny/blobs/.*") == 4  # per pull: config + weights
    ollama_registry.unpublish("me/tiny")
    assert '"error"' in _pull(ollama_server, "me/tiny")


def _pull(server: FakeOllama, name: str) -> str:
    response = httpx.post(f"{server.url}/api/pull", json={"model": name}, timeout=10)
    assert response.status_code == 200
    return response.text
