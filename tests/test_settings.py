from pathlib import Path

import pytest

from mlxstate.mlxyaml.models import SettingsSpec
from mlxstate.settings import Environment, normalize_ollama_host, resolve, spec_candidates


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "http://127.0.0.1:11434"),
        ("0.0.0.0", "http://0.0.0.0:11434"),
        ("example.com:8080", "http://example.com:8080"),
        ("http://example.com", "http://example.com:80"),
        ("https://example.com", "https://example.com:443"),
        ("https://example.com:9/", "https://example.com:9"),
        ("[::1]:11434", "http://[::1]:11434"),
        ("ftp://nope", "http://127.0.0.1:11434"),  # like Ollama: a bad env value falls back
    ],
)
def test_ollama_host_normalised_like_ollama(value: str, expected: str) -> None:
    assert normalize_ollama_host(value) == expected


def test_strict_host_rejects_what_env_tolerates() -> None:
    with pytest.raises(ValueError, match="expected http"):
        normalize_ollama_host("ftp://nope", strict=True)


def test_defaults_follow_home(isolated_env: Path) -> None:
    env = Environment.from_mapping({"HOME": str(isolated_env)})
    settings = resolve(None, env)
    assert settings.ollama_models_dir == isolated_env / ".ollama" / "models"
    assert settings.hf_cache_dir == isolated_env / ".cache" / "huggingface" / "hub"
    assert settings.ollama_host == "http://127.0.0.1:11434"
    assert settings.min_free == 10_000_000_000
    assert settings.dedup == "off" and settings.prune is False
    assert settings.cleanup.dangling_links is True and settings.cleanup.orphans is False


def test_hf_cache_precedence(tmp_path: Path) -> None:
    base = {"HOME": str(tmp_path)}
    xdg = Environment.from_mapping({**base, "XDG_CACHE_HOME": "/x"})
    assert xdg.hf_cache_dir() == Path("/x/huggingface/hub")
    home = Environment.from_mapping({**base, "XDG_CACHE_HOME": "/x", "HF_HOME": "/h"})
    assert home.hf_cache_dir() == Path("/h/hub")
    hub = Environment.from_mapping({**base, "HF_HOME": "/h", "HF_HUB_CACHE": "/c"})
    assert hub.hf_cache_dir() == Path("/c")


def test_spec_settings_beat_environment(tmp_path: Path) -> None:
    env = Environment.from_mapping(
        {"HOME": str(tmp_path), "OLLAMA_MODELS": "/env/ollama", "OLLAMA_HOST": "h:1"}
    )
    spec = SettingsSpec.model_validate(
        {"ollama": {"models_dir": "/spec/ollama", "host": "other:2"}, "disk": {"min_free": "1GiB"}},
        context={"base_dir": tmp_path},
    )
    settings = resolve(spec, env)
    assert settings.ollama_models_dir == Path("/spec/ollama")
    assert settings.ollama_host == "http://other:2"
    assert settings.min_free == 2**30
    assert resolve(None, env).ollama_models_dir == Path("/env/ollama")
    assert resolve(None, env).ollama_host == "http://h:1"


def test_state_dir_honours_spec_then_xdg(tmp_path: Path) -> None:
    env = Environment.from_mapping({"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "st")})
    assert resolve(None, env).state_dir == tmp_path / "st" / "mlxstate"
    spec = SettingsSpec.model_validate({"state_dir": "~/s"})
    assert resolve(spec, env).state_dir == Path.home() / "s"


def test_spec_candidates_order(tmp_path: Path) -> None:
    env = Environment.from_mapping(
        {"HOME": str(tmp_path), "XDG_CONFIG_HOME": "/cfg", "MLX_FILE": "/m/mlx.yaml"}
    )
    assert spec_candidates(env) == [
        Path("/m/mlx.yaml"),
        Path("mlx.yaml"),
        Path("/cfg/mlx/mlx.yaml"),
    ]


def test_debug_flag_words() -> None:
    assert Environment.from_mapping({"MLX_DEBUG": "1"}).debug
    assert not Environment.from_mapping({"MLX_DEBUG": "0"}).debug
    assert not Environment.from_mapping({}).debug


def test_the_token_variable_is_read_through_the_environment_and_never_shown() -> None:
    from mlxstate.settings import Environment, resolve

    env = Environment.from_mapping({"MY_HF": "hf_secretsecretsecretsecret1234"})
    settings = resolve(None, env)
    assert settings.hf_token is None  # the default variable, HF_TOKEN, is not set
    named = resolve(None, env).__class__(**{**settings.__dict__, "hf_token_env": "MY_HF"})
    assert named.hf_token == "hf_secretsecretsecretsecret1234"
    assert "secret" not in repr(env) and "snapshot" not in env.model_dump()


@pytest.mark.parametrize(
    "value", ["http://me:s3cret@example:99999", "ftp://me:s3cret@host", "http://me:s3@cret@h:1:2"]
)
def test_a_bad_host_is_reported_without_its_password(value: str) -> None:
    with pytest.raises(ValueError) as caught:
        normalize_ollama_host(value, strict=True)
    assert "s3cret" not in str(caught.value) and "cret" not in str(caught.value)
    assert "me:***@" in str(caught.value)
