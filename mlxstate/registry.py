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

from mlxstate.errors import MlxError
from mlxstate.keys import source_key
from mlxstate.workspace import LEGACY

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
    # Ownership per workspace (one mlx.yaml). Rows that existed before are owned by the
    # legacy workspace '': no file prunes them until one that declares the model claims it.
    """
    CREATE TABLE owners (
        source TEXT NOT NULL,         -- models.source
        workspace TEXT NOT NULL,      -- '' = recorded before workspaces existed
        name TEXT NOT NULL,           -- the name this workspace's mlx.yaml gives it
        since REAL NOT NULL,
        PRIMARY KEY (source, workspace)
    );
    INSERT INTO owners SELECT source, '', name, installed_at FROM models;
    ALTER TABLE links ADD COLUMN workspace TEXT NOT NULL DEFAULT '';
    CREATE TABLE workspaces (
        name TEXT PRIMARY KEY,
        spec_path TEXT NOT NULL,      -- the mlx.yaml it was last used with
        last_seen REAL NOT NULL
    );
    """,
    # The watch agent's state (mlxstate/watch/state.py): one row. The flags are columns of
    # their own so `mlx suspend`/`mlx reconcile` never race the agent's writes of `doc`.
    """
    CREATE TABLE agent (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        doc TEXT NOT NULL DEFAULT '{}',   -- JSON: pid, last_attempt, conditions, history...
        suspended INTEGER NOT NULL DEFAULT 0,
        reconcile_requested INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO agent (id) VALUES (1);
    """,
    # Benchmark runs (mlxstate/bench/history.py): one row per (benchmark, model) run with
    # its whole record as JSON, and its samples one per row for queries and exports.
    """
    CREATE TABLE bench_runs (
        id TEXT PRIMARY KEY,
        started REAL NOT NULL,
        benchmark TEXT NOT NULL,      -- '' for `mlx bench run --model`
        model TEXT NOT NULL,
        source TEXT NOT NULL,
        engine TEXT NOT NULL,
        trigger TEXT NOT NULL,
        status TEXT NOT NULL,         -- ok | failed | skipped
        doc TEXT NOT NULL             -- the run record (docs/benchmarks.md), without samples
    );
    CREATE INDEX bench_runs_by_model ON bench_runs (model, benchmark, started);
    CREATE INDEX bench_runs_by_time ON bench_runs (started);
    CREATE TABLE bench_samples (
        run_id TEXT NOT NULL REFERENCES bench_runs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,         -- order measured
        prompt_index INTEGER NOT NULL,
        ttft_ms REAL NOT NULL,
        prompt_tokens INTEGER NOT NULL,
        prompt_tps REAL,
        gen_tokens INTEGER NOT NULL,
        gen_tps REAL,
        load_ms REAL NOT NULL,
        peak_memory_bytes INTEGER,
        PRIMARY KEY (run_id, seq)
    );
    -- When each benchmark schedule last fired (or was skipped): the agent's catch-up.
    CREATE TABLE bench_schedule (
        benchmark TEXT NOT NULL,
        workspace TEXT NOT NULL,
        schedule TEXT NOT NULL,       -- the schedule text it was computed for
        last_due REAL NOT NULL,       -- the latest due time handled
        PRIMARY KEY (benchmark, workspace)
    );
    """,
)


@dataclass(frozen=True, slots=True)
class ManagedModel:
    source: str
    name: str
    revision: str | None
    installed_at: float
    # Workspace -> the name its mlx.yaml gives the model; LEGACY ('') for rows recorded
    # before workspaces existed.
    owners: tuple[tuple[str, str], ...] = ()

    @property
    def owner_names(self) -> tuple[str, ...]:
        return tuple(w for w, _ in self.owners)

    def name_in(self, workspace: str) -> str | None:
        return dict(self.owners).get(workspace)


@dataclass(frozen=True, slots=True)
class LinkRecord:
    path: Path
    target: Path
    app: str
    model: str
    workspace: str = LEGACY


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
    workspace: str | None = None  # the workspace planning; None: no mlx.yaml (status)
    # Workspace -> the mlx.yaml an apply of it last ran from.
    workspace_files: tuple[tuple[str, str], ...] = ()

    def managed_keys(self) -> frozenset[str]:
        """Match keys (``mlxstate.keys.source_key``) of every managed model, any owner."""
        return frozenset(source_key(m.source) for m in self.models)

    def find(self, source: str, fold_hf: bool = False) -> ManagedModel | None:
        key = source_key(source, fold_hf)
        return next((m for m in self.models if source_key(m.source, fold_hf) == key), None)

    def owned(self) -> tuple[ManagedModel, ...]:
        """Models this workspace owns."""
        ws = self.workspace
        return tuple(m for m in self.models if ws is not None and ws in m.owner_names)

    def links_of_mine(self) -> tuple[LinkRecord, ...]:
        """Links this workspace made, plus links recorded before workspaces existed."""
        return tuple(x for x in self.links if x.workspace in (self.workspace, LEGACY))


class Registry:
    """A connection to ``<state_dir>/registry.db`` (created on first open)."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, state_dir: Path, timeout: float = 10.0) -> Registry:
        path = state_dir / DB_NAME
        ensure_state_dir(state_dir)
        if path.exists() and not path.is_file():
            raise MlxError(f"{path} is not a file; mlx keeps its registry there", hint=_MOVE)
        try:
            conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as exc:
            raise _registry_error(path, exc) from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: durable at checkpoints, never corrupt
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            registry = cls(conn, path)
            registry._migrate()
        except sqlite3.Error as exc:
            conn.close()
            raise _registry_error(path, exc) from None
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
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise _registry_error(self.path, exc) from None
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- reading -------------------------------------------------------------------------

    def facts(self, workspace: str | None = None) -> RegistryFacts:
        owners: dict[str, list[tuple[str, str]]] = {}
        for source, ws, name in self.conn.execute("SELECT source, workspace, name FROM owners"):
            owners.setdefault(source, []).append((ws, name))
        rows = self.conn.execute("SELECT source, name, revision, installed_at FROM models")
        models = tuple(
            ManagedModel(s, n, r, t, tuple(sorted(owners.get(s, ())))) for s, n, r, t in rows
        )
        rows = self.conn.execute("SELECT path, target, app, model, workspace FROM links")
        links = tuple(LinkRecord(Path(p), Path(t), a, m, w) for p, t, a, m, w in rows.fetchall())
        rows = self.conn.execute("SELECT path, canonical, sha256, mechanism FROM dedups")
        dedups = tuple(DedupRecord(Path(p), Path(c), s, m) for p, c, s, m in rows.fetchall())
        return RegistryFacts(
            tuple(sorted(models, key=lambda m: m.source)),
            links,
            dedups,
            workspace,
            tuple(sorted(self.workspaces().items())),
        )

    def workspaces(self) -> dict[str, str]:
        """Workspace name -> the mlx.yaml it was last used with."""
        rows = self.conn.execute("SELECT name, spec_path FROM workspaces")
        return {str(n): str(p) for n, p in rows.fetchall()}

    def cached_hash(self, dev: int, ino: int, size: int, mtime_ns: int) -> str | None:
        row = self.conn.execute(
            "SELECT sha256 FROM hashes WHERE dev=? AND ino=? AND size=? AND mtime_ns=?",
            (dev, ino, size, mtime_ns),
        ).fetchone()
        return None if row is None else str(row[0])

    def _stored_source(self, source: str) -> str | None:
        """The row's spelling of ``source``: Ollama names match case-insensitively (as the
        daemon does), Hugging Face repo ids exactly, as on disk."""
        key = source_key(source)
        rows = self.conn.execute("SELECT source FROM models").fetchall()
        return next((str(r[0]) for r in rows if source_key(str(r[0])) == key), None)

    # -- writing (the apply engine, and the hash cache) ----------------------------------

    def remember_hash(self, dev: int, ino: int, size: int, mtime_ns: int, sha256: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO hashes VALUES (?, ?, ?, ?, ?)",
            (dev, ino, size, mtime_ns, sha256),
        )

    def add_model(
        self, source: str, name: str, revision: str | None = None, workspace: str = LEGACY
    ) -> None:
        """Record a model mlx installed (or that a workspace claims), owned by ``workspace``."""
        stored = self._stored_source(source) or source
        now = time.time()
        self.conn.execute(
            "INSERT INTO models VALUES (?, ?, ?, ?) ON CONFLICT(source) DO UPDATE SET "
            "name = excluded.name, revision = coalesce(excluded.revision, models.revision)",
            (stored, name, revision, now),
        )
        self.claim(stored, workspace, name)

    def claim(self, source: str, workspace: str, name: str) -> bool:
        """``workspace`` owns the managed model ``source`` too; False if it is not managed.
        A claim by a real workspace replaces the legacy (pre-workspace) claim."""
        stored = self._stored_source(source)
        if stored is None:
            return False
        self.conn.execute(
            "INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?)",
            (stored, workspace, name, time.time()),
        )
        if workspace != LEGACY:
            self.conn.execute(
                "DELETE FROM owners WHERE source = ? AND workspace = ?", (stored, LEGACY)
            )
        return True

    def release(self, source: str, workspace: str) -> bool:
        """Drop ``workspace``'s claim (and the legacy one). When no owner is left the model is
        no longer managed: its files stay, and are the user's. True if it is now unmanaged."""
        stored = self._stored_source(source)
        if stored is None:
            return True
        self.conn.execute(
            "DELETE FROM owners WHERE source = ? AND workspace IN (?, ?)",
            (stored, workspace, LEGACY),
        )
        left = self.conn.execute("SELECT 1 FROM owners WHERE source = ?", (stored,)).fetchone()
        if left is None:
            self.conn.execute("DELETE FROM models WHERE source = ?", (stored,))
        return left is None

    def remove_model(self, source: str) -> None:
        """The model is gone from its store: forget it for every workspace."""
        stored = self._stored_source(source)
        if stored is not None:
            self.conn.execute("DELETE FROM owners WHERE source = ?", (stored,))
            self.conn.execute("DELETE FROM models WHERE source = ?", (stored,))

    def seen_workspace(self, name: str, spec_path: Path) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO workspaces VALUES (?, ?, ?)",
            (name, str(spec_path), time.time()),
        )

    def add_link(
        self, path: Path, target: Path, app: str, model: str, workspace: str = LEGACY
    ) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO links (path, target, app, model, created_at, workspace) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (str(path), str(target), app, model, time.time(), workspace),
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

    def remove_dedup(self, path: Path) -> None:
        """The file is a real file again (restored before its kept copy was deleted)."""
        self.conn.execute("DELETE FROM dedups WHERE path = ?", (str(path),))

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


_MOVE = "move it away (mlx makes a new registry; models it managed become the user's)"


def ensure_state_dir(state_dir: Path) -> None:
    """Create ``state_dir``; a file (or anything else) in its place is a clear error."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise MlxError(
            f"state_dir {state_dir} is not a folder",
            hint="point settings.state_dir (or $XDG_STATE_HOME) at a folder, or move it away",
        ) from None
    except OSError as exc:
        raise MlxError(
            f"cannot create state_dir {state_dir}: {exc.strerror or exc}",
            hint="point settings.state_dir at a folder you can write",
        ) from None
    if not state_dir.is_dir():
        raise MlxError(f"state_dir {state_dir} is not a folder", hint=_MOVE)


def _registry_error(path: Path, exc: sqlite3.Error) -> MlxError:
    text = str(exc)
    if "locked" in text or "busy" in text:
        return MlxError(
            f"the registry {path} stays locked by another process",
            hint="wait for the other mlx to finish, then run the command again",
        )
    if "not a database" in text or "malformed" in text:
        return MlxError(f"the registry {path} is not an mlxstate database ({text})", hint=_MOVE)
    return MlxError(f"cannot open the registry {path}: {text}", hint=_MOVE)


def read_facts(state_dir: Path, workspace: str | None = None) -> RegistryFacts:
    """Registry facts without creating anything: an absent registry manages nothing."""
    path = state_dir / DB_NAME
    if not path.exists() and not path.is_symlink():
        return RegistryFacts(workspace=workspace)
    with Registry.open(state_dir) as registry:
        return registry.facts(workspace)
