"""The ``lash`` command with ``[blobs] backend = "s3"`` against a moto server over HTTP."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import assert_same_sessions, record_sessions, sqlite_config

Run = Callable[..., subprocess.CompletedProcess[str]]

pytestmark = pytest.mark.usefixtures("aws_env")


@pytest.fixture
def bucket() -> str:
    return f"lash-cli-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def s3_config(tmp_path: Path, moto_server: Any, bucket: str) -> Path:
    """SQLite heads and nodes in ``tmp_path/sessions``, every blob in a fresh bucket on the moto server."""
    path = tmp_path / "lash.toml"
    path.write_text(
        f"""\
[store]
backend = "sqlite"
options = {{ path = "sessions" }}

[blobs]
backend = "s3"
options = {{ bucket = "{bucket}", endpoint_url = "{moto_server.endpoint_url}", addressing_style = "path", \
create_bucket = true }}

[gc]
auto_every_commits = 0
grace_seconds = 0
""",
        encoding="utf-8",
    )
    return path


def bucket_keys(moto_server: Any, bucket: str) -> list[str]:
    listing = moto_server.client().list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def read_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sessions_and_gc_work_on_blobs_in_s3(
    s3_config: Path, lash_cli: Run, aws_env: dict[str, str], moto_server: Any, bucket: str
) -> None:
    record_sessions(s3_config, 2, turns=3)
    infos = read_json(lash_cli("sessions", "--json", env=aws_env))
    assert {(i["session_id"], i["head_revision"]) for i in infos} == {("agent-00", 3), ("agent-01", 3)}

    stored = len(bucket_keys(moto_server, bucket))
    dry = read_json(lash_cli("gc", "--dry-run", "--json", env=aws_env))
    # each head keeps its manifest, tool state and execution state; two earlier commits' worth is garbage
    assert (dry["root_count"], dry["retained_blob_count"], dry["deleted_blob_count"]) == (6, 6, stored - 6)
    assert len(bucket_keys(moto_server, bucket)) == stored  # a dry run deletes nothing

    collected = lash_cli("gc", env=aws_env)
    assert collected.returncode == 0, collected.stderr
    assert collected.stdout.strip() == f"deleted {stored - 6} blobs, kept 6 (6 referenced by heads)"
    assert len(bucket_keys(moto_server, bucket)) == 6
    resumed = lash_cli("show", "agent-01", "--frame", "--json", env=aws_env)  # every blob a head needs is there
    assert read_json(resumed)["messages"][-1]["content"].startswith("looked at module 1.")


def test_export_from_s3_blobs_imports_into_plain_sqlite_equal(
    s3_config: Path, lash_cli: Run, aws_env: dict[str, str], tmp_path: Path
) -> None:
    record_sessions(s3_config, 1, turns=2)
    archive = tmp_path / "agent.lash"
    exported = lash_cli("export", "agent-00", "-o", str(archive), env=aws_env)
    assert exported.returncode == 0, exported.stderr

    plain = tmp_path / "plain"
    plain.mkdir()
    plain_config = sqlite_config(plain / "lash.toml", "sessions")
    imported = read_json(lash_cli("import", str(archive), "--json", cwd=plain))
    assert imported["verified"] is True and imported["blobs"] == 3
    assert_same_sessions(s3_config, plain_config)


def test_migrate_from_sqlite_to_sqlite_with_s3_blobs(
    lash_cli: Run, aws_env: dict[str, str], s3_config: Path, tmp_path: Path, moto_server: Any, bucket: str
) -> None:
    source_dir = tmp_path / "source"
    source_dir.mkdir()
    source = sqlite_config(source_dir / "lash.toml", "sessions")
    record_sessions(source, 3, turns=2)

    report = read_json(lash_cli("migrate", "--to", str(s3_config), "--json", cwd=source_dir, env=aws_env))
    assert report["copied"] == 3 and report["verified_blobs"] == 9
    assert len(bucket_keys(moto_server, bucket)) == 9  # only what the heads reference travelled
    assert_same_sessions(source, s3_config)
