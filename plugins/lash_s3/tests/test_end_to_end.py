"""lash over HTTP against a moto S3 server: heads and nodes in memory/SQLite, blobs in S3.

Covers composition and resume (a fresh handle, a fresh process), backend GC with its grace
period, and the faults a user meets: the endpoint going away, objects deleted behind lash's
back, a wrong bucket, missing credentials, and an upload failing during a commit.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from lash_memory import MemoryBackend
from lash_s3 import S3BlobStorage

import lash
from lash.blobs import EnvelopeBlobStore
from lash.model import blob_ref_for

from .conftest import MotoServer

CATALOGUE = [{"name": f"tool_{i}", "description": "reads and writes files " * 8} for i in range(150)]


class SharedMemory:
    """Backend ``shared-memory``: one MemoryBackend that outlives the handles built on it."""

    def __init__(self, **options: Any) -> None:
        self.backend = MemoryBackend(**options)

    @lash.hookimpl
    def lash_register_backends(self, register: Callable[..., None]) -> None:
        register("shared-memory", lambda options: self.backend)


def memory_config(s3_options: dict[str, Any]) -> dict[str, Any]:
    return {
        "store": {"backend": "shared-memory"},
        "blobs": {"backend": "s3", "options": s3_options},
        "gc": {"auto_every_commits": 0},
    }


def sqlite_config(path: Path, s3_options: dict[str, Any]) -> dict[str, Any]:
    return {
        "store": {"backend": "sqlite", "options": {"path": str(path)}},
        "blobs": {"backend": "s3", "options": s3_options},
        "gc": {"auto_every_commits": 0},
    }


def play_turns(session: lash.Session, turns: int, start: int = 0) -> None:
    """The reference workload in small: messages, usage, a tool catalogue, execution state."""
    for turn in range(start, start + turns):
        session.append_message("user", f"turn {turn}: please refactor module {turn}")
        session.append_message("assistant", f"done with module {turn}. " * 40)
        session.record_usage("agent", "model-a", lash.TokenUsage(input_tokens=100 + turn, output_tokens=40))
        if turn % 2 == 0:
            session.tools.register(CATALOGUE[turn % len(CATALOGUE)])
        session.set_execution_state(f"execution state after turn {turn}\n".encode() * 200)
        session.commit()


def snapshot(session: lash.Session) -> tuple[Any, ...]:
    """Everything a resumed session must reproduce."""
    return (
        session.head_revision,
        list(session.graph.nodes.values()),
        session.graph.leaf_node_id,
        session.messages(),
        session.tools.tools,
        session.execution_state,
        session.usage_report().entries,
        session.frames,
    )


def s3_keys(server: MotoServer, bucket: str) -> list[str]:
    return [obj["Key"] for obj in server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


def s3_storage(handle: lash.Lash) -> S3BlobStorage:
    blobs = handle.backend.blobs
    assert isinstance(blobs, EnvelopeBlobStore) and isinstance(blobs.storage, S3BlobStorage)
    return blobs.storage


# --- composition and resume -------------------------------------------------------------


def test_memory_heads_with_s3_blobs_resume_identically_in_a_fresh_handle(
    moto_server: MotoServer, s3_options: dict[str, Any]
) -> None:
    shared = SharedMemory()
    config = memory_config({**s3_options, "prefix": "agents"})
    with lash.open(config, plugins=[shared]) as handle:
        session = handle.session("planner")
        play_turns(session, 5)
        committed = snapshot(session)
    with lash.open(config, plugins=[shared]) as fresh:
        assert snapshot(fresh.session("planner")) == committed
    assert list(shared.backend.blob_storage.list()) == []  # no blob stayed in the metadata backend
    keys = s3_keys(moto_server, s3_options["bucket"])
    assert keys and all(key.startswith("agents/sha256/") for key in keys)


def test_sqlite_heads_with_s3_blobs_resume_identically_in_a_fresh_process(
    tmp_path: Path, s3_options: dict[str, Any], fake_aws_credentials: dict[str, str]
) -> None:
    config = sqlite_config(tmp_path / "sessions", s3_options)
    with lash.open(config) as handle:
        play_turns(handle.session("coder"), 4)
    with lash.open({**config, "blobs": {"backend": "s3", "options": {**s3_options, "create_bucket": False}}}) as fresh:
        store = fresh.backend.open_session("coder", create=False)
        assert store is not None
        expected = repr(store.load_session())
        store.close()
    script = (
        "import json, sys, lash\n"
        "with lash.open(json.loads(sys.argv[1])) as handle:\n"
        "    store = handle.backend.open_session('coder', create=False)\n"
        "    print(repr(store.load_session()))\n"
        "    store.close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env=fake_aws_credentials,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
    assert "execution state after turn 3" in expected
    with sqlite3.connect(fresh.backend.session_path("coder")) as db:  # type: ignore[attr-defined]
        assert db.execute("SELECT count(*) FROM blobs").fetchone() == (0,)  # every blob came from S3


def test_sessions_sharing_a_catalogue_store_it_once(moto_server: MotoServer, s3_options: dict[str, Any]) -> None:
    with lash.open(memory_config(s3_options), plugins=[SharedMemory()]) as handle:
        refs = set()
        for name in ("a", "b", "c"):
            session = handle.session(name)
            session.tools.replace(CATALOGUE)
            session.append_message("user", f"hello from {name}")
            refs.add(session.commit().manifest.tool_state_ref)
    assert len(refs) == 1
    digest = refs.pop().removeprefix("sha256:")
    assert s3_keys(moto_server, s3_options["bucket"]).count(f"sha256/{digest[:2]}/{digest}") == 1


# --- backend GC -------------------------------------------------------------------------


def test_gc_grace_period_protects_a_blob_whose_commit_has_not_landed(s3_options: dict[str, Any]) -> None:
    shared = SharedMemory(gc_grace_seconds=3600)
    with lash.open(memory_config(s3_options), plugins=[shared]) as handle:
        play_turns(handle.session("s"), 2)
        in_flight = handle.backend.blobs.put(b"uploaded by a commit that has not moved its head yet")
        report = handle.gc()
        assert report.deleted_blob_count == 0
        assert handle.backend.blobs.get(in_flight) is not None


def test_gc_without_grace_deletes_unreferenced_blobs_and_keeps_referenced_ones(s3_options: dict[str, Any]) -> None:
    shared = SharedMemory(gc_grace_seconds=0)
    with lash.open(memory_config(s3_options), plugins=[shared]) as handle:
        session = handle.session("s")
        play_turns(session, 3)
        garbage = handle.backend.blobs.put(b"nobody references this")
        committed = snapshot(session)
        report = handle.gc()
        assert not handle.backend.blobs.has(garbage)
        assert report.deleted_blob_count >= 1  # the garbage and the superseded execution states
        assert report.retained_blob_count == report.root_count
    with lash.open(memory_config(s3_options), plugins=[shared]) as fresh:
        assert snapshot(fresh.session("s")) == committed


# --- faults -----------------------------------------------------------------------------


def test_endpoint_going_away_mid_run_is_a_backend_error_after_bounded_retries(tmp_path: Path, bucket: str) -> None:
    server = MotoServer(tmp_path / "aws-private")
    options = {
        "bucket": bucket,
        "endpoint_url": server.endpoint_url,
        "addressing_style": "path",
        "create_bucket": True,
        "max_attempts": 2,
        "connect_timeout": 0.5,
        "read_timeout": 1.0,
    }
    shared = SharedMemory()
    try:
        with lash.open(memory_config(options), plugins=[shared]) as handle:
            session = handle.session("s")
            play_turns(session, 1)
            server.stop()
            session.append_message("user", "are you still there?")
            session.set_execution_state(b"new state")
            started = time.monotonic()
            with pytest.raises(lash.BackendError, match="unreachable"):
                session.commit()
            assert time.monotonic() - started < 20
            store = shared.backend.open_session("s", create=False)
            assert store is not None and store.load_head().revision == 1
    finally:
        server.stop()


def test_blob_deleted_behind_the_store_fails_the_load_naming_the_ref(
    moto_server: MotoServer, s3_options: dict[str, Any]
) -> None:
    shared = SharedMemory()
    with lash.open(memory_config(s3_options), plugins=[shared]) as handle:
        session = handle.session("s")
        play_turns(session, 1)
        ref = session.commit().manifest.execution_state_ref
        assert ref is not None
        moto_server.client().delete_object(Bucket=s3_options["bucket"], Key=s3_storage(handle).key(ref))
    with lash.open(memory_config(s3_options), plugins=[shared]) as fresh:
        with pytest.raises(lash.BlobIntegrityError, match=ref) as info:
            fresh.session("s")
        assert info.value.ref == ref


def test_wrong_bucket_fails_at_open_saying_it_does_not_exist(moto_server: MotoServer) -> None:
    options = {"bucket": "no-such-lash-bucket", "endpoint_url": moto_server.endpoint_url, "addressing_style": "path"}
    with pytest.raises(lash.BackendError, match="bucket 'no-such-lash-bucket' does not exist"):
        lash.open(memory_config(options), plugins=[SharedMemory()])


def test_missing_credentials_fail_at_open_saying_so(
    monkeypatch: pytest.MonkeyPatch, s3_options: dict[str, Any]
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(lash.BackendError, match="no AWS credentials found"):
        lash.open(memory_config(s3_options), plugins=[SharedMemory()])


def test_head_never_points_at_a_blob_that_was_not_uploaded(
    monkeypatch: pytest.MonkeyPatch, s3_options: dict[str, Any]
) -> None:
    shared = SharedMemory()
    with lash.open(memory_config(s3_options), plugins=[shared]) as handle:
        session = handle.session("s")
        play_turns(session, 1)
        before = snapshot(session)
        storage = s3_storage(handle)

        def unreachable(**kwargs: Any) -> Any:
            raise EndpointConnectionError(endpoint_url=storage.client.meta.endpoint_url)

        monkeypatch.setattr(storage.client, "put_object", unreachable)
        session.append_message("user", "this turn's upload fails")
        session.set_execution_state(b"state that never reached S3")
        with pytest.raises(lash.BackendError, match="PutObject"):
            session.commit()
        with lash.open(memory_config(s3_options), plugins=[shared]) as other:
            assert snapshot(other.session("s")) == before
        assert not storage.exists(blob_ref_for(b"state that never reached S3"))

        monkeypatch.undo()  # the endpoint is back: the same turn commits
        assert session.commit().head_revision == 2
        assert session.messages()[-1] == {"role": "user", "content": "this turn's upload fails"}
