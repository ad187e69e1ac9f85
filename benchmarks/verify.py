"""Verify throughput: `mlx verify`'s hashing against `hashlib.file_digest` on one core.

Writes FILES random files of MB megabytes in total (page-cached after the first read, so
this measures hashing, not the disk), then hashes all of them:

1. the floor: `hashlib.file_digest(fh, "sha256")`, one file after another, one core;
2. `mlxstate.verify.run_checks` with one thread (the same work: goal >= 90% of the floor);
3. `run_checks` with one thread a core (throughput per core used: goal >= 90% of the floor).

    uv run python benchmarks/verify.py [--mb 1024] [--files 8] [--runs 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mlxstate.verify import Check, run_checks


def make_files(folder: Path, total_mb: int, count: int) -> list[Check]:
    checks = []
    size = total_mb * (1 << 20) // count
    for i in range(count):
        path = folder / f"blob-{i}"
        data = os.urandom(size)
        path.write_bytes(data)
        checks.append(Check(path, hashlib.sha256(data).hexdigest(), "sha256", size))
    return checks


def floor(checks: list[Check]) -> None:
    for c in checks:
        with open(c.path, "rb") as fh:
            hashlib.file_digest(fh, "sha256")


def best(fn: object, runs: int) -> float:
    assert callable(fn)
    fn()  # page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=1024)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="mlx-verify-") as tmp:
        checks = make_files(Path(tmp), args.mb, args.files)
        total = sum(c.size for c in checks) / 1e6

        def one() -> None:
            assert run_checks(checks, jobs=1).ok

        def many() -> None:
            assert run_checks(checks, jobs=cores).ok

        t_floor, t_one, t_many = (best(f, args.runs) for f in (lambda: floor(checks), one, many))
    print(f"{total:.0f} MB in {args.files} files, {cores} cores, median of {args.runs}")
    print(f"hashlib.file_digest, 1 core   {total / t_floor:8.0f} MB/s")
    print(f"mlx verify, 1 thread          {total / t_one:8.0f} MB/s  {t_floor / t_one:6.1%}")
    per_core = total / t_many / cores
    print(
        f"mlx verify, {cores} threads         {total / t_many:8.0f} MB/s  "
        f"{per_core:.0f} MB/s per core = {per_core / (total / t_floor):6.1%} of the floor"
    )


if __name__ == "__main__":
    main()
