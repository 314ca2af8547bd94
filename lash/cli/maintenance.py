"""Maintenance commands: ``lash gc [--dry-run]``, ``lash prune SESSION``, ``lash delete SESSION``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import lash
from lash import codec
from lash.blobs import BlobStore
from lash.cli.context import CliError, opened, read_session, require_session
from lash.cli.output import Output
from lash.model import ActivePath, BlobRef, Checkpoint, GcReport


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON for scripts")

    gc = subparsers.add_parser("gc", parents=[*parents, json_flag], help="delete blobs no session head references")
    gc.add_argument("--dry-run", action="store_true", help="only count what would be deleted")
    gc.set_defaults(func=gc_command)

    prune = subparsers.add_parser(
        "prune", parents=[*parents, json_flag], help="drop a session's abandoned branches and unreferenced blobs"
    )
    prune.add_argument("session", help="session id")
    prune.set_defaults(func=prune_command)

    delete = subparsers.add_parser(
        "delete", parents=[*parents, json_flag], help="delete a session and everything it owns"
    )
    delete.add_argument("session", help="session id")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(func=delete_command)


# --- lash gc -----------------------------------------------------------------------------


def gc_command(args: argparse.Namespace, out: Output) -> int:
    with opened(args) as handle:
        if args.dry_run:
            report = _unreferenced(handle, out)
        else:
            with out.progress("collecting unreferenced blobs"):
                report = handle.gc()
    if out.json_mode:
        out.json({"dry_run": args.dry_run, **codec.to_plain(report)})
    elif args.dry_run:
        out.line(
            f"would delete up to {report.deleted_blob_count} unreferenced blobs "
            f"(keeping {report.retained_blob_count}; {report.root_count} referenced by heads)"
        )
    else:
        out.line(
            f"deleted {report.deleted_blob_count} blobs, kept {report.retained_blob_count} "
            f"({report.root_count} referenced by heads)"
        )
    return 0


def _head_roots(store: lash.SessionStore) -> set[BlobRef]:
    read = store.load_session(ActivePath())
    if read is None:
        return set()
    manifest_bytes = store.blobs.get(read.checkpoint_ref)
    if manifest_bytes is None:
        return {read.checkpoint_ref}
    manifest = codec.decode(manifest_bytes, Checkpoint, f"checkpoint manifest {read.checkpoint_ref}")
    return {read.checkpoint_ref, *manifest.blob_refs()}


def _unreferenced(handle: lash.Lash, out: Output) -> GcReport:
    """What :meth:`lash.Lash.gc` would collect, ignoring grace periods; deletes nothing."""
    shared = handle.backend.blobs
    roots: set[BlobRef] = set()
    kept = doomed = 0
    infos = handle.sessions()
    with out.progress("scanning sessions", len(infos)) as ticker:
        for info in infos:
            ticker.advance()
            store = handle.backend.open_session(info.session_id, create=False)
            if store is None:
                continue
            try:
                session_roots = _head_roots(store)
                roots |= session_roots
                if shared is None:  # each session keeps its own blobs
                    counts = _split(store.blobs, session_roots)
                    kept, doomed = kept + counts[0], doomed + counts[1]
            finally:
                store.close()
        if shared is not None:
            ticker.describe("listing shared blobs")
            kept, doomed = _split(shared, roots)
    return GcReport(len(roots), kept, doomed)


def _split(blobs: BlobStore, roots: set[BlobRef]) -> tuple[int, int]:
    """(referenced, unreferenced) blob counts of ``blobs``."""
    refs = list(blobs.refs())
    referenced = sum(ref in roots for ref in refs)
    return referenced, len(refs) - referenced


# --- lash prune --------------------------------------------------------------------------


def prune_command(args: argparse.Namespace, out: Output) -> int:
    with opened(args) as handle:
        require_session(handle, args.session)
        with handle.session(args.session) as session:
            report = session.prune()
    if out.json_mode:
        out.json({"session_id": args.session, **codec.to_plain(report)})
    else:
        out.line(
            f"pruned {args.session}: {report.tombstoned_node_count} off-path nodes hidden, "
            f"{report.removed_node_count} removed, {report.gc.deleted_blob_count} blobs deleted"
        )
    return 0


# --- lash delete -------------------------------------------------------------------------


def delete_command(args: argparse.Namespace, out: Output) -> int:
    with opened(args) as handle:
        read, _ = read_session(handle, args.session, ActivePath())
        children = [i.session_id for i in handle.sessions() if i.parent_session_id == args.session]
        if not args.yes:
            _confirm(f"delete session {args.session!r} (revision {read.head_revision if read else '-'})?")
        handle.delete(args.session)
    if out.json_mode:
        out.json({"session_id": args.session, "deleted": True, "kept_children": children})
        return 0
    out.line(f"deleted {args.session}")
    if children:
        out.line(f"its child sessions are kept: {', '.join(children)}")
    return 0


def _confirm(question: str) -> None:
    if not sys.stdin.isatty():
        raise CliError("refusing to delete without --yes (stdin is not a terminal)")
    answer = input(f"{question} [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise CliError("not deleted")
