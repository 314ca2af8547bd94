"""``lash export`` / ``lash import``: a verified, portable copy of a session across backends."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import msgpack
import pytest

import lash
from lash.cli.archive import ARCHIVE_VERSION, export_session, import_session, read_archive
from lash.cli.equality import of_read

Run = Callable[..., subprocess.CompletedProcess[str]]


class Scratchpad:
    """A plugin with state, so that archives carry a plugin snapshot."""

    __name__ = "scratchpad"

    @lash.hookimpl
    def lash_snapshot_session(self, session: lash.Session) -> dict[str, Any]:
        return {"notes": ["check the retry budget"]}


def record_session(handle: lash.Lash) -> lash.SessionRead:
    """A session with a branch, a compaction, tools, usage, execution state and a plugin snapshot."""
    session = handle.session("agent-7")
    session.append_message("system", "be brief")
    fork = session.append_message("user", "first question")
    session.append_message("assistant", "first answer")
    session.tools.register({"name": "search", "parameters": {"q": "string"}})
    session.record_usage("agent", "big", lash.TokenUsage(input_tokens=40, output_tokens=9))
    session.set_execution_state(b"\x00\x01state")
    session.commit()
    session.checkout(fork)
    session.append_message("assistant", "a different answer")
    for turn in range(4):
        session.append_message("user", f"question {turn}")
        session.record_usage("agent", "small", lash.TokenUsage(input_tokens=5))
    session.commit()
    assert session.compact()
    session.close()
    read = handle.backend.open_session("agent-7", create=False).load_session()
    assert read is not None
    return read


@pytest.fixture
def memory_handle() -> Iterator[lash.Lash]:
    with lash.open(
        {"store": {"backend": "memory"}, "compaction": {"options": {"keep_last": 2}}}, plugins=[Scratchpad()]
    ) as handle:
        yield handle


def target_configs(tmp_path: Path) -> list[dict[str, Any]]:
    configs: list[dict[str, Any]] = [{"store": {"backend": "memory"}}]
    if importlib.util.find_spec("lash_sqlite") is not None:  # across backends, when the default is installed
        configs.append({"store": {"backend": "sqlite", "options": {"path": str(tmp_path / "sessions")}}})
    return configs


def test_export_then_import_into_another_backend_reads_back_equal(memory_handle: lash.Lash, tmp_path: Path) -> None:
    source = record_session(memory_handle)
    assert source.checkpoint.plugin_snapshot is not None and len(source.agent_frames) == 2
    data = export_session(memory_handle, "agent-7")
    for config in target_configs(tmp_path):
        with lash.open(config) as other:
            written = import_session(other, read_archive(data), "copy")
            assert written.head_revision == 1
            assert of_read(written) == of_read(source)
            reopened = other.session("copy")
            assert reopened.messages() == memory_handle.session("agent-7").messages()


def _tampered(data: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    raw = msgpack.unpackb(data, raw=False)
    change(raw)
    return msgpack.packb(raw, use_bin_type=True)


def test_import_rejects_a_blob_that_does_not_match_its_hash_and_writes_nothing(memory_handle: lash.Lash) -> None:
    record_session(memory_handle)
    data = export_session(memory_handle, "agent-7")

    def flip(raw: dict[str, Any]) -> None:
        ref = next(iter(raw["blobs"]))
        raw["blobs"][ref] = raw["blobs"][ref] + b"!"

    with pytest.raises(lash.BlobIntegrityError):
        read_archive(_tampered(data, flip))
    assert memory_handle.backend.open_session("copy", create=False) is None


def test_import_refuses_archives_from_a_newer_lash(memory_handle: lash.Lash) -> None:
    record_session(memory_handle)
    data = _tampered(export_session(memory_handle, "agent-7"), lambda raw: raw.update(version=ARCHIVE_VERSION + 1))
    with pytest.raises(lash.SchemaVersionError, match="archive"):
        read_archive(data)
    with pytest.raises(lash.CorruptRecordError):
        read_archive(b"PK\x03\x04 a zip file")


def test_import_never_overwrites_an_existing_session(memory_handle: lash.Lash) -> None:
    source = record_session(memory_handle)
    archive = read_archive(export_session(memory_handle, "agent-7"))
    with pytest.raises(lash.LashError, match="already exists"):
        import_session(memory_handle, archive)
    assert memory_handle.backend.open_session("agent-7", create=False).load_session() == source


def test_cli_round_trip_between_two_sqlite_directories(demo_dir: Path, lash_cli: Run, tmp_path: Path) -> None:
    archive = tmp_path / "demo.lash"
    exported = lash_cli("export", "demo", "-o", str(archive), cwd=demo_dir)
    assert exported.returncode == 0, exported.stderr
    assert "exported demo" in exported.stdout

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "lash.toml").write_text('[store]\nbackend = "sqlite"\noptions = { path = "s" }\n', encoding="utf-8")
    imported = lash_cli("import", str(archive), "--json", cwd=elsewhere)
    assert json.loads(imported.stdout)["verified"] is True

    again = lash_cli("import", str(archive), cwd=elsewhere)
    assert again.returncode == 1 and "already exists" in again.stderr

    reads = []
    for directory in (demo_dir, elsewhere):
        with lash.open(directory / "lash.toml") as handle, closing(handle.backend.open_session("demo")) as store:
            reads.append(store.load_session())
    assert of_read(reads[1]) == of_read(reads[0])
