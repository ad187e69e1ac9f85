"""The deduplication tests' world: one GGUF in three places (the Ollama store, the HF cache
and a declared app folder), and the plan mlx makes for it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlxstate.mlxyaml.load import load_spec
from mlxstate.observe.scan import observe
from mlxstate.plan.actions import Action, Plan
from mlxstate.plan.planner import make_plan
from mlxstate.registry import RegistryFacts
from mlxstate.settings import read_environment, resolve
from tests.builders import hf_cache as hb
from tests.builders import ollama_store as ob
from tests.helpers import hf_dir, ollama_dir

GGUF = ob.fake_gguf("dedup-weights", 64_000)
QWEN = "qwen:7b"
REPO = "org/qwen-GGUF"


def app_dir() -> Path:
    return Path(os.environ["HOME"]) / "apps" / "myapp"


@dataclass(frozen=True)
class Copies:
    ollama: Path  # blobs/sha256-<hex>: the copy dedup keeps
    hf: Path  # the HF LFS blob (blobs/<sha256>)
    app: Path  # a plain copy in the declared app folder
    snapshot: Path  # the HF snapshot link to ``hf``

    @property
    def all(self) -> tuple[Path, Path, Path]:
        return (self.ollama, self.hf, self.app)


def make_copies(data: bytes = GGUF, *, xet: bool = False) -> Copies:
    info = ob.add_model(ollama_dir(), QWEN, [("model", data), ("params", b"{}")])
    layer = info.layer("model")
    assert layer is not None
    rev = hb.add_revision(
        hf_dir(),
        REPO,
        {"qwen.gguf": data, "config.json": b"{}"},
        lfs={"qwen.gguf"},
        xet={"qwen.gguf"} if xet else (),
    )
    app = app_dir() / "qwen-copy.gguf"
    app.parent.mkdir(parents=True, exist_ok=True)
    app.write_bytes(data)
    hf = rev.files["qwen.gguf"]
    return Copies(info.blob_path(layer), hf.blob_path, app, hf.snapshot_path)


def spec_text(mode: str, app: Path | None = None) -> str:
    return (
        f"version: 1\nsettings:\n  dedup: {mode}\n"
        f"apps:\n  myapp:\n    path: {app or app_dir()}\n    models: []\n"
    )


def write_spec(mode: str) -> Path:
    path = Path("mlx.yaml")
    path.write_text(spec_text(mode))
    return path.resolve()


def make_plan_for(mode: str) -> Plan:
    """``mlx plan`` without the CLI: load, observe (duplicates always), plan."""
    env = read_environment()
    loaded = load_spec(write_spec(mode), env)
    settings_ = resolve(loaded.spec.settings, env)
    observed = observe(settings_, loaded.spec, probe=False, duplicates=True)
    return make_plan(loaded.spec, observed, RegistryFacts())


def dedups(plan: Plan) -> list[Action]:
    return [a for a in plan.actions if a.kind == "dedup.link"]
