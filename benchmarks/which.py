"""`mlx which` / `mlxstate.api.resolve` benchmark on the large environment of make_env.py
(300 HF repos / 18,000 files, 200 Ollama models; mlx.yaml declares 110 models).

Resolving one model reads mlx.yaml and only that model (one manifest and a stat per blob,
or one repo folder), so its floors are: in process, reading the same files with no
validation (mlx.yaml's bytes, the manifest or the snapshot listing, a stat each); as a
command, `mlx validate` of the same mlx.yaml (the imports and parsing any command that
reads mlx.yaml pays) and a fresh interpreter reading the same files.

    uv run python benchmarks/which.py [--runs 15] [--keep DIR]

Targets on a 2-core machine: resolve < 50 ms in process, `mlx which` < 0.2 s a command.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import arguments, large_env, line, mlx_env, ratio, timed

# Run in a child with HOME pointing at the environment: the warm in-process times of
# resolve() and of the bare reads it needs, as JSON.
_IN_PROCESS = r"""
import json, os, sys, time
from pathlib import Path
spec, runs = Path(sys.argv[1]), int(sys.argv[2])
names = sys.argv[3:]
home = Path(os.environ["HOME"])
manifest = home / ".ollama/models/manifests/registry.ollama.ai/library/model000/7b"
snapshots = home / ".cache/huggingface/hub/models--bench-org--model-0000/snapshots"

def floor_ollama():
    spec.read_bytes()
    doc = json.loads(manifest.read_bytes())
    for layer in [doc["config"], *doc["layers"]]:
        os.stat(home / ".ollama/models/blobs" / layer["digest"].replace(":", "-"))

def floor_hf():
    spec.read_bytes()
    for snap in os.scandir(snapshots):
        for e in os.scandir(snap.path):
            os.stat(e.path)

def timed(fn):
    fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter(); fn(); out.append(time.perf_counter() - t)
    return out

start = time.perf_counter()
from mlxstate.api import resolve
first = resolve(names[0], spec)
result = {"first_call": time.perf_counter() - start, "present": first.present}
from mlxstate.engine import Session
for name in names:
    result[name] = timed(lambda: resolve(name, spec))
    result["parse " + name] = timed(lambda: Session.from_environment(spec).resolve(name))
result["floor_ollama"] = timed(floor_ollama)
result["floor_hf"] = timed(floor_hf)
print(json.dumps(result))
"""

_READ_FLOOR = r"""
import json, os, sys
from pathlib import Path
Path(sys.argv[1]).read_bytes()
root = Path(os.environ["HOME"]) / ".ollama/models"
doc = json.loads((root / "manifests/registry.ollama.ai/library/model000/7b").read_bytes())
for layer in [doc["config"], *doc["layers"]]:
    os.stat(root / "blobs" / layer["digest"].replace(":", "-"))
"""


def main() -> None:
    args = arguments(__doc__ or "", 15)
    base = large_env(args.keep)
    spec = base / "mlx.yaml"
    env = mlx_env(base / "home")
    mlx = [sys.executable, "-m", "mlxstate"]
    names = ["ollama-000", "hf-0000"]
    child = [sys.executable, "-c", _IN_PROCESS, str(spec), str(args.runs), *names]
    warm = json.loads(subprocess.run(child, env=env, capture_output=True, check=True).stdout)

    def run(argv: list[str]) -> None:
        subprocess.run(argv, env=env, capture_output=True, check=True)

    which = [*mlx, "which", "-f", str(spec), "ollama-000", "--json"]
    t_which = timed(lambda: run(which), args.runs)
    t_which_hf = timed(lambda: run([*mlx, "which", "-f", str(spec), "hf-0000"]), args.runs)
    t_validate = timed(lambda: run([*mlx, "validate", "-f", str(spec)]), args.runs)
    t_floor = timed(lambda: run([sys.executable, "-c", _READ_FLOOR, str(spec)]), args.runs)

    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    print(f"# {args.runs} runs each (after a warm-up); seconds")
    print(f"{'':<44} {'median':>8} {'min':>8} {'max':>8} {'/floor':>7}")
    print("in process (warm):")
    print(line("  read the same files (floor, Ollama)", warm["floor_ollama"]))
    print(
        line("  resolve('ollama-000')", warm["ollama-000"]),
        ratio(warm["ollama-000"], warm["floor_ollama"]),
    )
    print(line("  read the same files (floor, HF)", warm["floor_hf"]))
    print(line("  resolve('hf-0000')", warm["hf-0000"]), ratio(warm["hf-0000"], warm["floor_hf"]))
    parsing = warm["parse ollama-000"]
    print(
        line("  resolve, mlx.yaml parsed every time", parsing), ratio(parsing, warm["floor_ollama"])
    )
    print(f"  first resolve() in a fresh process, imports included: {warm['first_call']:.3f}")
    print("whole process:")
    print(line("  python reading the same files (floor)", t_floor))
    print(line("  mlx validate -f mlx.yaml", t_validate), ratio(t_validate, t_floor))
    print(line("  mlx which ollama-000 --json", t_which), ratio(t_which, t_floor))
    print(line("  mlx which hf-0000", t_which_hf), ratio(t_which_hf, t_floor))
    print(f"which / validate (median): {ratio(t_which, t_validate)}")


if __name__ == "__main__":
    main()
