"""``lash rekey [SESSION ...]``: re-encrypt stored sessions under the current ``[encryption] key_id``."""

from __future__ import annotations

import argparse
from typing import Any

from lash import codec
from lash.cli.context import opened
from lash.cli.output import Output


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON for scripts")
    rekey = subparsers.add_parser(
        "rekey",
        parents=[*parents, json_flag],
        help="re-encrypt sessions under the current [encryption] key_id, then collect the old blobs",
    )
    rekey.add_argument("sessions", nargs="*", metavar="SESSION", help="session ids (default: every session)")
    rekey.add_argument("--no-gc", action="store_true", help="keep the blobs under old keys (collect later: lash gc)")
    rekey.set_defaults(func=rekey_command)


def rekey_command(args: argparse.Namespace, out: Output) -> int:
    from lash.encryption import rekey  # imports cryptography: only for this command

    with opened(args) as handle:
        with out.progress("re-encrypting sessions"):
            report = rekey(handle.backend, args.sessions or None)
        gc = None
        if not args.no_gc and report.blob_count:
            with out.progress("collecting blobs under old keys"):
                gc = handle.gc()
    if out.json_mode:
        out.json({**codec.to_plain(report), "gc": None if gc is None else codec.to_plain(gc)})
        return 0
    out.line(
        f"re-encrypted {report.rekeyed_session_count} of {report.session_count} sessions under key id "
        f"{report.key_id!r}: {report.record_count} records, {report.blob_count} blobs"
    )
    if gc is not None:
        out.line(
            f"deleted {gc.deleted_blob_count} unreferenced blobs, kept {gc.retained_blob_count} "
            "(blobs younger than the GC grace period go with a later `lash gc`)"
        )
    return 0
