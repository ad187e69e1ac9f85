"""Build a large, sparse model environment for benchmarks.

    uv run python benchmarks/make_env.py DIR [--repos 300] [--files 60] [--ollama 200]

Writes, under DIR/home: an HF hub cache with REPOS model repos of FILES files each (five
1 GiB SPARSE weight files per repo, the rest small JSON/text in nested folders, relative
snapshot symlinks, a trees/<commit>.json per revision), an Ollama store with OLLAMA models
(a sparse 1 GiB model blob + small layers each, real manifests), and an LM Studio folder
with symlinks to a third of the Ollama model blobs. Blob names are random digests (content
hashes would need the bytes); a few HF blobs reuse Ollama digests so duplicates exist.
Sparse files take almost no disk: the tree costs a few MB however large it claims to be.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
from pathlib import Path

GIB = 1 << 30
rng = random.Random(42)


def hexd(n: int = 64) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def sparse(path: Path, size: int) -> None:
    with open(path, "wb") as fh:
        fh.truncate(size)


def make_repo(cache: Path, index: int, files: int, shared: list[str]) -> None:
    repo = cache / f"models--bench-org--model-{index:04d}"
    commit = hexd(40)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    blobs = repo / "blobs"
    blobs.mkdir()
    snap = repo / "snapshots" / commit
    tree: dict[str, dict[str, object]] = {}
    for i in range(files):
        if i < 5:
            rel, size = f"model-{i:05d}-of-00005.safetensors", GIB
            etag = shared.pop() if (i == 0 and shared) else hexd(64)
        else:
            rel, size = f"extra/{i % 7}/file-{i:03d}.json", 200 + i
            etag = hexd(40)
        blob = blobs / etag
        if size >= GIB:
            sparse(blob, size)
        else:
            blob.write_bytes(b"{" + b" " * (size - 2) + b"}")
        link = snap / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        depth = rel.count("/")
        os.symlink("../" * (2 + depth) + f"blobs/{etag}", link)
        entry: dict[str, object] = {"size": size, "blob_id": hexd(40)}
        if len(etag) == 64:
            entry.update(lfs_sha256=etag, lfs_size=size)
        tree[rel] = entry
    (repo / "trees").mkdir()
    (repo / "trees" / f"{commit}.json").write_text(json.dumps({"format_version": 1, "files": tree}))


def make_ollama(root: Path, count: int) -> list[str]:
    blobs = root / "blobs"
    blobs.mkdir(parents=True)
    model_digests = []
    for i in range(count):
        layers = []
        digest = hexd(64)
        sparse(blobs / f"sha256-{digest}", GIB)
        model_digests.append(digest)
        layers.append(("model", digest, GIB))
        for kind in ("license", "template", "params"):
            data = f"{kind} {i}".encode()
            d = hashlib.sha256(data).hexdigest()
            (blobs / f"sha256-{d}").write_bytes(data)
            layers.append((kind, d, len(data)))
        config = json.dumps({"model_format": "gguf", "model_family": "llama"}).encode()
        cd = hashlib.sha256(config).hexdigest()
        (blobs / f"sha256-{cd}").write_bytes(config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": f"sha256:{cd}",
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": f"application/vnd.ollama.image.{k}",
                    "digest": f"sha256:{d}",
                    "size": s,
                }
                for k, d, s in layers
            ],
        }
        path = root / "manifests" / "registry.ollama.ai" / "library" / f"model{i:03d}" / "7b"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest, separators=(",", ":")))
    return model_digests


def make_lmstudio(root: Path, ollama_blobs: Path, digests: list[str]) -> None:
    for i, digest in enumerate(digests):
        folder = root / "library" / f"model{i:03d}-7b"
        folder.mkdir(parents=True)
        os.symlink(ollama_blobs / f"sha256-{digest}", folder / f"model{i:03d}-7b.gguf")


def write_spec(path: Path, ollama: int, repos: int, missing: int = 10) -> None:
    """An mlx.yaml declaring a third of what is installed, plus ``missing`` that are not."""
    lines = ["version: 1", "settings:", "  disk: {min_free: 0}", "models:"]
    for i in range(ollama // 3):
        lines += [f"  ollama-{i:03d}:", f"    source: ollama://model{i:03d}:7b"]
    for i in range(repos // 3):
        lines += [f"  hf-{i:04d}:", f"    source: hf://bench-org/model-{i:04d}"]
    for i in range(missing):
        lines += [f"  missing-{i}:", f"    source: ollama://not-here-{i}:7b"]
    path.write_text("\n".join(lines) + "\n")


def make_big_repo(base: Path, files: int) -> Path:
    """``base``/home with one HF repo of ``files`` files and ``base``/mlx.yaml declaring it
    (planning must stay linear in the files of one repo). Returns ``base``."""
    cache = base / "home" / ".cache" / "huggingface" / "hub"
    if not cache.exists():
        cache.mkdir(parents=True)
        make_repo(cache, 0, files, [])
        spec = ["version: 1", "settings:", "  disk: {min_free: 0}", "models:"]
        spec += ["  big:", "    source: hf://bench-org/model-0000"]
        (base / "mlx.yaml").write_text("\n".join(spec) + "\n")
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--repos", type=int, default=300)
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--ollama", type=int, default=200)
    args = parser.parse_args()
    home = args.dir.resolve() / "home"
    if home.exists():
        raise SystemExit(f"{home} exists; pick an empty folder")
    ollama = home / ".ollama" / "models"
    digests = make_ollama(ollama, args.ollama)
    cache = home / ".cache" / "huggingface" / "hub"
    cache.mkdir(parents=True)
    shared = list(digests[:20])  # 20 GGUFs also cached by HF: duplicates found by name
    for i in range(args.repos):
        make_repo(cache, i, args.files, shared)
    make_lmstudio(home / ".lmstudio" / "models", ollama / "blobs", digests[: args.ollama // 3])
    write_spec(args.dir.resolve() / "mlx.yaml", args.ollama, args.repos)
    n_files = args.repos * args.files
    print(f"built {home}: {args.repos} HF repos / {n_files} files, {args.ollama} Ollama models")
    print(f"try: HOME={home} uv run mlx status; HOME={home} uv run mlx plan -f {args.dir}/mlx.yaml")


if __name__ == "__main__":
    main()
