"""``lash migrate --to CONFIG``: copy every session to another backend, verified and resumable.

Each session travels as an in-memory archive (:mod:`lash.cli.archive`): exported from the
configured backend, verified by hash, imported into the target and read back equal. A
session already in the target is compared instead of copied, so an interrupted migration
is finished by running the same command again; a target session that differs is an error,
never overwritten.
"""

from __future__ import annotations

import argparse
from typing import Any

import lash
from lash.cli.archive import export_session, import_session, read_archive
from lash.cli.context import CliError, opened
from lash.cli.equality import differences, of_read
from lash.cli.output import Output
from lash.config import load_config


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "migrate", parents=parents, help="copy every session to the backend of another config (resumable)"
    )
    parser.add_argument("--to", required=True, metavar="CONFIG", help="config file of the target")
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    parser.set_defaults(func=migrate_command)


def migrate_session(source: lash.Lash, target: lash.Lash, session_id: str) -> str:
    """Copy one session: ``copied``, ``present`` (already equal in the target), ``empty`` (no commits)."""
    store = source.backend.open_session(session_id, create=False)
    if store is None:
        return "gone"
    try:
        read, meta = store.load_session(), store.load_meta()
    finally:
        store.close()
    existing = target.backend.open_session(session_id, create=False)
    if existing is not None:
        try:
            there = existing.load_session()
            same = (read is None) == (there is None) and (
                read is None or there is None or not differences(of_read(read), of_read(there))
            )
            if not same:
                raise CliError(f"session {session_id!r} already exists in the target and differs; not overwritten")
            if meta is not None and existing.load_meta() is None:  # a run killed between commit and meta
                existing.save_meta(meta)
        finally:
            existing.close()
        return "present"
    if read is not None:
        import_session(target, read_archive(export_session(source, session_id)))
        return "copied"
    created = target.backend.open_session(session_id, create=True)
    assert created is not None
    try:
        if meta is not None:
            created.save_meta(meta)
    finally:
        created.close()
    return "empty"


def migrate_command(args: argparse.Namespace, out: Output) -> int:
    target_config = load_config(args.to)
    results: list[tuple[str, str]] = []
    with opened(args) as source, lash.open(target_config) as target:
        if source.config.source is not None and source.config.source == target_config.source:
            raise CliError("--to names the configuration being migrated from")
        for info in sorted(source.sessions(), key=lambda i: i.session_id):
            results.append((info.session_id, migrate_session(source, target, info.session_id)))
            if not out.json_mode and out.interactive:
                out.line(f"{info.session_id}: {results[-1][1]}", style="dim")
    if out.json_mode:
        out.json({"target": str(target_config.source), "sessions": dict(results)})
        return 0
    counts = {status: sum(1 for _, s in results if s == status) for status in ("copied", "present", "empty")}
    out.line(
        f"migrated {len(results)} sessions to {target_config.source}: {counts['copied']} copied and verified, "
        f"{counts['present']} already there, {counts['empty']} without commits"
    )
    return 0
