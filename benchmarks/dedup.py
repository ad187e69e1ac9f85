"""Dedup benchmark: real duplicate bytes reclaimed by `mlx apply`, verification
hashing throughput, and proof that planning dedup on a large store reads no file contents.

    uv run python benchmarks/dedup.py [--gb 20] [--files 5] [--mode auto] [--dir DIR]
                                      [--keep DIR] [--skip-sparse] [--skip-real]

1. Real duplicates. Under a fresh folder in --dir (default: the system temp folder) it writes
   FILES random files of GB/FILES gigabytes (10^9 bytes) each, three times: as Ollama model
   blobs (``blobs/sha256-<hex>``, one model per file), as the LFS blobs of one HF repo
   (``blobs/<sha256>`` + snapshot links) and as plain copies in a declared app folder — the
   sha256 computed while writing, so every blob is named by its real digest. That is 3 x GB
   on disk, 2 x GB of duplicates. It refuses to start without that much free space plus a
   margin. Then: `mlx plan` (what it proposes), `mlx apply -y` (timed), `mlx plan
   --detailed-exitcode` (must say no changes), bytes reclaimed (unique-inode disk usage
   before and after, and the filesystem's free space), every path re-verified against its
   digest, and the folder removed.
   Hashing: apply re-hashes both files of every dedup (two threads: one per file), a kept
   copy only once however many duplicates link to it. Its throughput per core (bytes hashed
   in dedup actions / the actions' journaled time / the threads it runs) is compared to
   `hashlib.file_digest` on one core over the same (warm) files. Target: >= 90%.
2. Planning reads no contents. On the large sparse environment of make_env.py (reused with
   --keep DIR, else built in a temp folder and removed) `mlx plan` runs with `dedup: auto`
   and with `dedup: off`; each child reports its own /proc/self/io counters (psutil) at
   exit. The environment holds 20 duplicate 1 GiB blob pairs (found by name); hashing even
   one of them would read 1 GiB. Asserted: the dedup run finds them, and reads (rchar) at
   most 1 MiB more than the run without dedup; and, as a control that the counter sees
   content reads, a third run with one plain 1 GiB file in an app folder (which must be
   hashed: its size matches the blobs) reads at least 1 GiB more.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import large_env, mlx_env

GB = 10**9
CHUNK = 64 << 20
MARGIN = 2 * GB  # free space left over after the environment is written
READ_SLACK = 1 << 20  # planning with dedup may read at most this much more than without
TARGET = 0.90
MODES = ("auto", "off", "auto-control")

# Run `mlx` and write the process's own I/O counters as JSON when it exits.
IO_CHILD = r"""
import atexit, json, os, sys
import psutil
def _dump():
    with open(os.environ["MLX_BENCH_IO"], "w") as fh:
        json.dump(psutil.Process().io_counters()._asdict(), fh)
atexit.register(_dump)
from mlxstate.cli.main import run
run()
"""


def human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    raise AssertionError


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--gb", type=float, default=20.0, help="size of ONE copy (10^9 bytes)")
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--mode", default="auto", choices=["auto", "hardlink", "symlink"])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--keep", type=Path, help="make_env.py environment to reuse (kept)")
    parser.add_argument("--skip-sparse", action="store_true", help="skip part 2")
    parser.add_argument("--skip-real", action="store_true", help="skip part 1")
    return parser.parse_args()


# --- part 1: real duplicates ----------------------------------------------------------------------


def check_space(folder: Path, need: int) -> None:
    free = shutil.disk_usage(folder).free
    if free < need + MARGIN:
        raise SystemExit(
            f"refusing: the environment needs {human(need)} in {folder} (+ {human(MARGIN)} "
            f"margin) and only {human(free)} is free; pass a smaller --gb or another --dir"
        )


def write_copies(paths: list[Path], size: int) -> str:
    """Write the same ``size`` random bytes to every path; return their sha256."""
    digest = hashlib.sha256()
    handles = [open(p, "wb") for p in paths]  # noqa: SIM115 - closed below
    try:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            digest.update(chunk)
            for fh in handles:
                fh.write(chunk)
            left -= len(chunk)
    finally:
        for fh in handles:
            fh.close()
    return digest.hexdigest()


def build_real(base: Path, files: int, size: int, mode: str) -> dict[str, list[Path]]:
    """The three stores under base/home and base/mlx.yaml; returns digest -> its paths."""
    home = base / "home"
    ollama = home / ".ollama" / "models"
    blobs = ollama / "blobs"
    repo = home / ".cache" / "huggingface" / "hub" / "models--bench--dups"
    app = home / "apps" / "bench"
    for folder in (blobs, repo / "blobs", repo / "refs", app):
        folder.mkdir(parents=True)
    commit = hashlib.sha1(str(base).encode()).hexdigest()
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    config = json.dumps({"model_format": "gguf", "model_family": "llama"}).encode()
    config_digest = hashlib.sha256(config).hexdigest()
    (blobs / f"sha256-{config_digest}").write_bytes(config)
    out: dict[str, list[Path]] = {}
    for i in range(files):
        name = f"model-{i:05d}-of-{files:05d}.gguf"
        tmp_o, tmp_h, copy = blobs / f"tmp-{i}", repo / "blobs" / f"tmp-{i}", app / name
        digest = write_copies([tmp_o, tmp_h, copy], size)
        o_blob, h_blob = blobs / f"sha256-{digest}", repo / "blobs" / digest
        os.replace(tmp_o, o_blob)
        os.replace(tmp_h, h_blob)
        os.symlink(f"../../blobs/{digest}", snapshot / name)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": f"sha256:{config_digest}",
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.ollama.image.model",
                    "digest": f"sha256:{digest}",
                    "size": size,
                }
            ],
        }
        path = ollama / "manifests" / "registry.ollama.ai" / "bench" / f"dup{i}" / "latest"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(manifest, separators=(",", ":")))
        out[digest] = [o_blob, h_blob, copy]
    (base / "mlx.yaml").write_text(
        f"version: 1\nsettings:\n  dedup: {mode}\n  disk: {{min_free: 0}}\n"
        f"apps:\n  bench:\n    path: {app}\n    models: []\n"
    )
    return out


def disk_used(root: Path) -> int:
    """Bytes of disk used by the distinct inodes below ``root`` (links not followed)."""
    seen: set[tuple[int, int]] = set()
    used = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            st = os.lstat(os.path.join(dirpath, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                used += st.st_blocks * 512
    return used


def single_core_throughput(paths: list[Path]) -> float:
    """bytes/s of hashlib.file_digest over ``paths``, one after the other, page cache warm."""
    total = 0
    start = time.perf_counter()
    for path in paths:
        with open(path, "rb") as fh:
            hashlib.file_digest(fh, "sha256")
        total += path.stat().st_size
    return total / (time.perf_counter() - start)


def threaded_throughput(paths: list[Path], threads: int) -> float:
    """bytes/s of hashlib.file_digest over ``paths`` hashed ``threads`` at a time (what this
    machine's cores give together: the ceiling of any threaded hashing)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(path: Path) -> int:
        with open(path, "rb") as fh:
            hashlib.file_digest(fh, "sha256")
        return path.stat().st_size

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        total = sum(pool.map(one, paths))
    return total / (time.perf_counter() - start)


def mlx(base: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mlxstate", *args, "-f", str(base / "mlx.yaml")]
    proc = subprocess.run(cmd, env=mlx_env(base / "home"), capture_output=True, text=True)
    if check and proc.returncode not in (0, 2):
        what = " ".join(args)
        raise SystemExit(f"{what} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


def action_seconds(journal: Path) -> dict[str, float]:
    """Seconds between the started and done lines of each dedup action of the last run."""
    events = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    run = events[-1]["run"]
    started: dict[str, float] = {}
    out: dict[str, float] = {}
    for event in events:
        if event.get("run") != run:
            continue
        if event["event"] == "started" and str(event["action"]).startswith("dedup/"):
            started[event["action"]] = event["time"]
        elif event["event"] == "done" and event.get("action") in started:
            out[event["action"]] = event["time"] - started[event["action"]]
    return out


def verify(groups: dict[str, list[Path]]) -> int:
    """Every path reads bytes hashing to its digest (each distinct inode hashed once)."""
    seen: dict[tuple[int, int], str] = {}
    for digest, paths in groups.items():
        for path in paths:
            st = os.stat(path)
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                with open(path, "rb") as fh:
                    seen[key] = hashlib.file_digest(fh, "sha256").hexdigest()
            if seen[key] != digest:
                raise SystemExit(f"BYTES CHANGED: {path} no longer hashes to {digest}")
    return len(seen)


def part_real(args: argparse.Namespace) -> None:
    size = int(args.gb * GB) // args.files
    total = size * args.files
    args.dir.mkdir(parents=True, exist_ok=True)
    check_space(args.dir, 3 * total)
    base = Path(tempfile.mkdtemp(prefix="mlx-dedup-bench-", dir=args.dir))
    try:
        start = time.perf_counter()
        groups = build_real(base, args.files, size, args.mode)
        os.sync()  # no writeback of the new files competing with the hashing measured below
        t_build = time.perf_counter() - start
        print(f"## 1. real duplicates: {args.files} files x {human(size)}, three copies each")
        print(f"built {human(3 * total)} in {t_build:.1f} s under {base}")
        ollama_blobs = [paths[0] for paths in groups.values()]
        single = max(single_core_throughput(ollama_blobs) for _ in range(2))
        threads = min(2, os.cpu_count() or 1)  # dedup_effects hashes dup and keep in parallel
        pair = [p for paths in groups.values() for p in paths[:2]]
        ceiling = max(threaded_throughput(pair, threads) for _ in range(2)) / threads
        print(f"hashlib.file_digest, one core, warm: {human(single)}/s")
        print(
            f"hashlib.file_digest, {threads} threads over {threads} files at a time, warm: "
            f"{human(ceiling)}/s per core (this machine's ceiling: {ceiling / single:.0%})"
        )

        start = time.perf_counter()
        plan = mlx(base, "plan", "--json")
        t_plan = time.perf_counter() - start
        doc = json.loads(plan.stdout)
        actions = [a for a in doc["actions"] if a["kind"] == "dedup.link"]
        print(
            f"mlx plan: {len(actions)} dedup.link actions ({args.mode}), "
            f"frees {human(doc['summary']['free_bytes'])}, {t_plan:.2f} s (hashes the "
            f"{args.files} plain app copies once: size collision; cached in the registry)"
        )
        home = base / "home"
        used_before = disk_used(home)
        free_before = shutil.disk_usage(base).free

        start = time.perf_counter()
        before_cpu = os.times()
        applied = mlx(base, "apply", "-y")
        t_apply = time.perf_counter() - start
        after_cpu = os.times()
        if applied.returncode != 0:
            raise SystemExit(f"apply failed:\n{applied.stdout}{applied.stderr}")
        cpu = (after_cpu.children_user - before_cpu.children_user) + (
            after_cpu.children_system - before_cpu.children_system
        )
        used_after = disk_used(home)
        free_after = shutil.disk_usage(base).free
        again = mlx(base, "plan", "--detailed-exitcode", check=False)
        inodes = verify(groups)

        seconds = action_seconds(home / ".local" / "state" / "mlxstate" / "journal.jsonl")
        # Each duplicate is hashed by its action; a kept copy once per process, however many
        # duplicates link to it (dedup_effects memoizes it by inode, size and mtime).
        kept = {a["params"]["canonical"] for a in actions if a["id"] in seconds}
        hashed = size * (len(seconds) + len(kept))
        aggregate = hashed / sum(seconds.values())
        per_core = aggregate / threads
        print(
            f"mlx apply -y: {t_apply:.2f} s wall, {cpu:.2f} s CPU "
            f"({len(seconds)} dedups journaled in {sum(seconds.values()):.2f} s)"
        )
        print(
            f"reclaimed: {human(used_before - used_after)} (distinct-inode usage "
            f"{human(used_before)} -> {human(used_after)}); filesystem free space "
            f"+{human(free_after - free_before)}; "
            f"plan promised {human(doc['summary']['free_bytes'])}"
        )
        print(
            f"after: `mlx plan --detailed-exitcode` -> {again.returncode}; "
            f"{sum(len(p) for p in groups.values())} paths verified, {inodes} distinct inode(s)"
        )
        print(
            f"verification hashing: {human(hashed)} in dedup actions, {human(aggregate)}/s on "
            f"{threads} thread(s) = {human(per_core)}/s per core; single core "
            f"{human(single)}/s -> {per_core / single:.0%} (target >= {TARGET:.0%}: "
            f"{'PASS' if per_core >= TARGET * single else 'FAIL'}); vs the threaded "
            f"ceiling above: {per_core / ceiling:.0%}"
        )
        if again.returncode != 0:
            print(f"NOTE: plan after apply is not empty:\n{again.stdout}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
        print(f"removed {base}")


# --- part 2: planning dedup reads no contents -----------------------------------------------------


def io_of_plan(base: Path, spec: Path) -> tuple[dict[str, int], dict[str, Any]]:
    """(the child's own /proc/self/io counters, its plan JSON) of one `mlx plan --json`."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        io_file = Path(out.name)
    try:
        env = mlx_env(base / "home", MLX_BENCH_IO=str(io_file))
        cmd = [sys.executable, "-c", IO_CHILD, "plan", "--json", "-f", str(spec)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode not in (0, 2):
            raise SystemExit(f"plan failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
        return json.loads(io_file.read_text()), json.loads(proc.stdout)
    finally:
        io_file.unlink(missing_ok=True)


def part_sparse(args: argparse.Namespace) -> None:
    from make_env import write_spec

    built_here = args.keep is None
    start = time.perf_counter()
    base = large_env(args.keep)
    print(f"\n## 2. planning dedup on make_env.py's sparse environment ({base})")
    if built_here:
        print(f"built in {time.perf_counter() - start:.1f} s")
    try:
        lms = base / "home" / ".lmstudio" / "models"
        # The control: a plain 1 GiB (sparse) file in an app folder has the size of the
        # blobs, so planning must hash it — the counter has to see that read.
        control = base / "home" / "control-app"
        control.mkdir(exist_ok=True)
        with open(control / "copy.gguf", "wb") as fh:
            fh.truncate(1 << 30)
        specs = {}
        for mode in MODES:
            spec = base / f"dedup-{mode}.yaml"
            write_spec(spec, 200, 300)
            dedup = mode.removesuffix("-control")
            text = spec.read_text().replace("settings:\n", f"settings:\n  dedup: {dedup}\n", 1)
            text += f"apps:\n  lmstudio:\n    path: {lms}\n    layout: lmstudio\n    models: []\n"
            if mode.endswith("-control"):
                text += f"  control:\n    path: {control}\n    models: []\n"
            spec.write_text(text)
            specs[mode] = spec
        io_of_plan(base, specs["auto"])  # warm-up: page cache, bytecode
        io_auto, doc_auto = io_of_plan(base, specs["auto"])
        io_off, doc_off = io_of_plan(base, specs["off"])
        io_control, _ = io_of_plan(base, specs["auto-control"])
        n_auto = sum(a["kind"] == "dedup.link" for a in doc_auto["actions"])
        n_off = sum(a["kind"] == "dedup.link" for a in doc_off["actions"])
        extra = io_auto["read_chars"] - io_off["read_chars"]
        print(
            f"dedup: auto -> {n_auto} dedup.link actions, frees "
            f"{human(sum(a['free_bytes'] or 0 for a in doc_auto['actions']))}; "
            f"dedup: off -> {n_off}"
        )
        for label, io in (("dedup: auto", io_auto), ("dedup: off", io_off)):
            print(
                f"{label:<12} rchar {human(io['read_chars'])} in {io['read_count']} read calls, "
                f"read_bytes (storage) {human(io['read_bytes'])}"
            )
        print(f"extra bytes read to plan dedup: {human(extra)} (limit {human(READ_SLACK)})")
        seen = io_control["read_chars"] - io_auto["read_chars"]
        print(f"control (one 1 GiB plain app file to hash): the counter saw {human(seen)} more")
        assert seen >= 1 << 30, "the read counter does not see content reads"
        assert n_auto >= 20 and n_off == 0, (n_auto, n_off)
        assert extra <= READ_SLACK, f"planning dedup read {extra} more bytes than without"
        print("PASS: planning dedup reads no file contents")
    finally:
        for mode in MODES:
            (base / f"dedup-{mode}.yaml").unlink(missing_ok=True)
        shutil.rmtree(base / "home" / "control-app", ignore_errors=True)
        if built_here:
            shutil.rmtree(base, ignore_errors=True)
            print(f"removed {base}")


def main() -> None:
    args = arguments()
    print(f"# {platform.platform()}, Python {platform.python_version()}, {os.cpu_count()} cores")
    if not args.skip_real:
        part_real(args)
    if not args.skip_sparse:
        part_sparse(args)


if __name__ == "__main__":
    main()
