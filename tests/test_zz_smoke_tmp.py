import os
from pathlib import Path
from tests.helpers import mlx
from tests.builders.ollama_store import default_layers

def test_smoke(capsys, ollama_server, fake_hub):
    ollama_server.publish("qwen2.5:0.5b", default_layers("q", 2048))
    fake_hub.add_repo("org/tiny", {"config.json": b'{"a":1}\n', "model.safetensors": b"\0"*5000})
    Path("mlx.yaml").write_text("version: 1\nmodels:\n  qwen:\n    source: ollama://qwen2.5:0.5b\n  tiny:\n    source: hf://org/tiny\n")
    r = mlx(capsys, "apply", "-y")
    print("OUT", r.out, "ERR", r.err, r.code)
    r = mlx(capsys, "plan", "--detailed-exitcode")
    print("OUT", r.out, "ERR", r.err, r.code)
    for root, d, f in os.walk(os.environ["HOME"]):
        for x in f: print(os.path.join(root, x))
    assert 0
