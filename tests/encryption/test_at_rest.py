"""With ``[encryption]`` on, nothing readable reaches storage, and everything reads back exactly."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

import lash
from lash.codec import ENCRYPTED_MAGIC
from lash.errors import BlobIntegrityError, DecryptionError
from lash.keys import generate_key


def test_no_plaintext_of_a_session_reaches_the_sqlite_files(
    sqlite_config: Any, env_encryption: dict[str, Any], master_key: str, secrets: Any, raw_sqlite: Any
) -> None:
    with lash.open(sqlite_config(env_encryption)) as handle:
        secrets.record(handle)
        open_session = handle.session("still-open")
        open_session.append_message("user", secrets.message)
        open_session.commit()
        # While its connection is open, the session's new pages sit in its -wal file: scan it too.
        assert any(p.name.endswith("-wal") and p.stat().st_size for p in raw_sqlite.sessions_dir.iterdir())
        assert secrets.found_in(raw_sqlite.all_bytes()) == []
    assert secrets.found_in(raw_sqlite.all_bytes()) == []
    with lash.open(sqlite_config(env_encryption)) as handle:
        secrets.check(handle)


def test_the_same_session_without_encryption_does_store_plaintext(
    sqlite_config: Any, secrets: Any, raw_sqlite: Any
) -> None:
    """The scanner finds what it looks for, so its silence above means something."""
    with lash.open(sqlite_config()) as handle:
        secrets.record(handle)
    assert set(secrets.found_in(raw_sqlite.all_bytes())) == {"message", "tool", "model", "execution state"}


def test_every_stored_record_is_sealed_and_only_ids_stay_clear(
    sqlite_config: Any, env_encryption: dict[str, Any], master_key: str, secrets: Any, raw_sqlite: Any
) -> None:
    with lash.open(sqlite_config(env_encryption)) as handle:
        secrets.record(handle)
        leaf = handle.session("vault").graph.leaf_node_id
    for table in ("head", "meta", "nodes", "ledger"):
        for (data,) in raw_sqlite.rows("vault", f"SELECT data FROM {table}"):
            assert data.startswith(ENCRYPTED_MAGIC), table
    for (envelope,) in raw_sqlite.rows("vault", "SELECT envelope FROM blobs"):
        assert envelope.startswith(ENCRYPTED_MAGIC)
    assert [leaf] == [r[0] for r in raw_sqlite.rows("vault", "SELECT node_id FROM nodes WHERE node_id = ?", (leaf,))]
    ledger_keys = raw_sqlite.rows("vault", "SELECT source, model FROM ledger")
    assert ledger_keys and all(model == "" and len(source) == 64 for source, model in ledger_keys)


def test_sessions_under_one_key_share_blobs_but_refs_reveal_nothing_across_keys(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    tools = {"name": "shared_tool", "description": "the same catalogue " * 100}

    def tool_ref(key: str, session_ids: list[str]) -> list[str]:
        monkeypatch.setenv("LASH_MASTER_KEY", key)
        refs = []
        config = {"store": {"backend": "memory"}, "encryption": {"key_provider": "env"}}
        with lash.open(config) as handle:
            for session_id in session_ids:
                session = handle.session(session_id)
                session.tools.register(tools)
                refs.append(session.commit().manifest.tool_state_ref)
            assert sum(1 for _ in handle.backend.blobs.refs()) == 2  # one tool state + one manifest... per key
        return refs

    tenant_a = tool_ref(generate_key(), ["a1", "a2"])
    tenant_b = tool_ref(generate_key(), ["b1"])
    assert tenant_a[0] == tenant_a[1]  # deduplicated within the key's domain
    assert tenant_b[0] != tenant_a[0]  # equal content under two keys: unrelated refs
    with lash.open({"store": {"backend": "memory"}}) as plain:
        session = plain.session("p")
        session.tools.register(tools)
        plain_ref = session.commit().manifest.tool_state_ref
    assert plain_ref not in (tenant_a[0], tenant_b[0])  # a ref does not confirm a guess of the content
    assert all(r.startswith("sha256:") and len(r) == 71 for r in (*tenant_a, *tenant_b))


def test_a_tampered_blob_raises_integrity_error_naming_the_ref(
    sqlite_config: Any, env_encryption: dict[str, Any], master_key: str, secrets: Any, raw_sqlite: Any
) -> None:
    with lash.open(sqlite_config(env_encryption)) as handle:
        result = secrets.record(handle)
    ref = result.manifest.execution_state_ref
    (envelope,) = raw_sqlite.rows("vault", "SELECT envelope FROM blobs WHERE ref = ?", (ref,))[0]
    flipped = envelope[:-1] + bytes([envelope[-1] ^ 1])
    assert raw_sqlite.write("vault", "UPDATE blobs SET envelope = ? WHERE ref = ?", (flipped, ref)) == 1
    with lash.open(sqlite_config(env_encryption)) as handle:
        store = handle.backend.open_session("vault", create=False)
        with pytest.raises(BlobIntegrityError) as info:
            store.blobs.get(ref)
        store.close()
        assert info.value.ref == ref
        assert isinstance(info.value, DecryptionError)
        assert "altered" in str(info.value)
        with pytest.raises(BlobIntegrityError, match=ref):
            handle.session("vault")


def test_a_blob_swapped_for_another_blobs_ciphertext_is_refused(
    sqlite_config: Any, env_encryption: dict[str, Any], master_key: str, secrets: Any, raw_sqlite: Any
) -> None:
    with lash.open(sqlite_config(env_encryption)) as handle:
        result = secrets.record(handle)
    target, other = result.manifest.execution_state_ref, result.manifest.tool_state_ref
    (other_envelope,) = raw_sqlite.rows("vault", "SELECT envelope FROM blobs WHERE ref = ?", (other,))[0]
    raw_sqlite.write("vault", "UPDATE blobs SET envelope = ? WHERE ref = ?", (other_envelope, target))
    with lash.open(sqlite_config(env_encryption)) as handle:
        store = handle.backend.open_session("vault", create=False)
        with pytest.raises(BlobIntegrityError) as info:
            store.blobs.get(target)
        store.close()
    assert info.value.ref == target and "moved" in str(info.value)


def test_a_tampered_node_record_names_the_session_and_node(
    sqlite_config: Any, env_encryption: dict[str, Any], master_key: str, secrets: Any, raw_sqlite: Any
) -> None:
    with lash.open(sqlite_config(env_encryption)) as handle:
        secrets.record(handle)
    node_id, data = raw_sqlite.rows("vault", "SELECT node_id, data FROM nodes ORDER BY seq LIMIT 1")[0]
    raw_sqlite.write("vault", "UPDATE nodes SET data = ? WHERE node_id = ?", (data[:-1] + b"\x00", node_id))
    with lash.open(sqlite_config(env_encryption)) as handle:
        store = handle.backend.open_session("vault", create=False)
        with pytest.raises(DecryptionError) as info:
            store.load_node(node_id)
        store.close()
    assert "'vault'" in str(info.value) and repr(node_id) in str(info.value)


def test_a_record_copied_into_another_session_is_refused(
    sqlite_config: Any, env_encryption: dict[str, Any], master_key: str, secrets: Any, raw_sqlite: Any
) -> None:
    with lash.open(sqlite_config(env_encryption)) as handle:
        secrets.record(handle, "alice")
        secrets.record(handle, "mallory")
    (alice_head,) = raw_sqlite.rows("alice", "SELECT data FROM head")[0]
    raw_sqlite.write("mallory", "UPDATE head SET data = ?", (alice_head,))
    with lash.open(sqlite_config(env_encryption)) as handle, pytest.raises(DecryptionError, match="'mallory'"):
        handle.session("mallory")


def test_a_node_record_moved_to_another_node_id_is_refused(
    sqlite_config: Any, env_encryption: dict[str, Any], master_key: str, secrets: Any, raw_sqlite: Any
) -> None:
    with lash.open(sqlite_config(env_encryption)) as handle:
        secrets.record(handle)
    (_, first_data), (second, _) = raw_sqlite.rows("vault", "SELECT node_id, data FROM nodes ORDER BY seq")[:2]
    raw_sqlite.write("vault", "UPDATE nodes SET data = ? WHERE node_id = ?", (first_data, second))
    with lash.open(sqlite_config(env_encryption)) as handle:
        store = handle.backend.open_session("vault", create=False)
        with pytest.raises(DecryptionError, match="slot"):
            store.load_node(second)
        store.close()


def test_a_wrong_key_names_the_session_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
    sqlite_config: Any,
    env_encryption: dict[str, Any],
    master_key: str,
    secrets: Any,
    raw_sqlite: Any,
) -> None:
    with lash.open(sqlite_config(env_encryption)) as handle:
        secrets.record(handle)
    before = raw_sqlite.all_bytes()
    monkeypatch.setenv("LASH_MASTER_KEY", generate_key())
    with lash.open(sqlite_config(env_encryption)) as handle:
        with pytest.raises(DecryptionError) as info:
            handle.session("vault")
        assert "head of session 'vault'" in str(info.value)
        assert "not the key it was written with" in str(info.value)
    assert raw_sqlite.all_bytes() == before
    monkeypatch.setenv("LASH_MASTER_KEY", master_key)
    with lash.open(sqlite_config(env_encryption)) as handle:
        secrets.check(handle)


def test_encrypted_data_opened_without_encryption_is_a_clear_error(
    sqlite_config: Any, env_encryption: dict[str, Any], master_key: str, secrets: Any
) -> None:
    with lash.open(sqlite_config(env_encryption)) as handle:
        result = secrets.record(handle)
    with lash.open(sqlite_config()) as handle:
        with pytest.raises(DecryptionError, match=r"head of session 'vault'.*\[encryption\] is not configured"):
            handle.session("vault")
        store = handle.backend.open_session("vault", create=False)
        with pytest.raises(DecryptionError, match=result.checkpoint_ref):
            store.blobs.get(result.checkpoint_ref)
        store.close()


def test_plaintext_data_opened_with_encryption_on_is_refused(
    sqlite_config: Any, env_encryption: dict[str, Any], master_key: str, secrets: Any
) -> None:
    """Accepting plaintext would let anyone with write access substitute unencrypted records."""
    with lash.open(sqlite_config()) as handle:
        secrets.record(handle)
    with (
        lash.open(sqlite_config(env_encryption)) as handle,
        pytest.raises(DecryptionError, match=r"head of session 'vault'.*stored unencrypted.*lash migrate"),
    ):
        handle.session("vault")


def test_a_plaintext_session_migrates_into_an_encrypted_store(
    tmp_path: Path, env_encryption: dict[str, Any], master_key: str, secrets: Any, raw_sqlite: Any
) -> None:
    from lash.cli import main

    plain, encrypted = tmp_path / "plain.toml", tmp_path / "encrypted.toml"
    plain.write_text(f'[store]\nbackend = "sqlite"\noptions = {{ path = "{tmp_path / "plain"}" }}\n')
    encrypted.write_text(
        f'[store]\nbackend = "sqlite"\noptions = {{ path = "{raw_sqlite.sessions_dir}" }}\n'
        '[encryption]\nkey_provider = "env"\n'
    )
    with lash.open(plain) as handle:
        secrets.record(handle)
    assert main(["--config", str(plain), "migrate", "--to", str(encrypted)]) == 0
    assert secrets.found_in(raw_sqlite.all_bytes()) == []
    with lash.open(encrypted) as handle:
        secrets.check(handle)


def test_blob_refs_are_not_the_plain_sha256_of_content(
    sqlite_config: Any, env_encryption: dict[str, Any], master_key: str, secrets: Any
) -> None:
    with lash.open(sqlite_config(env_encryption)) as handle:
        result = secrets.record(handle)
    assert result.manifest.execution_state_ref != "sha256:" + hashlib.sha256(secrets.state).hexdigest()
