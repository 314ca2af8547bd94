"""Damaged files give a clear lash error and are never "repaired" by overwriting them."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from lash_sqlite import SqliteBackend
from lash_sqlite.schema import SCHEMA_VERSION

import lash
from lash.blobs import BlobProfile, seal
from lash.codec import pack
from lash.errors import BlobIntegrityError, CorruptRecordError, LashError, SchemaVersionError
from lash.model import BlobKind

SESSION = "damaged"


def _raw(path: Path, *statements: tuple[str, tuple]) -> None:
    """Run SQL on the file with plain sqlite3, behind lash's back."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            for sql, params in statements:
                conn.execute(sql, params)
    finally:
        conn.close()


@pytest.fixture
def db_file(config: dict, sessions_dir: Path) -> Path:
    """A session file with a few committed turns and no open connection."""
    with lash.open(config) as handle:
        session = handle.session(SESSION)
        for turn in range(30):
            session.append_message("user", f"question {turn} " * 40)
            session.append_message("assistant", f"answer {turn} " * 80)
            session.set_execution_state(os.urandom(4096))
            session.commit()
    return SqliteBackend(path=sessions_dir).session_path(SESSION)


def _open_and_load(config: dict) -> None:
    with lash.open(config) as handle:
        handle.session(SESSION)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(3 * 4096))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _foreign_sqlite(path: Path) -> None:
    path.unlink()
    _raw(path, ("CREATE TABLE notes (text TEXT)", ()), ("INSERT INTO notes VALUES ('not lash')", ()))


@pytest.mark.parametrize("damage", [_truncate, _garbage, _empty, _foreign_sqlite])
def test_unreadable_file_is_a_lash_error_and_left_untouched(
    config: dict, db_file: Path, damage: Callable[[Path], None]
) -> None:
    damage(db_file)
    before = db_file.read_bytes()
    with pytest.raises(CorruptRecordError, match=db_file.name):
        _open_and_load(config)
    assert db_file.read_bytes() == before


def test_tampered_blob_row_fails_integrity_and_is_left_untouched(config: dict, db_file: Path) -> None:
    backend = SqliteBackend(path=db_file.parent)
    store = backend.open_session(SESSION, create=False)
    assert store is not None
    ref = store.load_head().manifest.execution_state_ref  # type: ignore[union-attr]
    store.close()
    envelope = seal(b"someone else's state", BlobKind.EXECUTION_STATE, (), BlobProfile.LOW_LATENCY)
    _raw(db_file, ("UPDATE blobs SET envelope = ? WHERE ref = ?", (envelope, ref)))
    before = db_file.read_bytes()
    with pytest.raises(BlobIntegrityError) as caught:
        _open_and_load(config)
    assert caught.value.ref == ref
    assert db_file.read_bytes() == before


def test_head_record_from_a_newer_lash_is_a_schema_error_and_left_untouched(config: dict, db_file: Path) -> None:
    _raw(db_file, ("UPDATE head SET data = ? WHERE id = 1", (pack([99, {"from": "the future"}]),)))
    before = db_file.read_bytes()
    with pytest.raises(SchemaVersionError) as caught:
        _open_and_load(config)
    assert caught.value.found == 99
    assert db_file.read_bytes() == before


def test_database_from_a_newer_lash_is_refused_before_any_read(config: dict, db_file: Path) -> None:
    _raw(db_file, ("PRAGMA user_version = 7", ()))
    before = db_file.read_bytes()
    with pytest.raises(SchemaVersionError, match=db_file.name) as caught:
        SqliteBackend(path=db_file.parent).open_session(SESSION)
    assert (caught.value.found, caught.value.supported) == (7, SCHEMA_VERSION)
    assert db_file.read_bytes() == before


def test_listing_sessions_with_a_damaged_file_names_it(config: dict, db_file: Path) -> None:
    _garbage(db_file)
    with lash.open(config) as handle, pytest.raises(LashError, match=db_file.name):
        handle.sessions()
