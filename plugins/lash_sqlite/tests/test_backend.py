"""What lash-sqlite promises beyond the shared contract: files, ids, locking, options, GC."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from lash_sqlite import SqliteBackend, SqliteTransaction, db_file_name

import lash
from lash.errors import BackendError, ConfigError
from lash.model import ActivePath, blob_ref_for

HOSTILE_IDS = ["../x", "../../etc/passwd", "/abs/path", "a\\b:c", "日本語のセッション", "ü" * 3, "a" * 1000, "..", "  "]


def _suffix(session_id: str) -> str:
    return "-" + hashlib.sha256(session_id.encode()).hexdigest()[:16] + ".db"


@pytest.mark.parametrize(
    ("session_id", "safe"),
    [
        ("root", "root"),
        ("agent-7_sub", "agent-7_sub"),
        ("../x", "x"),
        ("__a b__", "a_b"),
        ("日本語", "session"),
        ("a" * 1000, "a" * 80),
    ],
)
def test_file_name_is_safe_id_plus_sha256_prefix(session_id: str, safe: str) -> None:
    assert db_file_name(session_id) == safe + _suffix(session_id)


def test_ids_that_sanitise_alike_get_separate_files(config: dict) -> None:
    with lash.open(config) as handle:
        for session_id in ("a/b", "a?b"):
            session = handle.session(session_id)
            session.append_message("user", session_id)
            session.commit()
        assert handle.session("a/b").messages() == [{"role": "user", "content": "a/b"}]
        assert handle.session("a?b").messages() == [{"role": "user", "content": "a?b"}]


def test_hostile_ids_stay_inside_the_directory_and_list_exactly(tmp_path: Path, config: dict) -> None:
    sessions_dir = Path(config["store"]["options"]["path"])
    with lash.open(config) as handle:
        for session_id in HOSTILE_IDS:
            session = handle.session(session_id)
            session.append_message("user", "hi")
            session.commit()
        assert sorted(info.session_id for info in handle.sessions()) == sorted(HOSTILE_IDS)
    everything = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert everything and all(p.parent == sessions_dir for p in everything)
    assert len(list(sessions_dir.glob("*.db"))) == len(HOSTILE_IDS)


def test_list_sessions_reports_meta_and_summary(config: dict) -> None:
    with lash.open(config) as handle:
        session = handle.session("picker")
        session.append_message("user", "first question")
        session.append_message("assistant", "answer")
        session.append_message("user", "second question")
        session.commit()
        handle.session("empty")
        infos = {info.session_id: info for info in handle.sessions()}
    assert infos["picker"].first_user_message == "first question"
    assert infos["picker"].user_message_count == 2
    assert infos["picker"].head_revision == 1
    assert infos["empty"].head_revision is None


def test_delete_removes_the_database_and_its_sidecars(config: dict) -> None:
    backend = SqliteBackend(path=config["store"]["options"]["path"])
    store = backend.open_session("doomed")
    assert store is not None
    store.blobs.put(b"keeps the wal busy")
    path = backend.session_path("doomed")
    assert Path(f"{path}-wal").exists() and Path(f"{path}-shm").exists()
    store.close()
    reader = backend.open_session("doomed")  # an open connection keeps -wal/-shm alive
    assert backend.delete_session("doomed") is True
    reader.close()  # type: ignore[union-attr]
    assert list(path.parent.iterdir()) == []
    assert backend.open_session("doomed", create=False) is None
    assert backend.delete_session("doomed") is False


def test_open_without_create_does_not_make_a_file(sessions_dir: Path) -> None:
    backend = SqliteBackend(path=sessions_dir)
    assert backend.open_session("ghost", create=False) is None
    assert not sessions_dir.exists()
    assert backend.list_sessions() == []


def test_auto_gc_collects_old_execution_state_blobs(config: dict) -> None:
    config["gc"] = {"auto_every_commits": 3}
    with lash.open(config) as handle:
        session = handle.session("gc")
        refs = []
        for turn in range(3):
            session.set_execution_state(f"state {turn}".encode() * 100)
            refs.append(session.commit().manifest.execution_state_ref)
        blobs = session.store.blobs
        assert [blobs.has(ref) for ref in refs] == [False, False, True]
        assert len(list(blobs.refs())) == 2  # the head's manifest and its execution state


def test_a_writer_lock_held_too_long_is_a_backend_error_then_commits_resume(config: dict) -> None:
    config["store"]["options"]["busy_timeout"] = 0.1
    with lash.open(config) as handle:
        session = handle.session("locked")
        session.append_message("user", "before")
        session.commit()
        other = sqlite3.connect(handle.backend.session_path("locked"), isolation_level=None)  # type: ignore[attr-defined]
        other.execute("BEGIN IMMEDIATE")
        session.append_message("user", "while locked")
        with pytest.raises(BackendError, match="busy_timeout"):
            session.commit()
        other.execute("ROLLBACK")
        other.close()
        assert session.commit().head_revision == 2
        assert len(handle.session("locked").messages()) == 2


def test_blobs_written_by_a_failed_commit_are_rolled_back_with_it(
    config: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    with lash.open(config) as handle:
        session = handle.session("atomic")
        session.append_message("user", "kept")
        session.commit()
        state = b"never committed" * 100

        def fail(self: SqliteTransaction, revision: int, data: bytes) -> None:
            raise OSError("disk pulled out mid-commit")

        monkeypatch.setattr(SqliteTransaction, "write_head", fail)
        session.set_execution_state(state)
        session.append_message("user", "lost")
        with pytest.raises(OSError):
            session.commit()
        monkeypatch.undo()
        assert not session.store.blobs.has(blob_ref_for(state))
        read = session.store.load_session(ActivePath())
        assert read is not None and read.head_revision == 1 and len(read.graph.nodes) == 1
        assert len(list(session.store.blobs.refs())) == 1  # only the first commit's manifest


@pytest.mark.parametrize(
    "options",
    [{"synchronous": "sometimes"}, {"busy_timeout": -1}, {"blob_profile": "tiny"}, {"journal": "delete"}],
)
def test_bad_options_are_config_errors(config: dict, options: dict) -> None:
    config["store"]["options"].update(options)
    with pytest.raises(ConfigError):
        lash.open(config)


def test_synchronous_full_is_accepted_and_durable(config: dict) -> None:
    config["store"]["options"]["synchronous"] = "full"
    with lash.open(config) as handle:
        session = handle.session("fsynced")
        session.append_message("user", "safe")
        session.commit()
    with lash.open(config) as handle:
        assert handle.session("fsynced").messages() == [{"role": "user", "content": "safe"}]


def test_write_many_says_exactly_which_blobs_were_new(tmp_path: Path) -> None:
    from lash_sqlite import sqlite_blob_store

    storage = sqlite_blob_store(path=tmp_path / "blobs.db").storage
    old, new = blob_ref_for(b"old"), blob_ref_for(b"new")
    assert storage.write_many([(old, b"o")]) == [True]
    assert storage.write_many([(new, b"n"), (old, b"o"), (new, b"n")]) == [True, False, False]
    assert {b.ref for b in storage.list()} == {old, new}
