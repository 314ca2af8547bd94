"""``lash export`` / ``lash import``: a portable, versioned archive of one session.

The archive is one msgpack map: a header (``format``, ``version``, the lash and record schema
versions), the session's config, full graph, agent frames, ledger and meta, and every blob
its head references (the checkpoint manifest, tool state, plugin snapshot, execution state)
as uncompressed bytes keyed by ref. Import checks every blob against its sha256 before it
writes anything, commits through the public store API of whatever backend is configured
(``ReplaceFull``), reads the session back and requires it to equal the archive.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import attrs

import lash
from lash import codec
from lash.blobs import content_ref
from lash.cli.context import CliError, describe_store, opened
from lash.cli.equality import differences, of_read
from lash.cli.output import Output, human_bytes
from lash.errors import BlobIntegrityError, CorruptRecordError, SchemaVersionError
from lash.graph import SessionGraph
from lash.model import (
    AgentFrame,
    BlobRef,
    Checkpoint,
    Commit,
    FullGraph,
    HydratedCheckpoint,
    LedgerEntry,
    PluginSnapshot,
    ReplaceFull,
    SessionConfig,
    SessionMeta,
    SessionRead,
    ToolState,
    blob_ref_for,
)

ARCHIVE_FORMAT = "lash-session-archive"
ARCHIVE_VERSION = 1
"""Bump when the archive's layout changes; import refuses versions newer than this."""


@attrs.frozen
class Archive:
    """A session as carried by an archive file, verified and structured."""

    session_id: str
    head_revision: int
    meta: SessionMeta | None
    read: SessionRead
    manifest: Checkpoint
    blobs: dict[BlobRef, bytes]

    @property
    def blob_bytes(self) -> int:
        return sum(len(b) for b in self.blobs.values())


# --- export ------------------------------------------------------------------------------


def export_session(handle: lash.Lash, session_id: str) -> bytes:
    """The archive bytes of ``session_id``'s committed head."""
    store = handle.backend.open_session(session_id, create=False)
    if store is None:
        raise CliError(f"no session {session_id!r} in {describe_store(handle.config)} (`lash sessions` lists them)")
    try:
        read = store.load_session(FullGraph())
        meta = store.load_meta()
        if read is None:
            raise CliError(f"session {session_id!r} has no commits yet; nothing to export")
        manifest_bytes = _get_blob(store.blobs, read.checkpoint_ref, session_id)
        manifest = codec.decode(manifest_bytes, Checkpoint, f"checkpoint manifest {read.checkpoint_ref}")
        blobs = {read.checkpoint_ref: manifest_bytes}
        for ref in manifest.blob_refs():
            blobs[ref] = _get_blob(store.blobs, ref, session_id)
    finally:
        store.close()
    checkpoint_ref, blobs = plain_refs(read.checkpoint_ref, manifest, blobs)
    return codec.pack(
        {
            "format": ARCHIVE_FORMAT,
            "version": ARCHIVE_VERSION,
            "schema_version": codec.SCHEMA_VERSION,
            "lash_version": lash.__version__,
            "exported_at": time.time(),
            "session_id": session_id,
            "head_revision": read.head_revision,
            "meta": None if meta is None else codec.to_plain(meta),
            "config": codec.to_plain(read.config),
            "graph": codec.to_plain(read.graph),
            "agent_frames": codec.to_plain(read.agent_frames),
            "current_agent_frame_id": read.current_agent_frame_id,
            "ledger": codec.to_plain(read.token_ledger),
            "checkpoint_ref": checkpoint_ref,
            "blobs": dict(blobs),
        }
    )


def plain_refs(
    checkpoint_ref: BlobRef, manifest: Checkpoint, blobs: dict[BlobRef, bytes]
) -> tuple[BlobRef, dict[BlobRef, bytes]]:
    """The archive's blobs keyed by the SHA-256 of their content (an encrypted store's refs are keyed HMACs)."""
    plain = {ref: blob_ref_for(content) for ref, content in blobs.items()}
    if all(ref == plain_ref for ref, plain_ref in plain.items()):
        return checkpoint_ref, blobs
    manifest = attrs.evolve(
        manifest,
        tool_state_ref=manifest.tool_state_ref and plain[manifest.tool_state_ref],
        plugin_snapshot_ref=manifest.plugin_snapshot_ref and plain[manifest.plugin_snapshot_ref],
        execution_state_ref=manifest.execution_state_ref and plain[manifest.execution_state_ref],
    )
    manifest_bytes = codec.encode(manifest)
    content = {plain[ref]: data for ref, data in blobs.items() if ref != checkpoint_ref}
    return blob_ref_for(manifest_bytes), {blob_ref_for(manifest_bytes): manifest_bytes, **content}


def _get_blob(blobs: lash.BlobStore, ref: BlobRef, session_id: str) -> bytes:
    data = blobs.get(ref)
    if data is None:
        raise BlobIntegrityError(ref, f"referenced by the head of {session_id!r} but missing from its blob store")
    return data


# --- reading an archive ------------------------------------------------------------------


def read_archive(data: bytes) -> Archive:
    """Parse and verify archive bytes: format, versions, every blob's hash, every record."""
    raw = codec.unpack(data, "archive")
    if not isinstance(raw, dict) or raw.get("format") != ARCHIVE_FORMAT:
        raise CorruptRecordError("archive", f"not a {ARCHIVE_FORMAT} file")
    for key, supported in (("version", ARCHIVE_VERSION), ("schema_version", codec.SCHEMA_VERSION)):
        found = raw.get(key)
        if not isinstance(found, int):
            raise CorruptRecordError("archive", f"header field {key!r} is missing")
        if found > supported:
            raise SchemaVersionError(found, supported, f"archive ({key})")
    blobs = raw.get("blobs")
    if not isinstance(blobs, dict):
        raise CorruptRecordError("archive", "no blobs table")
    for ref, content in blobs.items():
        if not isinstance(content, bytes) or blob_ref_for(content) != ref:
            raise BlobIntegrityError(str(ref), "archive content does not match its sha256")
    what = f"archive of session {raw.get('session_id')!r}"
    try:
        checkpoint_ref = raw["checkpoint_ref"]
        manifest = codec.decode(_archived(blobs, checkpoint_ref), Checkpoint, f"checkpoint manifest in the {what}")
        checkpoint = HydratedCheckpoint(
            turn_state=manifest.turn_state,
            tool_state=_archived_record(blobs, manifest.tool_state_ref, ToolState),
            plugin_snapshot=_archived_record(blobs, manifest.plugin_snapshot_ref, PluginSnapshot),
            execution_state=None
            if manifest.execution_state_ref is None
            else _archived(blobs, manifest.execution_state_ref),
        )
        read = SessionRead(
            session_id=raw["session_id"],
            head_revision=raw["head_revision"],
            config=codec.from_plain(raw["config"], SessionConfig),
            graph=codec.from_plain(raw["graph"], SessionGraph),
            checkpoint_ref=checkpoint_ref,
            checkpoint=checkpoint,
            token_ledger=codec.from_plain(raw["ledger"], tuple[LedgerEntry, ...]),
            agent_frames=codec.from_plain(raw["agent_frames"], tuple[AgentFrame, ...]),
            current_agent_frame_id=raw["current_agent_frame_id"],
        )
        meta = None if raw["meta"] is None else codec.from_plain(raw["meta"], SessionMeta)
    except lash.LashError:
        raise
    except Exception as exc:  # a missing key or a value of the wrong shape
        raise CorruptRecordError(what, f"{type(exc).__name__}: {exc}") from exc
    return Archive(read.session_id, read.head_revision, meta, read, manifest, dict(blobs))


def _archived(blobs: dict[str, bytes], ref: str) -> bytes:
    if ref not in blobs:
        raise BlobIntegrityError(ref, "referenced by the archived head but missing from the archive")
    return blobs[ref]


def _archived_record(blobs: dict[str, bytes], ref: str | None, cls: type) -> Any:
    return None if ref is None else codec.decode(_archived(blobs, ref), cls, f"archived {cls.__name__} {ref}")


# --- import ------------------------------------------------------------------------------


def import_session(handle: lash.Lash, archive: Archive, session_id: str | None = None) -> SessionRead:
    """Write ``archive`` as ``session_id`` (default: its own id) and verify it reads back equal.

    Refuses to overwrite an existing session; on any failure nothing is left behind.
    """
    target = session_id or archive.session_id
    existing = handle.backend.open_session(target, create=False)
    if existing is not None:
        existing.close()
        raise CliError(f"session {target!r} already exists in {describe_store(handle.config)}; choose --as NEW_ID")
    source = archive.read
    store = handle.backend.open_session(target, create=True)
    assert store is not None
    try:
        result = store.commit(
            Commit(
                session_id=target,
                expected_head_revision=None,
                config=source.config,
                graph=ReplaceFull(source.graph),
                checkpoint=source.checkpoint,
                usage_deltas=source.token_ledger,
                agent_frames=source.agent_frames,
                current_agent_frame_id=source.current_agent_frame_id,
            )
        )
        meta = archive.meta or SessionMeta(target, target, time.time(), source.config.configured_model)
        store.save_meta(attrs.evolve(meta, session_id=target))
        written = store.load_session(FullGraph())
        assert written is not None
        diffs = differences(of_read(source), of_read(written))
        ref_for = content_ref(store.blobs)  # the target's addressing: keyed refs when it encrypts
        if result.manifest.blob_refs() != tuple(ref_for(archive.blobs[r]) for r in archive.manifest.blob_refs()):
            diffs.append("snapshot blobs")
        if diffs:
            raise CliError(f"imported session {target!r} does not read back equal ({', '.join(diffs)}); removed it")
    except BaseException:
        store.close()
        handle.backend.delete_session(target)
        raise
    store.close()
    return written


# --- the commands ------------------------------------------------------------------------


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    export = subparsers.add_parser("export", parents=parents, help="write a session to a portable archive file")
    export.add_argument("session", help="session id")
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="archive file to write (- for stdout)")
    export.add_argument("--json", action="store_true", help="print JSON for scripts (not with -o -)")
    export.set_defaults(func=export_command)

    imp = subparsers.add_parser("import", parents=parents, help="load an archive into the configured backend")
    imp.add_argument("file", metavar="FILE", help="archive written by `lash export` (- for stdin)")
    imp.add_argument("--as", dest="session_id", metavar="NEW_ID", help="store it under another session id")
    imp.add_argument("--json", action="store_true", help="print JSON for scripts")
    imp.set_defaults(func=import_command)


def export_command(args: argparse.Namespace, out: Output) -> int:
    if args.output == "-" and out.json_mode:
        raise CliError("--json and -o - both want stdout; write the archive to a file")
    with opened(args) as handle, out.progress(f"exporting {args.session}"):
        data = export_session(handle, args.session)
    if args.output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
        return 0
    path = Path(args.output)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
    archive = read_archive(data)  # proves the file just written imports
    if out.json_mode:
        out.json(
            {
                "session_id": args.session,
                "file": str(path),
                "bytes": len(data),
                "nodes": len(archive.read.graph),
                "head_revision": archive.head_revision,
                "blobs": len(archive.blobs),
                "archive_version": ARCHIVE_VERSION,
            }
        )
        return 0
    out.line(
        f"exported {args.session}: {len(archive.read.graph)} nodes, revision {archive.head_revision}, "
        f"{len(archive.blobs)} blobs ({human_bytes(archive.blob_bytes)}) → {path} ({human_bytes(len(data))})"
    )
    return 0


def import_command(args: argparse.Namespace, out: Output) -> int:
    with out.progress("reading the archive") as ticker:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        ticker.describe("verifying blobs by sha256")
        archive = read_archive(data)
        ticker.describe(f"writing {archive.session_id} ({len(archive.read.graph)} nodes) and reading it back")
        with opened(args) as handle:
            written = import_session(handle, archive, args.session_id)
            where = describe_store(handle.config)
    if out.json_mode:
        out.json(
            {
                "session_id": written.session_id,
                "from_session_id": archive.session_id,
                "head_revision": written.head_revision,
                "nodes": len(written.graph),
                "blobs": len(archive.blobs),
                "verified": True,
            }
        )
    else:
        out.line(
            f"imported {archive.session_id} as {written.session_id} into {where}: "
            f"{len(written.graph)} nodes, {len(archive.blobs)} blobs verified, revision {written.head_revision}"
        )
    return 0
