"""``scan_ollama_store`` against stores written by ``tests.builders.ollama_store``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mlxstate.facts import Layer, OllamaModel, OllamaStore
from mlxstate.observe.ollama_store import scan_ollama_store
from tests.builders import ollama_store as ob
from tests.builders.common import sha256_hex

GGUF = ob.fake_gguf("weights", 8192)


def _models_dir(tmp_path: Path) -> Path:
    return tmp_path / "models"


def _expect_layer(layer: Layer, blob: ob.Blob, on_disk: int | None) -> None:
    assert (layer.media_type, layer.digest, layer.size, layer.on_disk) == (
        blob.media_type,
        blob.hex,
        blob.size,
        on_disk,
    )


def _only(store: OllamaStore, name: str) -> OllamaModel:
    model = store.find(name)
    assert model is not None, f"{name} not in {[m.name for m in store.models]}"
    return model


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("qwen2.5:7b", ("registry.ollama.ai", "library", "qwen2.5", "7b")),
        ("ns/model:tag", ("registry.ollama.ai", "ns", "model", "tag")),
        ("hf.co/org/repo:Q4_K_M", ("hf.co", "org", "repo", "Q4_K_M")),
    ],
)
def test_model_names_and_manifest_facts(
    tmp_path: Path, name: str, parts: tuple[str, str, str, str]
) -> None:
    models = _models_dir(tmp_path)
    info = ob.add_model(models, name)

    store = scan_ollama_store(models)

    assert store.exists and store.warnings == () and store.orphans_known
    (model,) = store.models
    assert model.name == name
    assert (model.host, model.namespace, model.model, model.tag) == parts
    assert model.manifest_path == info.path
    assert model.manifest_digest == hashlib.sha256(info.path.read_bytes()).hexdigest()
    assert model.manifest_digest == info.digest
    assert model.status == "ok" and model.problems == ()


def test_layers_config_and_total_size(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    layers = [
        ("model", GGUF),
        ("projector", b"GGUF projector bytes"),
        ("template", b"{{ .Prompt }}"),
        ("params", b'{"temperature":0.1}'),
        ("license", b"Apache-2.0\n"),
    ]
    info = ob.add_model(models, "llava:13b", layers)

    model = _only(scan_ollama_store(models), "llava:13b")

    assert [layer.kind for layer in model.layers] == [
        "model",
        "projector",
        "template",
        "params",
        "license",
    ]
    for scanned, blob in zip(model.layers, info.layers, strict=True):
        _expect_layer(scanned, blob, blob.size)
    assert model.config is not None
    _expect_layer(model.config, info.config, info.config.size)
    assert model.config.media_type == ob.CONFIG_MEDIA_TYPE
    assert model.size == info.size == sum(len(d) for _, d in layers) + info.config.size
    model_layer = model.layer("model")
    assert model_layer is not None and model_layer.digest == sha256_hex(GGUF)
    assert model.layer("adapter") is None
    assert model.all_layers == (model.config, *model.layers)


def test_several_models_sorted_and_shared_blobs(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    shared = ("template", b"{{ .Prompt }}")
    ob.add_model(models, "zeta:1", [("model", ob.fake_gguf("z")), shared])
    ob.add_model(models, "alpha:1", [("model", ob.fake_gguf("a")), shared])

    store = scan_ollama_store(models)

    assert [m.name for m in store.models] == ["alpha:1", "zeta:1"]
    assert store.orphans == () and store.partials == () and store.temps == ()


def test_missing_blob_is_broken(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    info = ob.add_model(models, "qwen2.5:7b", [("model", GGUF), ("params", b"{}")])
    weights = info.layer("model")
    assert weights is not None
    ob.remove_blob(models, weights.digest)

    model = _only(scan_ollama_store(models), "qwen2.5:7b")

    assert model.status == "broken"
    (problem,) = model.problems
    assert f"sha256-{weights.hex[:12]}" in problem and "missing" in problem
    layer = model.layer("model")
    assert layer is not None and layer.on_disk is None and not layer.ok


def test_truncated_blob_is_broken(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    info = ob.add_model(models, "qwen2.5:7b", [("model", GGUF), ("params", b"{}")])
    weights = info.layer("model")
    assert weights is not None
    ob.truncate_blob(models, weights.digest, 100)

    model = _only(scan_ollama_store(models), "qwen2.5:7b")

    assert model.status == "broken"
    (problem,) = model.problems
    assert f"sha256-{weights.hex[:12]}" in problem
    assert "100" in problem and str(len(GGUF)) in problem
    layer = model.layer("model")
    assert layer is not None and layer.on_disk == 100 and layer.size == len(GGUF)


def test_missing_config_blob_is_broken(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    info = ob.add_model(models, "m:1", [("model", GGUF)])
    ob.remove_blob(models, info.config.digest)

    model = _only(scan_ollama_store(models), "m:1")

    assert model.status == "broken"
    assert model.config is not None and model.config.on_disk is None
    assert any(f"sha256-{info.config.hex[:12]}" in p for p in model.problems)


def test_partials_temps_and_orphans(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    info = ob.add_model(models, "qwen2.5:7b")
    downloading = ob.write_partial(models, ob.fake_gguf("downloading", 5000), parts=3)
    orphan = ob.add_orphan_blob(models, b"nobody wants me")
    junk = [
        ob.add_junk_file(models, "sha256-123abc"),
        ob.add_junk_file(models, "COPY123456"),
        ob.add_junk_file(models, "split-gguf-xyz", b"j" * 7),
    ]

    store = scan_ollama_store(models)

    assert store.warnings == ()
    assert {f.path for f in store.partials} == {downloading.partial_path, *downloading.part_paths}
    assert len(downloading.part_paths) == 3
    partial_hex = downloading.digest.removeprefix("sha256:")
    assert {f.digest for f in store.partials} == {partial_hex}
    assert all(f.kind == "partial" for f in store.partials)
    big = next(f for f in store.partials if f.path == downloading.partial_path)
    assert big.size == 5000  # pre-sized to the full blob

    assert {f.path for f in store.temps} == set(junk)
    assert all(f.kind == "temp" and f.digest is None for f in store.temps)
    assert {f.path: f.size for f in store.temps}[junk[2]] == 7

    (found,) = store.orphans
    assert (found.path, found.digest, found.size, found.kind) == (
        orphan,
        sha256_hex(b"nobody wants me"),
        len(b"nobody wants me"),
        "orphan",
    )
    # Neither the partial's future blob nor the model's blobs are orphans.
    assert all(info.blob_path(b) not in {f.path for f in store.orphans} for b in info.blobs)


def test_orphan_mtime_is_reported(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    path = ob.add_orphan_blob(models, b"old", age=7200)
    (orphan,) = scan_ollama_store(models).orphans
    assert orphan.mtime == pytest.approx(path.stat().st_mtime)


def test_unparseable_manifest_hides_orphans(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    ob.add_model(models, "good:1")
    ob.add_orphan_blob(models, b"would be an orphan")
    bad = ob.write_unparseable_manifest(models, "broken:latest")

    store = scan_ollama_store(models)

    assert [m.name for m in store.models] == ["good:1"]
    assert not store.orphans_known
    assert store.orphans == ()
    assert any(str(bad) in w for w in store.warnings)
    assert any("orphan" in w for w in store.warnings)


@pytest.mark.parametrize(
    "content",
    [b"not json at all", b'{"schemaVersion":2,"layers":"nope"}', b"[1, 2]"],
    ids=["garbage", "layers-not-list", "json-list"],
)
def test_manifest_shapes_that_are_not_manifests(tmp_path: Path, content: bytes) -> None:
    models = _models_dir(tmp_path)
    ob.add_orphan_blob(models, b"x")
    ob.write_unparseable_manifest(models, "odd:1", content)
    store = scan_ollama_store(models)
    assert store.models == () and not store.orphans_known and store.orphans == ()
    assert len(store.warnings) == 2


def test_bad_layer_digest_is_unparseable(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    raw = ob.compact_json(
        {
            "schemaVersion": 2,
            "config": {"mediaType": ob.CONFIG_MEDIA_TYPE, "digest": "sha256:abc", "size": 2},
            "layers": [],
        }
    )
    ob.write_unparseable_manifest(models, "short:1", raw)
    store = scan_ollama_store(models)
    assert store.models == () and not store.orphans_known
    assert any("bad layer digest" in w for w in store.warnings)


def test_legacy_colon_blob_names_count_as_blobs(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    params = b'{"stop":["x"]}'
    info = ob.add_model(models, "old:1", [("model", GGUF), ("params", params)])
    weights = info.layer("model")
    assert weights is not None
    # The model blob exists only under its pre-rename name sha256:<hex>.
    ob.remove_blob(models, weights.digest)
    legacy = ob.add_legacy_blob(models, GGUF)
    assert legacy.name == f"sha256:{weights.hex}"
    stray = ob.add_legacy_blob(models, b"legacy orphan")

    store = scan_ollama_store(models)

    model = _only(store, "old:1")
    assert model.status == "ok"
    layer = model.layer("model")
    assert layer is not None and layer.on_disk == len(GGUF)
    assert store.temps == ()
    assert [(f.path, f.digest) for f in store.orphans] == [(stray, sha256_hex(b"legacy orphan"))]


def test_missing_store(tmp_path: Path) -> None:
    store = scan_ollama_store(tmp_path / "nowhere")
    assert not store.exists and store.models == () and store.warnings == ()
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert not scan_ollama_store(a_file).exists


def test_empty_store_without_blobs_or_manifests(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    models.mkdir()
    store = scan_ollama_store(models)
    assert store.exists and store.models == () and store.warnings == () and store.orphans_known


def test_stray_files_under_manifests_are_ignored(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    info = ob.add_model(models, "qwen2.5:7b")
    manifests = models / "manifests"
    shallow = manifests / "registry.ollama.ai" / "library" / "README"
    shallow.write_text("three levels deep")
    (manifests / "top-level-file").write_text("one level")
    deep = manifests / "registry.ollama.ai" / "library" / "qwen2.5" / "dir" / "extra"
    deep.parent.mkdir()
    deep.write_bytes(info.raw)  # five levels: not a manifest even with manifest content
    dotfile = info.path.with_name(".DS_Store")
    dotfile.write_bytes(b"\0\0")

    store = scan_ollama_store(models)

    assert [m.name for m in store.models] == ["qwen2.5:7b"]
    assert store.warnings == () and store.orphans_known


def test_dangling_symlink_in_blobs_is_a_warning(tmp_path: Path) -> None:
    models = _models_dir(tmp_path)
    info = ob.add_model(models, "m:1", [("model", GGUF)])
    weights = info.layer("model")
    assert weights is not None
    target = tmp_path / "elsewhere.gguf"
    target.write_bytes(GGUF)
    ob.link_blob(models, weights.digest, target)
    assert scan_ollama_store(models).models[0].status == "ok"  # a symlinked blob is followed

    target.unlink()
    store = scan_ollama_store(models)
    assert any("dangling" in w and weights.hex in w for w in store.warnings)
    assert store.models[0].status == "broken"
