"""Deleting leaves no trace: no byte of a deleted session's unique content stays behind.

SQLite: each session is its own file (deleting a session unlinks it with its ``-wal`` and
``-shm``); rows removed from a live file are overwritten (``secure_delete``) and the WAL is
checkpointed and truncated, so neither free pages nor the log keep a copy. A shared blob
store (S3) loses the blobs only the deleted session referenced and keeps blobs another live
session still references.
"""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import lash

pytestmark = pytest.mark.skipif(importlib.util.find_spec("lash_sqlite") is None, reason="needs lash-sqlite")


def marker(label: str) -> str:
    return f"UNIQUE-{label}-{uuid.uuid4().hex}"


def files_holding(directory: Path, text: str) -> list[str]:
    """Names of files under ``directory`` whose raw bytes contain ``text``."""
    needle = text.encode()
    return sorted(p.name for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes())


@pytest.fixture
def sqlite_config(tmp_path: Path) -> dict[str, Any]:
    return {"store": {"backend": "sqlite", "options": {"path": str(tmp_path / "sessions")}}}


def test_a_deleted_sqlite_session_leaves_no_byte_in_any_file(sqlite_config: dict[str, Any], tmp_path: Path) -> None:
    gone, kept = marker("gone"), marker("kept")
    with lash.open({**sqlite_config, "retention": {"max_sessions": 1}}) as handle:
        for session_id, text in (("old", gone), ("new", kept)):
            session = handle.session(session_id)
            session.append_message("user", text)
            session.set_execution_state(text.encode() * 3)
            session.commit()
            session.close()
        assert files_holding(tmp_path / "sessions", gone)  # the scan sees the content while it exists
        assert handle.apply_retention().deleted_session_ids == ["old"]
        assert files_holding(tmp_path / "sessions", gone) == []
        assert files_holding(tmp_path / "sessions", kept)


def test_pruned_nodes_leave_no_byte_in_the_database_or_its_wal(sqlite_config: dict[str, Any], tmp_path: Path) -> None:
    secret = marker("branch")
    config = {**sqlite_config, "retention": {"orphaned_branches": "prune"}}
    with lash.open(config) as reader, lash.open(config) as handle:
        session = handle.session("s")
        session.append_message("user", "kept " * 50)
        root = session.graph.leaf_node_id
        session.append_message("assistant", "the answer " * 50)
        session.commit()
        leaf = session.graph.leaf_node_id
        session.checkout(root)
        session.append_message("user", secret * 20)  # large enough to use an overflow page
        session.commit()
        session.checkout(leaf)
        session.commit()
        reading = reader.session("s")  # another connection stays open: the WAL is not removed on close
        assert files_holding(tmp_path / "sessions", secret)
        assert handle.apply_retention().nodes_tombstoned == 1
        assert files_holding(tmp_path / "sessions", secret) == []
        assert any(p.name.endswith("-wal") for p in (tmp_path / "sessions").iterdir())  # scanned, not absent
        reading.close()
        session.close()


# --- a shared blob store: S3 (moto, in process) --------------------------------------------


@pytest.fixture
def s3_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, Any]]:
    if importlib.util.find_spec("lash_s3") is None or importlib.util.find_spec("moto") is None:
        pytest.skip("needs lash-s3 and moto")
    from lash_s3.testing import FAKE_AWS_ENV, UNSET_AWS_ENV, empty_aws_files
    from moto import mock_aws

    for name in UNSET_AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in {**FAKE_AWS_ENV, **empty_aws_files(tmp_path / "aws")}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield {
            "store": {"backend": "sqlite", "options": {"path": str(tmp_path / "sessions")}},
            "blobs": {"backend": "s3", "options": {"bucket": "lash-retention", "prefix": "p", "create_bucket": True}},
            "gc": {"grace_seconds": 0},
            "retention": {"max_sessions": 1},
        }


def bucket_objects() -> dict[str, bytes]:
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="lash-retention").get("Contents", [])]
    return {key: s3.get_object(Bucket="lash-retention", Key=key)["Body"].read() for key in keys}


def test_a_deleted_session_loses_its_unique_s3_blobs_and_keeps_shared_ones(
    s3_config: dict[str, Any], tmp_path: Path
) -> None:
    gone, kept = marker("gone"), marker("kept")
    shared_tool = {"name": "shared_lookup", "description": marker("shared")}
    with lash.open(s3_config) as handle:
        refs = {}
        for session_id, text in (("old", gone), ("new", kept)):
            session = handle.session(session_id)
            session.tools.register(shared_tool)  # the same tool state: one blob both heads reference
            session.append_message("user", text)
            session.set_execution_state(text.encode())
            refs[session_id] = session.commit().manifest
            session.close()
        assert refs["old"].tool_state_ref == refs["new"].tool_state_ref
        before = bucket_objects()
        assert any(gone.encode() in body for body in before.values())
        report = handle.apply_retention()
        assert report.deleted_session_ids == ["old"] and report.gc is not None and report.gc.deleted_blob_count >= 2
        after = bucket_objects()
        assert not any(gone.encode() in body for body in after.values())
        assert any(kept.encode() in body for body in after.values())
        tool_key = refs["new"].tool_state_ref.removeprefix("sha256:")
        assert any(key.endswith(tool_key) for key in after)  # shared with a live session: kept
        resumed = handle.session("new")
        assert resumed.tools.names() == ["shared_lookup"] and resumed.execution_state == kept.encode()
