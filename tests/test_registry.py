"""The SQLite registry: schema migrations, WAL mode, inventory and the hash cache."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mlxstate.errors import MlxError
from mlxstate.registry import (
    DB_NAME,
    MIGRATIONS,
    DedupRecord,
    LinkRecord,
    Registry,
    RegistryFacts,
    read_facts,
)


def _pragma(db: Path, name: str) -> object:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def test_open_creates_a_wal_database_at_the_latest_schema(tmp_path: Path) -> None:
    state = tmp_path / "state" / "nested"
    with Registry.open(state) as registry:
        assert registry.path == state / DB_NAME
        assert registry.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert registry.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        tables = {
            row[0]
            for row in registry.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        assert {"models", "links", "dedups", "hashes"} <= tables
        assert registry.facts() == RegistryFacts()
    db = state / DB_NAME
    assert db.is_file()
    assert _pragma(db, "journal_mode") == "wal"  # persistent: a property of the file
    assert _pragma(db, "user_version") == len(MIGRATIONS)


def test_reopen_is_idempotent_and_keeps_data(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as registry:
        registry.add_model("ollama://qwen2.5:7b", "qwen")
    for _ in range(2):
        with Registry.open(tmp_path) as registry:
            assert registry.conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
            assert [m.source for m in registry.facts().models] == ["ollama://qwen2.5:7b"]


def test_models_links_and_dedups_show_in_facts(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as registry:
        registry.add_model("hf://org/b", "b", revision="a" * 40)
        registry.add_model("ollama://a:1", "a")
        registry.add_model("ollama://a:1", "a-renamed")  # replaces, no duplicate row
        link = tmp_path / "lms" / "org" / "a" / "a.gguf"
        target = tmp_path / "blobs" / "sha256-abc"
        registry.add_link(link, target, "lmstudio", "a")
        dup = tmp_path / "hub" / "blob"
        canonical = tmp_path / "blobs" / "sha256-def"
        registry.add_dedup(dup, canonical, "d" * 64, "hardlink", 1, 2, 3, 4)

        facts = registry.facts()
        assert [(m.source, m.name, m.revision) for m in facts.models] == [
            ("hf://org/b", "b", "a" * 40),
            ("ollama://a:1", "a-renamed", None),
        ]
        assert all(m.installed_at > 0 for m in facts.models)
        assert facts.links == (LinkRecord(link, target, "lmstudio", "a"),)
        assert facts.dedups == (DedupRecord(dup, canonical, "d" * 64, "hardlink"),)
        assert facts.find("ollama://A:1") and not facts.find("ollama://x:1")
        assert facts.managed_keys() == {"hf://org/b", "ollama://a:1"}

        registry.remove_model("ollama://a:1")
        registry.remove_link(link)
        after = registry.facts()
        assert [m.source for m in after.models] == ["hf://org/b"]
        assert after.links == ()
        assert after.dedups == facts.dedups

    # Written in autocommit mode: another connection sees it.
    assert [m.source for m in read_facts(tmp_path).models] == ["hf://org/b"]


def test_transaction_rolls_back_on_error(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as registry:
        with pytest.raises(RuntimeError), registry.transaction():
            registry.add_model("ollama://a:1", "a")
            raise RuntimeError("boom")
        assert registry.facts().models == ()
        with registry.transaction():
            registry.add_model("ollama://a:1", "a")
        assert len(registry.facts().models) == 1


def test_database_from_the_future_is_refused(tmp_path: Path) -> None:
    with Registry.open(tmp_path):
        pass
    conn = sqlite3.connect(tmp_path / DB_NAME)
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(MlxError) as caught:
        Registry.open(tmp_path)
    assert "newer mlxstate" in caught.value.message
    assert str(len(MIGRATIONS) + 1) in caught.value.message
    with pytest.raises(MlxError):
        read_facts(tmp_path)


def test_read_facts_on_a_missing_state_dir_creates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert read_facts(state) == RegistryFacts()
    assert not state.exists()
    state.mkdir()
    assert read_facts(state) == RegistryFacts()
    assert list(state.iterdir()) == []


def test_hash_cache_roundtrip(tmp_path: Path) -> None:
    digest = "e" * 64
    with Registry.open(tmp_path) as registry:
        assert registry.cached_hash(1, 2, 3, 4) is None
        registry.remember_hash(1, 2, 3, 4, digest)
        assert registry.cached_hash(1, 2, 3, 4) == digest
        # Any part of the key changing is a miss.
        assert registry.cached_hash(1, 2, 3, 5) is None
        assert registry.cached_hash(1, 2, 4, 4) is None
        assert registry.cached_hash(9, 2, 3, 4) is None
        registry.remember_hash(1, 2, 3, 4, "f" * 64)  # replaces
        assert registry.cached_hash(1, 2, 3, 4) == "f" * 64
        big = 2**62  # inode numbers and mtime_ns need 64-bit integers
        registry.remember_hash(big, big + 1, big + 2, big + 3, digest)
    with Registry.open(tmp_path) as registry:
        assert registry.cached_hash(1, 2, 3, 4) == "f" * 64
        assert registry.cached_hash(big, big + 1, big + 2, big + 3) == digest


# --- ownership per workspace ----------------------------------------------------------------


def test_owners_claims_and_releases(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as registry:
        registry.add_model("ollama://a:1", "a", None, "home-1")
        assert registry.claim("ollama://A:1", "work-2", "alias")  # Ollama names: any case
        assert not registry.claim("ollama://nope:1", "work-2", "x")  # not managed: no claim
        model = registry.facts("home-1").models[0]
        assert model.owners == (("home-1", "a"), ("work-2", "alias"))
        assert model.name_in("work-2") == "alias"
        assert not registry.release("ollama://a:1", "home-1")  # work-2 still owns it
        assert [m.owner_names for m in registry.facts().models] == [("work-2",)]
        assert registry.release("ollama://a:1", "work-2")  # the last owner: unmanaged now
        assert registry.facts().models == ()


def test_hf_rows_match_exactly_as_on_disk(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as registry:
        registry.add_model("hf://org/model", "m", None, "ws")
        registry.add_model("hf://Org/Model", "M", None, "ws")
        assert {m.source for m in registry.facts().models} == {"hf://org/model", "hf://Org/Model"}
        registry.remove_model("hf://Org/Model")
        assert [m.source for m in registry.facts().models] == ["hf://org/model"]


def test_owned_is_this_workspaces_only(tmp_path: Path) -> None:
    with Registry.open(tmp_path) as registry:
        registry.add_model("ollama://a:1", "a", None, "mine")
        registry.add_model("ollama://b:1", "b", None, "theirs")
        registry.add_model("ollama://c:1", "c")  # legacy
        assert [m.source for m in registry.facts("mine").owned()] == ["ollama://a:1"]
        assert registry.facts(None).owned() == ()


def test_a_v2_registry_migrates_to_legacy_owners(tmp_path: Path) -> None:
    """Rows from before workspaces are owned by nobody in particular: no file prunes them
    until one that declares them claims them."""
    db = tmp_path / DB_NAME
    conn = sqlite3.connect(db, isolation_level=None)
    for index, script in enumerate(MIGRATIONS[:2]):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {index + 1};\nCOMMIT;")
    conn.execute("INSERT INTO models VALUES ('ollama://old:1', 'old', NULL, 1.0)")
    conn.execute("INSERT INTO links VALUES ('/a/l', '/t', 'app', 'old', 1.0)")
    conn.close()
    with Registry.open(tmp_path) as registry:
        facts = registry.facts("mine")
        assert facts.models[0].owners == (("", "old"),)
        assert facts.owned() == ()
        assert facts.links[0].workspace == ""
        assert facts.links_of_mine() == facts.links  # legacy links: any workspace's app may
        assert registry.claim("ollama://old:1", "mine", "old")
        assert registry.facts("mine").models[0].owners == (("mine", "old"),)  # legacy dropped


@pytest.mark.parametrize("kind", ["garbage", "directory", "state-file"])
def test_a_hostile_registry_is_one_clear_error(tmp_path: Path, kind: str) -> None:
    state = tmp_path / "state"
    if kind == "garbage":
        state.mkdir()
        (state / DB_NAME).write_bytes(b"this is not sqlite\x00" * 100)
    elif kind == "directory":
        (state / DB_NAME).mkdir(parents=True)
    else:
        state.write_text("a file where the state folder should be")
    with pytest.raises(MlxError) as info:
        Registry.open(state)
    assert "\n" not in info.value.message
    assert str(state) in info.value.message


@pytest.mark.parametrize("what", ["lock-dir", "journal-dir", "lock-symlink", "journal-garbage"])
def test_hostile_state_files_are_one_clear_error_or_ignored(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, what: str
) -> None:
    """The lock and the journal are mlx's own files, but what sits at their paths is
    untrusted: a folder, a planted symlink, bytes that are not JSON lines."""
    from tests.helpers import mlx, state_dir

    state = state_dir()
    state.mkdir(parents=True)
    outside = tmp_path / "outside.txt"
    outside.write_text("not mlx's")
    if what == "lock-dir":
        (state / "apply.lock").mkdir()
    elif what == "journal-dir":
        (state / "journal.jsonl").mkdir()
    elif what == "lock-symlink":
        (state / "apply.lock").symlink_to(outside)
    else:
        (state / "journal.jsonl").write_bytes(
            b'\xff\xfe{"run": 1}\n[1, 2]\n{"event": 7}\n' + b"[" * 100_000 + b"\n"
            b'{"run": "r", "event": "run", "time": "soon"}\n'
            b'{"run": "r", "event": "started", "action": ["x"]}\n'
        )
    (tmp_path / "mlx.yaml").write_text("version: 1\nmodels: {}\n")
    result = mlx(capsys, "apply", "-y")
    assert "Traceback" not in result.err and "internal error" not in result.err
    if what == "journal-garbage":
        assert result.code == 0, result.err
    else:
        assert result.code == 1, result.err
        assert len(result.err.strip().splitlines()) <= 2  # error: … and hint: …
    assert outside.read_text() == "not mlx's"
