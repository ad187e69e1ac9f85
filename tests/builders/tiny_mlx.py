"""A tiny random llama-architecture MLX model, cached in a Hugging Face hub cache exactly as
``snapshot_download`` leaves it (:mod:`tests.builders.hf_cache`), so mlx-lm loads it for real.

- ``config.json``: model_type llama, hidden size 64, 2 layers, 4 heads, the tokenizer's vocab.
- ``model.safetensors``: the seeded random initialisation of mlx-lm's own llama ``Model``,
  written with ``mx.save_safetensors`` (the layout mlx-lm's ``load`` reads back).
- ``tokenizer.json`` + ``tokenizer_config.json``: a byte-level BPE tokenizer trained with
  ``tokenizers`` on a few paragraphs, with a minimal chat template.

Needs the ``mlx`` extra and the dev dependency ``tokenizers``; callers skip when missing.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.builders.hf_cache import CachedRevision, add_revision

DEFAULT_REPO = "mlx-test/tiny-llama-mlx"
HIDDEN_SIZE = 64
LAYERS = 2
HEADS = 4
CONTEXT_LENGTH = 2048
EOS = "</s>"
BOS = "<s>"

CORPUS = (
    "Local language models run on the machine in front of you. They answer questions, "
    "summarise documents and write code without sending a byte to anyone else.",
    "A benchmark measures how fast a model reads a prompt and how fast it writes tokens. "
    "The median of several runs is steadier than any single run, and warm runs differ "
    "from cold ones because loading the weights takes time.",
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n"
    "    return a\n",
    "The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs. "
    "How vexingly quick daft zebras jump! Sphinx of black quartz, judge my vow.",
    "Declarative configuration says what should exist; the tool works out how to get there. "
    "Plans are shown before anything changes, and nothing is deleted that was not owned.",
)

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)


@dataclass(frozen=True)
class TinyMlxModel:
    """The cached model: ``revision.snapshot_dir`` is the folder mlx-lm loads."""

    cache_dir: Path
    repo_id: str
    revision: CachedRevision
    config: dict[str, object]

    @property
    def snapshot_dir(self) -> Path:
        return self.revision.snapshot_dir

    @property
    def commit(self) -> str:
        return self.revision.commit


def tokenizer_files(vocab_size: int = 384) -> dict[str, bytes]:
    """``tokenizer.json`` and ``tokenizer_config.json`` of a byte-level BPE tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[BOS, EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(CORPUS), trainer=trainer)
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS,
        "eos_token": EOS,
        "model_max_length": CONTEXT_LENGTH,
        "chat_template": CHAT_TEMPLATE,
    }
    return {
        "tokenizer.json": tokenizer.to_str().encode(),
        "tokenizer_config.json": json.dumps(config, indent=2).encode(),
    }


def model_config(vocab_size: int, eos_token_id: int, bos_token_id: int) -> dict[str, object]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN_SIZE,
        "intermediate_size": 4 * HIDDEN_SIZE,
        "num_hidden_layers": LAYERS,
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "rms_norm_eps": 1e-5,
        "vocab_size": vocab_size,
        "max_position_embeddings": CONTEXT_LENGTH,
        "rope_theta": 10000.0,
        "tie_word_embeddings": True,
        "bos_token_id": bos_token_id,
        "eos_token_id": eos_token_id,
    }


def weights_file(config: dict[str, object], seed: int) -> bytes:
    """``model.safetensors``: mlx-lm's llama ``Model`` initialised from ``seed``."""
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models import llama

    mx.random.seed(seed)
    from_dict: Any = llama.ModelArgs.from_dict  # untyped in mlx-lm
    model = llama.Model(from_dict(config))
    weights = dict(tree_flatten(model.parameters()))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder, "model.safetensors")
        mx.save_safetensors(str(path), weights, metadata={"format": "mlx"})
        return path.read_bytes()


def model_files(*, seed: int = 0, quantization: dict[str, int] | None = None) -> dict[str, bytes]:
    """Every file of the repo. ``quantization`` only goes into config.json (the identity the
    engine reports); the weights stay full precision."""
    files = tokenizer_files()
    vocab = json.loads(files["tokenizer.json"])["model"]["vocab"]
    config = model_config(len(vocab), vocab[EOS], vocab[BOS])
    files["model.safetensors"] = weights_file(config, seed)
    if quantization is not None:
        config = {**config, "quantization": quantization}
    files["config.json"] = json.dumps(config, indent=2).encode()
    return files


def add_tiny_mlx_model(
    cache_dir: Path,
    repo_id: str = DEFAULT_REPO,
    *,
    seed: int = 0,
    files: dict[str, bytes] | None = None,
) -> TinyMlxModel:
    """Cache the tiny model (or ``files`` from :func:`model_files`) as ``repo_id``."""
    files = model_files(seed=seed) if files is None else files
    revision = add_revision(cache_dir, repo_id, files)
    config = json.loads(files["config.json"])
    return TinyMlxModel(Path(cache_dir), repo_id, revision, config)
