"""The MLX engine: ``hf://`` models with MLX weights, through mlx-lm, in this process.

mlx and mlx-lm are the optional ``mlx`` extra, so they are imported inside the methods that
need them: every other command works (and starts fast) without them. The model is loaded
once from the installed revision's snapshot folder — never by repo id, which would let
mlx-lm download — and measured many times with mlx-lm's own counters
(``GenerationResponse.prompt_tps`` / ``generation_tps`` / ``peak_memory``); time to first
token is wall clock from the call to the first response on the stream. The first
generation after the load reports the load time (``load_ms``), so the runner records it as
the run's cold sample, as it does for an Ollama model it had to load.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from mlxstate.bench.engines.base import BenchTarget, EngineError, Loaded, Measurement

__all__ = ["MISSING_EXTRA", "MlxEngine", "MlxSession"]

MISSING_EXTRA = (
    "MLX benchmarks need the mlx extra: uv sync --extra mlx (or pip install 'mlxstate[mlx]')"
)
_BYTES_PER_GB = 1e9  # mlx-lm reports peak_memory as mx.get_peak_memory() / 1e9


@dataclass(frozen=True, slots=True)
class _Modules:
    mx: ModuleType
    mlx_lm: ModuleType
    make_sampler: Any


def _import_mlx() -> _Modules:
    """mlx and mlx-lm, or the one line that says how to install them."""
    try:
        import mlx.core as mx
        import mlx_lm
        from mlx_lm.sample_utils import make_sampler
    except ImportError as exc:
        raise EngineError(MISSING_EXTRA) from exc
    return _Modules(mx, mlx_lm, make_sampler)


def _check_mlx_folder(target: BenchTarget) -> Path:
    """The snapshot folder, if it holds an MLX model: config.json and model*.safetensors
    (what mlx-lm's loader reads). A GGUF-only or PyTorch-only repo is not one."""
    folder = target.path
    if folder is None or not folder.is_dir():
        raise EngineError(f"{target.source} is not installed here: run mlx apply first")
    if not (folder / "config.json").is_file():
        raise EngineError(f"{target.source} is not an MLX model: it has no config.json")
    if not any(folder.glob("model*.safetensors")):
        found = "GGUF" if any(folder.glob("*.gguf")) else "no"
        raise EngineError(
            f"{target.source} is not an MLX model: {found} weights, no model*.safetensors"
        )
    return folder


def _first_line(exc: BaseException) -> str:
    from mlxstate.text import printable

    text = str(exc).strip()
    return printable(text.splitlines()[0])[:200] if text else type(exc).__name__


def _identity(target: BenchTarget, config: dict[str, Any], parameters: int) -> dict[str, Any]:
    quantization = config.get("quantization")
    quant: str | None = None
    if isinstance(quantization, dict) and "bits" in quantization:
        quant = f"{quantization['bits']}-bit"
        if "group_size" in quantization:
            quant += f" (group size {quantization['group_size']})"
    context = config.get("max_position_embeddings")
    text_config = config.get("text_config")
    if context is None and isinstance(text_config, dict):
        context = text_config.get("max_position_embeddings")
    return {
        "revision": target.revision,
        "quantization": quant,
        "parameter_size": _human_count(parameters),
        "parameter_count": parameters,
        "context_length": context if isinstance(context, int) else None,
    }


def _human_count(count: int) -> str:
    """``7615616512`` -> ``7.6B``, as Ollama writes parameter sizes."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.1f}{suffix}"
    return str(count)


def _parameter_count(model: Any) -> int:
    from mlx.utils import tree_flatten

    flat: Any = tree_flatten(model.parameters())  # [(name, array), ...]
    return sum(int(array.size) for _, array in flat)


@dataclass
class MlxSession:
    """One model loaded by mlx-lm; :meth:`generate` measures one greedy generation."""

    loaded: Loaded
    _modules: _Modules
    _model: Any
    _tokenizer: Any
    _sampler: Any = field(default=None)
    _load_ms: float = 0.0  # reported by the first generation only: it is the cold one

    def generate(self, prompt: str, *, max_tokens: int, seed: int) -> Measurement:
        mx, mlx_lm = self._modules.mx, self._modules.mlx_lm
        load_ms, self._load_ms = self._load_ms, 0.0
        mx.random.seed(seed)
        mx.reset_peak_memory()  # the peak of this generation, not of the whole process
        pieces: list[str] = []
        ttft_ms: float | None = None
        last: Any = None
        start = time.perf_counter()
        try:
            for response in mlx_lm.stream_generate(
                self._model, self._tokenizer, prompt, max_tokens=max_tokens, sampler=self._sampler
            ):
                if ttft_ms is None:
                    ttft_ms = (time.perf_counter() - start) * 1000
                pieces.append(response.text)
                last = response
        except Exception as exc:  # mlx raises RuntimeError and more: this run fails, not mlx
            raise EngineError(f"mlx-lm failed to generate: {_first_line(exc)}") from exc
        if last is None or ttft_ms is None:
            raise EngineError("mlx-lm generated nothing for the prompt")
        return Measurement(
            ttft_ms=ttft_ms,
            prompt_tokens=int(last.prompt_tokens),
            prompt_tps=float(last.prompt_tps),
            gen_tokens=int(last.generation_tokens),
            gen_tps=float(last.generation_tps),
            load_ms=load_ms,
            peak_memory_bytes=round(last.peak_memory * _BYTES_PER_GB),
            text="".join(pieces),
        )


class MlxEngine:
    """The ``mlx`` engine of ``mlx bench``."""

    name = "mlx"

    def version(self) -> str | None:
        return str(_import_mlx().mlx_lm.__version__)

    def conditions(self) -> dict[str, Any]:
        return {}  # in-process: nothing else is loaded that the engine knows of

    @contextmanager
    def load(self, target: BenchTarget) -> Iterator[MlxSession]:
        modules = _import_mlx()
        folder = _check_mlx_folder(target)
        start = time.perf_counter()
        try:
            model, tokenizer = modules.mlx_lm.load(str(folder))
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        # A truncated safetensors file is a RuntimeError from mlx, a config.json that is a
        # list an AttributeError from mlx-lm...: any of them fails this run with one line.
        except Exception as exc:
            raise EngineError(f"mlx-lm cannot load {target.source}: {_first_line(exc)}") from exc
        load_ms = (time.perf_counter() - start) * 1000
        if not isinstance(config, dict):
            config = {}
        identity = _identity(target, config, _parameter_count(model))
        identity["load_ms"] = round(load_ms, 3)
        sampler = modules.make_sampler(temp=0.0)  # greedy: the same prompt, the same text
        try:
            yield MlxSession(Loaded(identity), modules, model, tokenizer, sampler, load_ms)
        finally:
            del model, tokenizer
            modules.mx.clear_cache()
