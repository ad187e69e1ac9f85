"""The standard prompt set and the prompts' identity (sha256)."""

from __future__ import annotations

import hashlib

from mlxstate.bench.prompts import STANDARD_NAME, prompt_set, prompts_sha256, standard_prompts

# Changing a standard prompt changes this: release it as a new version instead.
STANDARD_V1_SHA256 = "86eae9b30ff85daf67ada76438b6bc196bd7af7e7263f432aa69da9ea14aa80a"


def test_standard_set_is_ten_prompts_of_mixed_length() -> None:
    prompts = standard_prompts()
    words = [len(p.split()) for p in prompts]
    assert len(prompts) == 10 and len(set(prompts)) == 10
    assert min(words) < 15  # short chat
    assert sum(1 for w in words if w > 1000) == 2  # long context: ~1.5k tokens each
    assert all(w < 1600 for w in words)
    assert any("def " in p for p in prompts)  # code
    assert prompt_set("standard").name == STANDARD_NAME == "standard-v1"


def test_sha256_is_over_a_canonical_encoding() -> None:
    assert prompts_sha256(["a", "b"]) == hashlib.sha256(b'["a","b"]').hexdigest()
    assert prompts_sha256(["é"]) == hashlib.sha256('["é"]'.encode()).hexdigest()
    assert prompts_sha256(["a", "b"]) != prompts_sha256(["b", "a"])
    custom = prompt_set(["hello", "write a haiku"])
    assert custom.name == "custom" and custom.sha256 == prompts_sha256(["hello", "write a haiku"])
    assert custom.sha256 != STANDARD_V1_SHA256


def test_standard_v1_never_changes() -> None:
    assert prompts_sha256(standard_prompts()) == STANDARD_V1_SHA256
