import os, sys, subprocess, time
from pathlib import Path
from tests.helpers import mlx
from tests.builders.ollama_store import default_layers

def test_smoke(capsys, ollama_server, fake_hub):
    ollama_server.publish("qwen2.5:0.5b", default_layers("q", 2048))
    fake_hub.add_repo("org/tiny", {"config.json": b'{"a":1}\n', "model.safetensors": b"\0"*5000})
    Path("mlx.yaml").write_text("version: 1\nmodels:\n  qwen:\n    source: ollama://qwen2.5:0.5b\n  tiny:\n    source: hf://org/tiny\n")
    env = dict(os.environ, HF_HUB_DISABLE_TELEMETRY="1")
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "mlxstate", "apply", "-y", "-f", "mlx.yaml"], env=env, capture_output=True, text=True)
    print("T", time.monotonic() - t, p.returncode, p.stdout, p.stderr)
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "mlxstate", "apply", "-y", "-f", "mlx.yaml"], env=dict(env, MLX_FAILPOINT="lock.taken"), capture_output=True, text=True)
    print("T", time.monotonic() - t, p.returncode, p.stdout, p.stderr)
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-m", "mlxstate", "apply", "-y", "-f", "mlx.yaml"], env=env, capture_output=True, text=True)
    print("T", time.monotonic() - t, p.returncode, p.stdout, p.stderr)
    assert 0
