"""The bytes lash-sqlite keeps: compressed node records, the schema version stamp, freed pages."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from lash_sqlite import SqliteBackend
from lash_sqlite.schema import SCHEMA_VERSION

import lash
from lash import codec
from lash.keys import generate_key

LONG = "Agents talk at length about files, tests and the state of the build. " * 30  # ~2.1 KiB, compresses well


def _open(sessions_dir: Path, profile: str) -> lash.Lash:
    options = {"path": str(sessions_dir), "blob_profile": profile}
    return lash.open({"store": {"backend": "sqlite", "options": options}, "gc": {"auto_every_commits": 0}})


def _write_turns(handle: lash.Lash, count: int, session_id: str = "s") -> None:
    session = handle.session(session_id)
    for turn in range(count):
        session.append_message("user", f"short question {turn}")
        session.append_message("assistant", f"{turn}: {LONG}")
        session.commit()


def _rows(db_file: Path) -> list[bytes]:
    with sqlite3.connect(db_file) as conn:
        return [row[0] for row in conn.execute("SELECT data FROM nodes ORDER BY seq")]


def _pragma(db_file: Path, name: str) -> int:
    conn = sqlite3.connect(db_file)
    try:
        return conn.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        conn.close()


def _expected(count: int) -> list[dict]:
    return [
        message
        for turn in range(count)
        for message in (
            {"role": "user", "content": f"short question {turn}"},
            {"role": "assistant", "content": f"{turn}: {LONG}"},
        )
    ]


def test_balanced_compresses_long_node_records_and_any_profile_reads_them(sessions_dir: Path) -> None:
    with _open(sessions_dir, "balanced") as handle:
        _write_turns(handle, 3)
    db_file = SqliteBackend(path=sessions_dir).session_path("s")
    short, long = _rows(db_file)[:2]
    assert not short.startswith(codec.COMPRESSED_MAGIC)  # under 2 KiB: not worth a decompression per resume
    assert long.startswith(codec.COMPRESSED_MAGIC) and len(long) < len(LONG) // 2
    for profile in ("low_latency", "balanced", "compact"):
        with _open(sessions_dir, profile) as handle:
            assert handle.session("s").messages() == _expected(3)
            assert handle.session("s", residency="active_path").messages() == _expected(3)


def test_low_latency_stores_node_records_uncompressed(sessions_dir: Path) -> None:
    with _open(sessions_dir, "low_latency") as handle:
        _write_turns(handle, 2)
    rows = _rows(SqliteBackend(path=sessions_dir).session_path("s"))
    assert rows and not any(row.startswith(codec.COMPRESSED_MAGIC) for row in rows)


def test_a_version_1_file_opens_reads_and_is_stamped_the_current_version(sessions_dir: Path) -> None:
    with _open(sessions_dir, "low_latency") as handle:
        _write_turns(handle, 2)
    db_file = SqliteBackend(path=sessions_dir).session_path("s")
    conn = sqlite3.connect(db_file, isolation_level=None)  # as version 1 made it: no auto-vacuum, stamp 1
    conn.execute("PRAGMA auto_vacuum = NONE")
    conn.execute("VACUUM")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    with _open(sessions_dir, "balanced") as handle:
        assert handle.session("s").messages() == _expected(2)
        _write_turns(handle, 1, "s")  # appends compressed records after the old ones
        assert handle.session("s").messages()[-1] == {"role": "assistant", "content": f"0: {LONG}"}
        assert handle.gc().deleted_blob_count >= 1  # pages freed without auto-vacuum stay free: no error
    assert _pragma(db_file, "user_version") == SCHEMA_VERSION == 2


def test_gc_gives_the_pages_of_deleted_blobs_back_to_the_file_system(sessions_dir: Path) -> None:
    with _open(sessions_dir, "balanced") as handle:
        session = handle.session("s")
        for turn in range(40):
            session.set_execution_state(bytes([turn]) * 20_000)  # 40 states of 20 KB: ~200 pages
            session.commit()
        db_file = handle.backend.session_path("s")
        grown = _pragma(db_file, "page_count")
        report = session.store.gc_unreachable()
        assert report.deleted_blob_count == 39 + 39  # every old execution state and manifest
        assert _pragma(db_file, "freelist_count") == 0
        assert _pragma(db_file, "page_count") < grown / 4
        assert session.execution_state == bytes([39]) * 20_000
    with _open(sessions_dir, "balanced") as handle:
        assert handle.session("s").execution_state == bytes([39]) * 20_000


@pytest.mark.parametrize("profile", ["balanced", "compact"])
def test_encrypted_sessions_store_sealed_records_that_compression_leaves_alone(
    sessions_dir: Path, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LASH_MASTER_KEY", generate_key())
    config = {
        "store": {"backend": "sqlite", "options": {"path": str(sessions_dir), "blob_profile": profile}},
        "encryption": {"key_provider": "env"},
    }
    with lash.open(config) as handle:
        _write_turns(handle, 2)
    rows = _rows(SqliteBackend(path=sessions_dir).session_path("s"))
    assert rows and all(row.startswith(codec.ENCRYPTED_MAGIC) for row in rows)
    with lash.open(config) as handle:
        assert handle.session("s").messages() == _expected(2)


def test_a_standalone_blob_store_gives_deleted_pages_back(tmp_path: Path) -> None:
    from lash_sqlite import sqlite_blob_store

    store = sqlite_blob_store(path=tmp_path / "blobs.db", blob_profile="low_latency")
    refs = [store.put(bytes([n]) * 20_000) for n in range(20)]
    assert store.delete(refs[1:]) == 19
    assert _pragma(tmp_path / "blobs.db", "freelist_count") == 0
    assert store.get(refs[0]) == bytes([0]) * 20_000
