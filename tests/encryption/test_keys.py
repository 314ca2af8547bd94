"""Key providers: where master keys come from, and the errors when they do not come."""

from __future__ import annotations

import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

import lash
from lash.errors import ConfigError, KeyUnavailableError, LashError, PluginNotFound
from lash.keys import EnvKeyProvider, FileKeyProvider, Keyring, generate_key


def everything_shown(exc: BaseException) -> str:
    """What a user could ever see of ``exc``: message, notes, repr and the chained traceback."""
    return "".join(traceback.format_exception(exc)) + repr(exc) + repr(exc.args)


def test_env_provider_reads_lash_master_key_by_default(sqlite_config: Any, master_key: str, secrets: Any) -> None:
    with lash.open(sqlite_config({"key_provider": "env"})) as handle:
        secrets.record(handle)
        secrets.check(handle)


def test_env_provider_reads_the_variable_options_name(
    monkeypatch: pytest.MonkeyPatch, sqlite_config: Any, secrets: Any
) -> None:
    monkeypatch.delenv("LASH_MASTER_KEY", raising=False)
    monkeypatch.setenv("TENANT_7_KEY", generate_key())
    config = sqlite_config({"key_provider": "env", "options": {"var": "TENANT_7_KEY"}})
    with lash.open(config) as handle:
        secrets.record(handle)
    with lash.open(config) as handle:
        secrets.check(handle)


def test_file_provider_reads_a_key_file_relative_to_the_config(tmp_path: Path, secrets: Any) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "lash.key").write_text(generate_key() + "\n")
    config = tmp_path / "lash.toml"
    config.write_text(
        '[store]\nbackend = "sqlite"\noptions = { path = "sessions" }\n'
        '[encryption]\nkey_provider = "file"\noptions = { path = "secrets/lash.key" }\n'
    )
    with lash.open(config) as handle:
        secrets.record(handle)
    with lash.open(config) as handle:
        secrets.check(handle)


def test_file_provider_keys_dir_names_keys_by_file_name(tmp_path: Path) -> None:
    (tmp_path / "k2026-01").write_text(generate_key())
    (tmp_path / "k2026-11").write_text(generate_key())
    provider = FileKeyProvider(keys_dir=str(tmp_path))
    assert provider.key_ids() == ["k2026-01", "k2026-11"]
    assert len(provider.load_key("k2026-11")) == 32
    with pytest.raises(KeyUnavailableError, match="does not exist"):
        provider.load_key("k2027-01")
    with pytest.raises(KeyUnavailableError, match="no key file is configured"):
        provider.load_key("../k2026-01")


def test_unknown_key_provider_names_what_is_installed(sqlite_config: Any) -> None:
    with pytest.raises(PluginNotFound) as info:
        lash.open(sqlite_config({"key_provider": "aws-kms"}))
    text = everything_shown(info.value)
    assert "no key provider named 'aws-kms'" in text and "env, file" in text
    assert "[encryption] key_provider = 'aws-kms'" in text


def test_missing_key_provider_setting_names_the_key(sqlite_config: Any) -> None:
    with pytest.raises(ConfigError, match=r"encryption\.key_provider: required key is missing"):
        lash.open(sqlite_config({"key_id": "k1"}))


def test_unset_environment_variable_fails_at_open_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch, sqlite_config: Any, sessions_dir: Path
) -> None:
    monkeypatch.delenv("LASH_MASTER_KEY", raising=False)
    with pytest.raises(KeyUnavailableError) as info:
        lash.open(sqlite_config({"key_provider": "env"}))
    text = everything_shown(info.value)
    assert "environment variable LASH_MASTER_KEY is not set" in text
    assert "[encryption] key_id = 'default'" in text
    assert not sessions_dir.exists() or not any(sessions_dir.iterdir())


def test_configured_key_id_the_provider_lacks_is_refused_at_open(sqlite_config: Any, master_key: str) -> None:
    with pytest.raises(
        KeyUnavailableError, match=r"key id 'k2'.*no variable is configured for it \(known: 'default'\)"
    ):
        lash.open(sqlite_config({"key_provider": "env", "key_id": "k2"}))


def test_a_key_pasted_into_the_config_is_refused_without_echoing_it(sqlite_config: Any) -> None:
    key = generate_key()
    for options in ({"var": key}, {"keys": {"k1": key}}):
        with pytest.raises(ConfigError) as info:
            lash.open(sqlite_config({"key_provider": "env", "options": options}))
        assert "keys never go into config" in str(info.value)
        assert key not in everything_shown(info.value)
    with pytest.raises(ConfigError) as info:
        lash.open(sqlite_config({"key_provider": "file", "options": {"path": key}}))
    assert key not in everything_shown(info.value)


@pytest.mark.parametrize(
    "value", ["not base64 at all!", "c2hvcnQ=", generate_key() + "AAAA"], ids=["garbage", "short", "long"]
)
def test_a_malformed_key_is_refused_without_echoing_it(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("LASH_BAD_KEY", value)
    with pytest.raises(KeyUnavailableError) as info:
        Keyring("env", EnvKeyProvider(var="LASH_BAD_KEY"), "default")
    assert "does not hold base64 of 32 bytes" in str(info.value)
    assert value not in everything_shown(info.value)


def test_keys_never_appear_in_errors_reprs_or_config_output(
    monkeypatch: pytest.MonkeyPatch, sqlite_config: Any, master_key: str, secrets: Any, raw_sqlite: Any
) -> None:
    """Trigger every encryption error of a session and look for the keys in everything it shows."""
    from lash.config import config_to_dict

    encryption = {"key_provider": "env"}
    shown: list[str] = []
    with lash.open(sqlite_config(encryption)) as handle:
        secrets.record(handle)
        encrypted = handle.backend.encryption
        store = handle.backend.open_session("vault")
        shown += [repr(handle), repr(encrypted), repr(encrypted.keyring), repr(handle.backend.blobs)]
        shown += [repr(store.storage), repr(store.blobs), repr(store.storage.cipher)]
        shown += [
            repr(encrypted.keyring.write_key),
            str(encrypted.keyring.write_key),
            str(config_to_dict(handle.config)),
        ]
        store.close()

    def error_of(config: dict[str, Any], action: Any = lambda handle: handle.session("vault")) -> LashError:
        with pytest.raises(LashError) as info, lash.open(config) as handle:
            action(handle)
        return info.value

    other_key = generate_key()
    errors = [
        error_of(sqlite_config({"key_provider": "env", "key_id": "k2"})),  # a key id the provider lacks
        error_of(sqlite_config()),  # encrypted data, encryption off
    ]
    monkeypatch.setenv("LASH_NEW_KEY", other_key)  # rotated to k2 while the old key is gone
    errors.append(
        error_of(sqlite_config({"key_provider": "env", "key_id": "k2", "options": {"keys": {"k2": "LASH_NEW_KEY"}}}))
    )
    monkeypatch.setenv("LASH_MASTER_KEY", other_key)  # a wrong key
    errors.append(error_of(sqlite_config(encryption)))
    monkeypatch.setenv("LASH_MASTER_KEY", master_key)
    (data,) = raw_sqlite.rows("vault", "SELECT data FROM head")[0]
    raw_sqlite.write("vault", "UPDATE head SET data = ?", (data[:-1] + bytes([data[-1] ^ 1]),))  # altered bytes
    errors.append(error_of(sqlite_config(encryption)))
    assert [type(e).__name__ for e in errors] == [
        "KeyUnavailableError",
        "DecryptionError",
        "KeyUnavailableError",
        "DecryptionError",
        "DecryptionError",
    ]
    for text in shown + [everything_shown(e) for e in errors]:
        assert master_key not in text and other_key not in text


def test_import_lash_does_not_import_cryptography() -> None:
    code = (
        "import sys, lash\n"
        "with lash.open({'store': {'backend': 'memory'}}) as h:\n"
        "    s = h.session('x'); s.append_message('user', 'hi'); s.commit()\n"
        "assert 'cryptography' not in sys.modules, 'cryptography was imported'\n"
        "import lash.keys\n"
        "assert 'cryptography' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
