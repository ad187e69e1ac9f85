"""The registry: SQLite under ``state_dir`` recording what mlx manages (docs/apply.md).

Models mlx installed, links it made, files it deduplicated (with the original inode
facts), and a hash cache keyed by (dev, inode, size, mtime_ns). Observers read it; only
the apply engine writes inventory. Schema changes are migrations keyed by
``PRAGMA user_version``; the database runs in WAL mode so readers never block the writer.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DedupRecord", "LinkRecord", "ManagedModel", "Registry", "RegistryFacts"]

DB_NAME = "registry.db"

# Each entry migrates from user_version == index to index + 1. Never edit a shipped one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE models (
        source TEXT PRIMARY KEY,      -- canonical source: ollama://name:tag or hf://org/repo
        name TEXT NOT NULL,           -- the mlx.yaml name it was installed under
        revision TEXT,                -- hf: commit installed
        installed_at REAL NOT NULL
    );
    CREATE TABLE links (
        path TEXT PRIMARY KEY,        -- absolute path of the symlink mlx created
        target TEXT NOT NULL,
        app TEXT NOT NULL,
        model TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE dedups (
        path TEXT PRIMARY KEY,        -- the file that was replaced by a link
        canonical TEXT NOT NULL,      -- the file it now shares bytes with
        sha256 TEXT NOT NULL,
        mechanism TEXT NOT NULL,      -- hardlink | clone | symlink
        orig_dev INTEGER NOT NULL,
        orig_ino INTEGER NOT NULL,
        size INTEGER NOT NULL,
        orig_mtime_ns INTEGER NOT NULL,
        done_at REAL NOT NULL
    );
    CREATE TABLE hashes (
        dev INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (dev, ino, size, mtime_ns)
    );
    """,
    """
    CREATE TABLE dirs (
        path TEXT PRIMARY KEY,        -- a folder mlx created for links (removed when empty)
        app TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    """,
)


@dataclass(frozen=True, slots=True)
class ManagedModel:
    source: str
    name: str
    revision: str | None
    installed_at: float


@dataclass(frozen=True, slots=True)
class LinkRecord:
    path: Path
    target: Path
    app: str
    model: str


@dataclass(frozen=True, slots=True)
class DedupRecord:
    path: Path
    canonical: Path
    sha256: str
    mechanism: str


@dataclass(frozen=True)
class RegistryFacts:
    """What the registry says mlx manages, read once per run (the planner's input)."""

    models: tuple[ManagedModel, ...] = ()
    links: tuple[LinkRecord, ...] = ()
    dedups: tuple[DedupRecord, ...] = ()

    def managed_sources(self) -> frozenset[str]:
        return frozenset(m.source for m in self.models)

    def is_managed(self, source: str) -> bool:
        return source in self.managed_sources()


class Registry:
    """A connection to ``<state_dir>/registry.db`` (created on first open)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, state_dir: Path) -> Registry:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / DB_NAME
        conn = sqlite3.connect(path, timeout=10, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "PRAGMA synchronous=NORMAL"
        )  # WAL + NORMAL: durable at checkpoints, never corrupt
        conn.execute("PRAGMA foreign_keys=ON")
        registry = cls(conn, path)
        registry._migrate()
        return registry

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            from mlxstate.errors import MlxError

            raise MlxError(
                f"{self.path} was written by a newer mlxstate (schema {version}); upgrade mlxstate"
            )
        for index in range(version, len(MIGRATIONS)):
            # executescript() commits whatever is open before it runs, so the transaction
            # is part of the script: schema and user_version change together or not at all.
            script = MIGRATIONS[index]
            self.conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {index + 1};\nCOMMIT;"
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- reading -------------------------------------------------------------------------

    def facts(self) -> RegistryFacts:
        rows = self.conn.execute("SELECT source, name, revision, installed_at FROM models")
        models = tuple(ManagedModel(*r) for r in rows.fetchall())
        rows = self.conn.execute("SELECT path, target, app, model FROM links")
        links = tuple(LinkRecord(Path(p), Path(t), a, m) for p, t, a, m in rows.fetchall())
        rows = self.conn.execute("SELECT path, canonical, sha256, mechanism FROM dedups")
        dedups = tuple(DedupRecord(Path(p), Path(c), s, m) for p, c, s, m in rows.fetchall())
        return RegistryFacts(tuple(sorted(models, key=lambda m: m.source)), links, dedups)

    def cached_hash(self, dev: int, ino: int, size: int, mtime_ns: int) -> str | None:
        row = self.conn.execute(
            "SELECT sha256 FROM hashes WHERE dev=? AND ino=? AND size=? AND mtime_ns=?",
            (dev, ino, size, mtime_ns),
        ).fetchone()
        return None if row is None else str(row[0])

    # -- writing (the apply engine, and the hash cache) ----------------------------------

    def remember_hash(self, dev: int, ino: int, size: int, mtime_ns: int, sha256: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)",
            (dev, ino, size, mtime_ns, sha256),
        )

    def add_model(self, source: str, name: str, revision: str | None = None) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?)",
            (source, name, revision, time.time()),
        )

    def remove_model(self, source: str) -> None:
        # Sources are compared as Ollama and the hub compare names: case-insensitively.
        self.conn.execute("DELETE FROM models WHERE lower(source) = lower(?)", (source,))

    def add_link(self, path: Path, target: Path, app: str, model: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO links VALUES (?, ?, ?, ?, ?)",
            (str(path), str(target), app, model, time.time()),
        )

    def add_dir(self, path: Path, app: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO dirs VALUES (?, ?, ?)", (str(path), app, time.time())
        )

    def remove_dir(self, path: Path) -> None:
        self.conn.execute("DELETE FROM dirs WHERE path = ?", (str(path),))

    def owned_dirs(self) -> set[Path]:
        return {Path(r[0]) for r in self.conn.execute("SELECT path FROM dirs").fetchall()}

    def remove_link(self, path: Path) -> None:
        self.conn.execute("DELETE FROM links WHERE path = ?", (str(path),))

    def add_dedup(
        self,
        path: Path,
        canonical: Path,
        sha256: str,
        mechanism: str,
        st_dev: int,
        st_ino: int,
        size: int,
        mtime_ns: int,
    ) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO dedups VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                str(path),
                str(canonical),
                sha256,
                mechanism,
                st_dev,
                st_ino,
                size,
                mtime_ns,
                time.time(),
            ),
        )


def read_facts(state_dir: Path) -> RegistryFacts:
    """Registry facts without creating anything: an absent registry manages nothing."""
    if not (state_dir / DB_NAME).is_file():
        return RegistryFacts()
    with Registry.open(state_dir) as registry:
        return registry.facts()
