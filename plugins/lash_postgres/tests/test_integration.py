"""lash-postgres composed with the rest of lash: blobs on S3, and ``lash migrate`` from SQLite."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import Any

import attrs
import pytest
from lash_postgres.testing import PostgresServer
from psycopg import sql

import lash
from lash.cli import main as lash_main
from lash.cli.equality import differences, of_read

CATALOGUE = [{"name": f"tool_{i}", "description": "reads and writes files " * 8} for i in range(40)]


def play_turns(session: lash.Session, turns: int) -> None:
    """The reference workload in small: messages, usage, a tool catalogue, execution state."""
    for turn in range(turns):
        session.append_message("user", f"turn {turn}: please refactor module {turn}")
        session.append_message("assistant", f"done with module {turn}. " * 40)
        session.record_usage("agent", "model-a", lash.TokenUsage(input_tokens=100 + turn, output_tokens=40))
        session.tools.register(CATALOGUE[turn])
        session.set_execution_state(f"execution state after turn {turn}\n".encode() * 200)
        session.commit()


def _blob_rows(server: PostgresServer, schema: str) -> int:
    with server.connect() as conn:
        statement = sql.SQL("SELECT count(*) FROM {}.blobs").format(sql.Identifier(schema))
        return conn.execute(statement).fetchone()[0]


def test_metadata_in_postgres_and_blobs_on_s3(
    fake_aws: Any, config: dict[str, Any], store_options: dict[str, Any], postgres_server: PostgresServer
) -> None:
    config = {
        **config,
        "blobs": {"backend": "s3", "options": {"bucket": "lash-blobs", "create_bucket": True}},
        "gc": {"auto_every_commits": 0, "grace_seconds": 0},
    }
    with lash.open(config) as handle:
        session = handle.session("on-s3")
        play_turns(session, 3)
        expected = (session.messages(), session.tools.tools, session.execution_state, session.head_revision)
        garbage = handle.backend.blobs.put(b"referenced by no head")
    assert _blob_rows(postgres_server, store_options["schema"]) == 0
    keys = {obj["Key"] for obj in fake_aws.list_objects_v2(Bucket="lash-blobs")["Contents"]}
    assert any(garbage.removeprefix("sha256:") in key for key in keys)

    with lash.open(config) as handle:  # a fresh handle, as another host would open it
        resumed = handle.session("on-s3")
        assert (resumed.messages(), resumed.tools.tools, resumed.execution_state, resumed.head_revision) == expected
        report = handle.gc()
        assert report.deleted_blob_count >= 1 and not handle.backend.blobs.has(garbage)
        resumed.close()
        assert handle.session("on-s3").execution_state == expected[2]


def _toml(path: Path, store: str, options: dict[str, Any]) -> Path:
    table = ", ".join(f"{key} = {json.dumps(value)}" for key, value in options.items())
    path.write_text(f'[store]\nbackend = "{store}"\noptions = {{ {table} }}\n[gc]\nauto_every_commits = 0\n')
    return path


def test_lash_migrate_copies_sqlite_sessions_to_postgres_verified_equal(
    tmp_path: Path, store_options: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    source = _toml(tmp_path / "source.toml", "sqlite", {"path": str(tmp_path / "sessions")})
    target = _toml(tmp_path / "target.toml", "postgres", store_options)
    with lash.open(source) as handle:
        parent = handle.session("parent")
        play_turns(parent, 3)
        child = parent.spawn_child("parent.helper")
        play_turns(child, 2)
        handle.session("never-committed")

    assert lash_main(["migrate", "--config", str(source), "--to", str(target), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sessions"]["parent"] == report["sessions"]["parent.helper"] == "copied"

    with lash.open(source) as original, lash.open(target) as copy:
        listed = [{i.session_id: attrs.evolve(i, head_revision=None) for i in h.sessions()} for h in (original, copy)]
        assert listed[0] == listed[1]  # the import commits each session afresh, at revision 1
        for session_id in ("parent", "parent.helper"):
            with (
                closing(original.backend.open_session(session_id, create=False)) as there,
                closing(copy.backend.open_session(session_id, create=False)) as here,
            ):
                expected, actual = there.load_session(), here.load_session()
                assert expected is not None and actual is not None
                assert differences(of_read(expected), of_read(actual)) == []
                assert actual.checkpoint.tool_state == expected.checkpoint.tool_state
    assert lash_main(["migrate", "--config", str(source), "--to", str(target), "--json"]) == 0  # a rerun is a no-op
    assert set(json.loads(capsys.readouterr().out)["sessions"].values()) <= {"skipped", "empty"}
