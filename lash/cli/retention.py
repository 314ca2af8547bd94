"""``lash retention [--dry-run] [--json]``: enforce the ``[retention]`` policy, then collect blobs."""

from __future__ import annotations

import argparse
from typing import Any

from lash import codec
from lash.cli.context import opened
from lash.cli.output import Output, human_bytes
from lash.retention import RetentionReport


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    command = subparsers.add_parser(
        "retention", parents=parents, help="delete what the [retention] policy says has expired, then collect blobs"
    )
    command.add_argument("--dry-run", action="store_true", help="report what would be deleted; change nothing")
    command.add_argument("--json", action="store_true", help="print JSON for scripts")
    command.set_defaults(func=retention_command)


def retention_command(args: argparse.Namespace, out: Output) -> int:
    with opened(args) as handle:
        configured = handle.config.retention is not None
        report = handle.apply_retention(dry_run=args.dry_run)
    if out.json_mode:
        out.json({**codec.to_plain(report), **report.totals(), "configured": configured})
        return 0
    if not configured:
        out.line("no [retention] section in the config: nothing to do")
        return 0
    _print(report, out)
    return 0


def _print(report: RetentionReport, out: Output) -> None:
    if report.sessions:
        rows = (
            [
                s.session_id,
                s.action,
                ", ".join(s.reasons),
                "-" if s.head_revision is None else s.head_revision,
                f"{s.node_count:,}",
                human_bytes(s.node_bytes),
                s.skipped or ("dry run" if report.dry_run else "done"),
            ]
            for s in report.sessions
        )
        out.table(["session", "action", "because", "revision", "nodes", "bytes", "outcome"], rows)
    prefix = "would delete" if report.dry_run else "deleted"
    out.line(
        f"{prefix} {report.sessions_deleted} sessions and {report.nodes_removed:,} nodes "
        f"({report.nodes_tombstoned:,} pruned from live sessions), {human_bytes(report.bytes_freed)} of node records"
    )
    if report.gc is not None:
        out.line(f"blob gc: deleted {report.gc.deleted_blob_count} blobs, kept {report.gc.retained_blob_count}")
    elif report.dry_run:
        out.line("blob gc runs after a real run (lash gc --dry-run counts unreferenced blobs now)")
