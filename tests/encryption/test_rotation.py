"""Key rotation: old data stays readable while its key is available; ``lash rekey`` moves it to the new key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import lash
from lash.cli import main
from lash.encryption import Sealed, rekey
from lash.errors import KeyUnavailableError
from lash.keys import generate_key


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Two master keys, ``k1`` (old) and ``k2`` (new), in their own environment variables."""
    values = {"k1": generate_key(), "k2": generate_key()}
    monkeypatch.setenv("LASH_KEY_K1", values["k1"])
    monkeypatch.setenv("LASH_KEY_K2", values["k2"])
    return values


def rotation(key_id: str, *available: str) -> dict[str, Any]:
    """``[encryption]`` writing with ``key_id``, able to read ``available`` key ids."""
    return {
        "key_provider": "env",
        "key_id": key_id,
        "options": {"keys": {k: f"LASH_KEY_{k.upper()}" for k in available}},
    }


def key_ids_in_store(raw_sqlite: Any, session_id: str) -> set[str]:
    """The key id of every record of a session (head, meta, nodes, ledger), read from the raw rows."""
    ids = set()
    for table in ("head", "meta", "nodes", "ledger"):
        ids |= {Sealed.parse(row[0], table).key_id for row in raw_sqlite.rows(session_id, f"SELECT data FROM {table}")}
    return ids


def live_blob_key_ids(handle: lash.Lash, session_id: str) -> set[str]:
    store = handle.backend.open_session(session_id, create=False)
    try:
        head = store.load_head()
        return {store.blobs.key_id_of(ref) for ref in (head.checkpoint_ref, *head.manifest.blob_refs())}
    finally:
        store.close()


def test_old_data_stays_readable_after_rotation_and_new_data_uses_the_new_key(
    sqlite_config: Any, keys: dict[str, str], secrets: Any, raw_sqlite: Any
) -> None:
    with lash.open(sqlite_config(rotation("k1", "k1"))) as handle:
        secrets.record(handle)
    with lash.open(sqlite_config(rotation("k2", "k1", "k2"))) as handle:
        secrets.check(handle)
        session = handle.session("vault")
        session.append_message("user", "after rotation")
        session.record_usage("agent", secrets.model, lash.TokenUsage(input_tokens=1))
        session.commit()
        session.close()
        store = handle.backend.open_session("vault")
        head = store.load_head()
        assert store.blobs.key_id_of(head.checkpoint_ref) == "k2"  # written by this commit
        assert store.blobs.key_id_of(head.manifest.execution_state_ref) == "k2"
        assert store.blobs.key_id_of(head.manifest.tool_state_ref) == "k1"  # unchanged tools: the blob is reused
        store.close()
        usage = handle.session("vault").usage_report().entries
    assert key_ids_in_store(raw_sqlite, "vault") == {"k1", "k2"}
    assert [(e.model, e.usage.input_tokens) for e in usage] == [(secrets.model, 13)]  # one ledger row, merged
    assert len(raw_sqlite.rows("vault", "SELECT * FROM ledger")) == 1


def test_rekey_moves_every_record_and_blob_to_the_new_key_and_the_old_key_can_go(
    sqlite_config: Any, keys: dict[str, str], secrets: Any, raw_sqlite: Any
) -> None:
    with lash.open(sqlite_config(rotation("k1", "k1"))) as handle:
        secrets.record(handle)
        session = handle.session("vault")
        branch_point = session.graph.leaf_node_id
        session.append_message("user", "an abandoned branch")
        session.commit()
        session.checkout(branch_point)
        session.commit()
        session.close()
        handle.backend.open_session("vault").tombstone_nodes(handle.session("vault").graph.orphaned_node_ids())
        before = handle.session("vault").graph.active_path()
    with lash.open(sqlite_config(rotation("k2", "k1", "k2"))) as handle:
        report = rekey(handle.backend)
        assert (report.session_count, report.rekeyed_session_count, report.blob_count) == (1, 1, 3)
        handle.gc()
        assert rekey(handle.backend).rekeyed_session_count == 0  # idempotent: nothing left under k1
    assert key_ids_in_store(raw_sqlite, "vault") == {"k2"}
    assert raw_sqlite.rows("vault", "SELECT count(*) FROM nodes WHERE tombstoned = 1") == [(0,)]
    with lash.open(sqlite_config(rotation("k2", "k2"))) as handle:  # k1 is gone for good
        secrets.check(handle)
        assert handle.session("vault").graph.active_path() == before
        assert live_blob_key_ids(handle, "vault") == {"k2"}
        store = handle.backend.open_session("vault")
        assert {store.blobs.key_id_of(ref) for ref in store.blobs.refs()} == {"k2"}  # old blobs collected
        store.close()


def test_a_rotated_away_key_names_the_session_and_the_key_id(
    sqlite_config: Any, keys: dict[str, str], secrets: Any, raw_sqlite: Any
) -> None:
    with lash.open(sqlite_config(rotation("k1", "k1"))) as handle:
        secrets.record(handle)
    before = raw_sqlite.all_bytes()
    with lash.open(sqlite_config(rotation("k2", "k2"))) as handle:
        with pytest.raises(KeyUnavailableError) as info:
            handle.session("vault")
        assert "session 'vault' is encrypted with key id 'k1'" in str(info.value)
        assert "known: 'k2'" in str(info.value)
        with pytest.raises(KeyUnavailableError, match="'k1'"):
            rekey(handle.backend)  # nothing to decrypt the old records with: nothing changes
    assert raw_sqlite.all_bytes() == before


def test_lash_rekey_command_reports_and_collects_old_blobs(
    tmp_path: Path, keys: dict[str, str], secrets: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "lash.toml"

    def write_config(key_id: str) -> None:
        config.write_text(
            '[store]\nbackend = "sqlite"\noptions = { path = "s" }\n'
            f'[encryption]\nkey_provider = "env"\nkey_id = "{key_id}"\n'
            'options = { keys = { k1 = "LASH_KEY_K1", k2 = "LASH_KEY_K2" } }\n'
        )

    write_config("k1")
    with lash.open(config) as handle:
        secrets.record(handle, "a")
        secrets.record(handle, "b")
    write_config("k2")
    capsys.readouterr()
    assert main(["--config", str(config), "rekey", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["key_id"] == "k2"
    assert (report["session_count"], report["rekeyed_session_count"], report["blob_count"]) == (2, 2, 6)
    assert report["gc"]["deleted_blob_count"] == 6
    assert main(["--config", str(config), "rekey"]) == 0
    assert "re-encrypted 0 of 2 sessions under key id 'k2'" in capsys.readouterr().out


def test_a_session_open_during_rekey_commits_afterwards_without_conflict(
    sqlite_config: Any, keys: dict[str, str], secrets: Any
) -> None:
    with lash.open(sqlite_config(rotation("k1", "k1"))) as handle:
        secrets.record(handle)
    with lash.open(sqlite_config(rotation("k2", "k1", "k2"))) as handle:
        agent = handle.session("vault")  # an agent mid-conversation, at the revision before rekey
        assert rekey(handle.backend).rekeyed_session_count == 1
        agent.append_message("user", "still here")
        agent.commit()  # same revision: no conflict, and the new head builds on the re-keyed one
        agent.close()
    with lash.open(sqlite_config(rotation("k2", "k2"))) as handle:
        secrets.check(handle)
        assert handle.session("vault").messages()[-1]["content"] == "still here"
