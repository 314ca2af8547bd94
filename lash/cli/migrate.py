"""``lash migrate --to CONFIG``: copy every session and its blobs to another backend, resumably.

**Copy.** Each session travels as an in-memory archive (:mod:`lash.cli.archive`): exported
from the configured backend, imported into the target through its public store API and read
back equal. A session whose head is already in the target with the same digest is skipped,
so running the same command again finishes an interrupted migration and copies only the
rest. A target session without a head (a run killed between creating it and committing) is
replaced; a target session whose committed state differs is an error, never overwritten.

**Verify.** When every session is copied, the target is opened afresh and each session's
:class:`SessionDigest` is compared with the source's: the sha256 of its records plus the
content address of its checkpoint manifest, and every blob the head references is read from
the target, which checks its content against its sha256 ref. Blobs no head references
(what ``lash gc`` deletes) are not copied. Head revisions restart at 1 in the target: a
revision is a concurrency token, not part of the history.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from contextlib import closing
from typing import Any

import attrs

import lash
from lash import codec
from lash.cli.archive import export_session, import_session, plain_refs, read_archive
from lash.cli.context import CliError, opened
from lash.cli.output import Output
from lash.config import load_config
from lash.errors import BlobIntegrityError
from lash.model import BlobRef, Checkpoint, FullGraph
from lash.store import SessionStore

PAUSE_ENV_VAR = "LASH_TEST_MIGRATE_PAUSE"
"""Test aid only: seconds to sleep after each session is copied, so that a test can kill a
migration half way. It delays the run and changes nothing else."""

STATUSES = ("copied", "skipped", "empty", "gone")
"""copied; skipped (already equal in the target); empty (no commits, meta copied); gone (deleted meanwhile)."""


@attrs.frozen
class SessionDigest:
    """What must match between a session and its copy, by hash."""

    records_sha256: str
    """sha256 of the graph, agent frames, ledger and config, canonically encoded."""
    checkpoint_ref: BlobRef
    """The head's manifest (turn state and snapshot refs), addressed by its content."""
    blob_refs: frozenset[BlobRef]
    """The manifest and every blob it references, each read back and checked against its hash."""


def session_digest(store: SessionStore) -> SessionDigest | None:
    """The digest of ``store``'s committed head (None before the first commit).

    Reads every blob the head references, so a missing or corrupt blob raises here.
    """
    read = store.load_session(FullGraph())
    if read is None:
        return None
    manifest_bytes = _verified_blob(store, read.checkpoint_ref)
    manifest = codec.decode(manifest_bytes, Checkpoint, f"checkpoint manifest {read.checkpoint_ref}")
    blobs = {read.checkpoint_ref: manifest_bytes, **{ref: _verified_blob(store, ref) for ref in manifest.blob_refs()}}
    checkpoint_ref, blobs = plain_refs(read.checkpoint_ref, manifest, blobs)  # equal across (un)encrypted stores
    records = codec.pack(
        codec.to_plain(
            [
                list(read.graph.nodes.values()),
                read.graph.leaf_node_id,
                read.agent_frames,
                read.current_agent_frame_id,
                sorted(read.token_ledger, key=lambda entry: entry.key),
                read.config,
            ]
        )
    )
    return SessionDigest(hashlib.sha256(records).hexdigest(), checkpoint_ref, frozenset(blobs))


def _verified_blob(store: SessionStore, ref: BlobRef) -> bytes:
    data = store.blobs.get(ref)  # checks the content against its sha256
    if data is None:
        raise BlobIntegrityError(ref, f"referenced by the head of {store.session_id!r} but missing")
    return data


def copy_session(source: lash.Lash, target: lash.Lash, session_id: str) -> tuple[str, SessionDigest | None]:
    """Copy one session unless the target already holds it; returns its status and source digest."""
    store = source.backend.open_session(session_id, create=False)
    if store is None:
        return "gone", None
    with closing(store):
        digest, meta = session_digest(store), store.load_meta()
    existing = target.backend.open_session(session_id, create=False)
    if existing is not None:
        with closing(existing):
            there = session_digest(existing)
            if there == digest:
                if meta is not None and existing.load_meta() is None:  # a run killed between commit and meta
                    existing.save_meta(meta)
                return "skipped", digest
            if there is not None:
                raise CliError(f"session {session_id!r} already exists in the target and differs; not overwritten")
        target.backend.delete_session(session_id)  # created by a run killed before its commit: start over
    if digest is None:
        with closing(target.backend.open_session(session_id, create=True)) as created:
            if meta is not None:
                created.save_meta(meta)
        return "empty", None
    import_session(target, read_archive(export_session(source, session_id)))
    return "copied", digest


def verify_session(target: lash.Lash, session_id: str, expected: SessionDigest | None) -> int:
    """Require ``session_id`` in ``target`` to have the ``expected`` digest; returns the blobs checked."""
    store = target.backend.open_session(session_id, create=False)
    if store is None:
        raise CliError(f"verification failed: session {session_id!r} is missing from the target")
    with closing(store):
        found = session_digest(store)
    if found != expected:
        raise CliError(f"verification failed: session {session_id!r} differs in the target")
    return len(expected.blob_refs) if expected else 0


# --- the command -------------------------------------------------------------------------


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "migrate",
        parents=parents,
        help="copy every session and its blobs to the backend of another config (resumable, verified)",
        description="Copy every session to the backend of CONFIG, then verify each one by hash. "
        "Run it again to finish an interrupted migration: sessions already copied are skipped.",
    )
    parser.add_argument("--to", required=True, metavar="CONFIG", help="config file of the target")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(func=migrate_command)


def migrate_command(args: argparse.Namespace, out: Output) -> int:
    target_config = load_config(args.to)
    pause = float(os.environ.get(PAUSE_ENV_VAR) or 0)
    statuses: dict[str, str] = {}
    digests: dict[str, SessionDigest | None] = {}
    with opened(args) as source:
        if source.config.source is not None and source.config.source == target_config.source:
            raise CliError("--to names the configuration being migrated from")
        session_ids = sorted(info.session_id for info in source.sessions())
        with lash.open(target_config) as target, out.progress("copying sessions", len(session_ids)) as ticker:
            for session_id in session_ids:
                statuses[session_id], digest = copy_session(source, target, session_id)
                if statuses[session_id] != "gone":
                    digests[session_id] = digest
                ticker.advance()
                if pause:
                    time.sleep(pause)
    with lash.open(target_config) as target, out.progress("verifying by sha256", len(digests)) as ticker:
        blobs_checked = 0
        for session_id, digest in digests.items():
            blobs_checked += verify_session(target, session_id, digest)
            ticker.advance()
    counts = {status: sum(1 for s in statuses.values() if s == status) for status in STATUSES}
    if out.json_mode:
        out.json(
            {
                "target": str(target_config.source),
                "sessions": statuses,
                **counts,
                "verified_sessions": len(digests),
                "verified_blobs": blobs_checked,
            }
        )
        return 0
    out.line(
        f"migrated {len(statuses)} sessions to {target_config.source}: {counts['copied']} copied, "
        f"{counts['skipped']} skipped (already in the target), {counts['empty']} without commits"
        + (f", {counts['gone']} deleted meanwhile" if counts["gone"] else "")
    )
    out.line(f"verified {len(digests)} sessions and {blobs_checked} blobs in the target by sha256")
    return 0
