"""``mlx verify``: re-hash stored files against the names the stores gave them.

An Ollama blob is named ``sha256-<hex>`` after the sha256 of its bytes; a Hugging Face blob
after its LFS oid (the sha256) or, for a small file kept in git, its git blob id (sha1 of
``blob <size>\\0`` + bytes). A file whose bytes hash to something else is corrupt, and so
is every model that uses it. Only reads the stores (docs/commands.md, "mlx verify").

sha256 results are cached in the registry's hash cache, keyed by (device, inode, size,
mtime_ns) like the duplicate search: the cache holds what the bytes hashed to, never a
verdict, so a corrupt file stays corrupt on a cache hit. Hashing runs on threads (hashlib
releases the GIL on large buffers); the cache is read and written on the calling thread.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from mlxstate.facts import HfCache, OllamaStore
from mlxstate.observe.duplicates import HashCache
from mlxstate.observe.hash_progress import HashProgress

__all__ = [
    "Check",
    "Problem",
    "VerifyReport",
    "checks_of",
    "digest_file",
    "model_keys",
    "run_checks",
]

Algo = Literal["sha256", "git-sha1"]
CHUNK = 1 << 20  # large reads: the hash runs without the GIL, the syscalls stay few


@dataclass
class Check:
    """One stored file, what its name says it hashes to, and the models it serves."""

    path: Path
    expected: str
    algo: Algo
    size: int
    models: list[str] = field(default_factory=list)  # ollama://NAME, hf://REPO@COMMIT:PATH


@dataclass(frozen=True)
class Problem:
    check: Check
    problem: Literal["mismatch", "missing", "unreadable"]
    actual: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        c = self.check
        return {
            "path": str(c.path),
            "problem": self.problem,
            "algorithm": c.algo,
            "expected": c.expected,
            "actual": self.actual,
            "detail": self.detail,
            "models": sorted(c.models),
        }


@dataclass(frozen=True)
class VerifyReport:
    files: int
    bytes: int
    hashed_bytes: int  # read this time (the rest came from the hash cache)
    cached: int  # files whose sha256 the cache knew
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "format": 1,
            "ok": self.ok,
            "files": self.files,
            "bytes": self.bytes,
            "hashed_bytes": self.hashed_bytes,
            "cached": self.cached,
            "problems": [p.to_json() for p in self.problems],
        }


# -- which files ---------------------------------------------------------------------------


def checks_of(
    ollama: OllamaStore,
    hf: HfCache,
    wanted: Callable[[str], bool] = lambda _: True,
) -> tuple[list[Check], list[Problem]]:
    """A check per stored file of the models ``wanted`` (by match key, keys.py), each blob
    once however many models share it; missing files are problems at once."""
    from mlxstate.keys import hf_key, ollama_key

    checks: dict[Path, Check] = {}
    missing: list[Problem] = []

    def add(path: Path, expected: str, algo: Algo, size: int, model: str, there: bool) -> None:
        check = checks.get(path) or Check(path, expected, algo, size)
        check.models.append(model)
        if not there:
            missing.append(Problem(check, "missing", detail="the store names it; it is not there"))
        else:
            checks.setdefault(path, check)

    for m in ollama.models:
        if wanted(ollama_key(m)):
            for layer in m.all_layers:
                path = ollama.root / "blobs" / f"sha256-{layer.digest}"
                add(path, layer.digest, "sha256", layer.size, m.name, layer.on_disk is not None)
    for repo in hf.repos:
        if not wanted(hf_key(repo, hf.case_insensitive)):
            continue
        for rev in repo.revisions:
            for f in rev.files:
                algo: Algo = "sha256" if f.is_lfs else "git-sha1"
                model = f"hf://{repo.repo_id}@{rev.commit[:12]}:{f.path}"
                add(f.blob_path, f.blob, algo, f.size, model, f.present)
    return list(checks.values()), missing


# -- hashing -------------------------------------------------------------------------------


def digest_file(path: Path, algo: Algo, advance: Callable[[int], None] = lambda _: None) -> str:
    """The digest the store's naming uses. Opened without blocking and checked to be a
    regular file first: a FIFO or a device planted under a blob's name is unreadable,
    not a hang."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb", buffering=0) as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        h = hashlib.sha256() if algo == "sha256" else hashlib.sha1(usedforsecurity=False)
        if algo == "git-sha1":
            h.update(b"blob %d\0" % st.st_size)
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        left = st.st_size
        # Read what fstat said is there and no more: a regular file that never ends (a link
        # to /proc/self/pagemap, a file still being appended to) is reported, not read on.
        while left and (n := fh.readinto(view[: min(CHUNK, left)])):
            h.update(view[:n])
            advance(n)
            left -= n
        if left or fh.readinto(buf):
            raise OSError(f"{path} changed size while it was read")
    return h.hexdigest()


def run_checks(
    checks: Sequence[Check],
    cache: HashCache | None = None,
    progress: HashProgress | None = None,
    jobs: int | None = None,
) -> VerifyReport:
    """Hash every check (cached sha256s first), in ``jobs`` threads (default: one a core)."""
    problems: list[Problem] = []
    todo: list[tuple[Check, tuple[int, int, int, int] | None]] = []
    cached = 0
    for check in checks:
        key = _key(check.path)
        known = cache[0](*key) if cache is not None and key and check.algo == "sha256" else None
        if known:
            cached += 1
            if known != check.expected:
                problems.append(Problem(check, "mismatch", known))
        else:
            todo.append((check, key))
    hashed = sum(k[2] if k else c.size for c, k in todo)
    if progress is not None and todo:
        progress.start(hashed, [c.path for c, _ in todo])
    advance = progress.advance if progress is not None else (lambda _: None)
    workers = max(1, min(len(todo), jobs or os.cpu_count() or 2))
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = pool.map(lambda c: _hash(c, advance), [c for c, _ in todo])
            for (check, key), (actual, error) in zip(todo, results, strict=True):
                if actual is None:
                    problems.append(Problem(check, "unreadable", detail=error))
                    continue
                if cache is not None and key and check.algo == "sha256":
                    cache[1](*key, actual)
                if actual != check.expected:
                    problems.append(Problem(check, "mismatch", actual))
    finally:
        if progress is not None and todo:
            progress.finish()
    total = sum(c.size for c in checks)
    return VerifyReport(len(checks), total, hashed, cached, tuple(problems))


def _key(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = os.stat(path)  # through a blob link (the shared Xet store): the bytes' file
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _hash(check: Check, advance: Callable[[int], None]) -> tuple[str | None, str]:
    try:
        return digest_file(check.path, check.algo, advance), ""
    except OSError as exc:
        return None, exc.strerror or str(exc)


def model_keys(names: Iterable[str], declared: dict[str, str]) -> dict[str, str]:
    """NAME argument → its match key (keys.py), lowercased: an mlx.yaml name (``declared``:
    name → key), a source (``ollama://…``, ``hf://…``), or a source written without its
    scheme. Lowercased because reading is harmless: ``Org/M`` and ``org/m`` both get checked
    where the filesystem keeps them apart."""
    from mlxstate.keys import source_key
    from mlxstate.sources import suggest_source

    out = {}
    for name in names:
        key = declared.get(name) or source_key(
            name if "://" in name else suggest_source(name) or name
        )
        out[name] = key.lower()
    return out
