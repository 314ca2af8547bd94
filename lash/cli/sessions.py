"""Read commands: ``lash sessions``, ``lash show SESSION``, ``lash usage SESSION``."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lash.cli.context import opened, read_session
from lash.cli.output import Output, one_line
from lash.model import ActivePath, FullGraph, Node, NodeKind
from lash.session import UsageReport


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    json_flag = argparse.ArgumentParser(add_help=False)
    json_flag.add_argument("--json", action="store_true", help="print JSON for scripts")
    parents = [*parents, json_flag]

    listing = subparsers.add_parser("sessions", parents=parents, help="list stored sessions")
    listing.set_defaults(func=sessions_command)

    show = subparsers.add_parser("show", parents=parents, help="print a session's transcript")
    show.add_argument("session", help="session id")
    scope = show.add_mutually_exclusive_group()
    scope.add_argument("--path", dest="full", action="store_false", help="the active path only (default)")
    scope.add_argument("--full", dest="full", action="store_true", help="every node, including other branches")
    scope.add_argument("--frame", action="store_true", help="only the messages the model sees now (current frame)")
    show.set_defaults(func=show_command, full=False)

    usage = subparsers.add_parser("usage", parents=parents, help="token usage of a session by source and model")
    usage.add_argument("session", help="session id")
    usage.add_argument("--children", action="store_true", help="include every sub-agent (child) session")
    usage.set_defaults(func=usage_command)


# --- lash sessions -----------------------------------------------------------------------


def sessions_command(args: argparse.Namespace, out: Output) -> int:
    with opened(args) as handle:
        infos = sorted(handle.sessions(), key=lambda i: i.session_id)
    if out.json_mode:
        out.json(infos)
        return 0
    if not infos:
        out.line("no sessions")
        return 0
    out.table(
        ["id", "parent", "user msgs", "first user message", "revision"],
        (
            [
                i.session_id,
                i.parent_session_id or "",
                i.user_message_count,
                one_line(i.first_user_message or "", 48),
                "-" if i.head_revision is None else i.head_revision,
            ]
            for i in infos
        ),
    )
    return 0


# --- lash show ---------------------------------------------------------------------------


def show_command(args: argparse.Namespace, out: Output) -> int:
    with opened(args) as handle:
        if args.frame:
            read_session(handle, args.session)  # an unknown id is an error, not a new session
            session = handle.session(args.session)
            messages = session.messages()
            frame = session.current_frame
            session.close()
            if out.json_mode:
                out.json({"session_id": args.session, "frame": frame, "messages": messages})
            else:
                out.line(f"frame {frame.frame_id} ({frame.reason}): {len(messages)} messages", style="dim")
                for body in messages:
                    _print_message(out, body)
            return 0
        read, _ = read_session(handle, args.session, FullGraph() if args.full else ActivePath())
    if read is None:
        nodes: list[Node] = []
        on_path: set[str] = set()
    else:
        nodes = list(read.graph.nodes.values())
        on_path = {n.node_id for n in read.graph.active_path()}
    if out.json_mode:
        out.json(
            {
                "session_id": args.session,
                "revision": read.head_revision if read else None,
                "leaf_node_id": read.graph.leaf_node_id if read else None,
                "nodes": nodes,
            }
        )
        return 0
    if read is None:
        out.line(f"session {args.session!r} has no commits yet")
        return 0
    out.line(f"session {args.session} · revision {read.head_revision} · {len(nodes)} nodes", style="dim")
    for node in nodes:
        if node.node_id not in on_path:
            out.line(f"  (branch, parent {node.parent_id})", style="dim")
        _print_node(out, node)
    return 0


def _print_node(out: Output, node: Node) -> None:
    body = node.body
    if node.kind == NodeKind.MESSAGE and isinstance(body, dict):
        _print_message(out, body)
    elif node.kind == NodeKind.FRAME and isinstance(body, dict):
        out.line(f"──── new frame ({body.get('reason', '?')}) ────", style="bold")
    elif node.kind == NodeKind.EVENT and isinstance(body, dict):
        out.line(f"· {body.get('type', 'event')} {_compact_json(body.get('body'))}", style="dim")
    else:
        out.line(f"· {node.kind} {_compact_json(body)}", style="dim")


def _print_message(out: Output, body: dict[str, Any]) -> None:
    role = str(body.get("role", "?"))
    header = role
    if body.get("tool_call_id"):
        header += f" ({body['tool_call_id']})"
    out.line(header, style="bold cyan" if role == "user" else "bold")
    content = body.get("content")
    text = content if isinstance(content, str) else _compact_json(content)
    for line in text.splitlines():
        out.line(f"    {line}")
    for call in body.get("tool_calls") or ():
        if isinstance(call, dict):
            out.line(f"    → {call.get('name', '?')}({_compact_json(call.get('arguments', {}))})", style="yellow")


def _compact_json(value: Any) -> str:
    return one_line(json.dumps(value, ensure_ascii=False, default=repr), 120)


# --- lash usage --------------------------------------------------------------------------


def usage_command(args: argparse.Namespace, out: Output) -> int:
    with opened(args) as handle:
        read, _ = read_session(handle, args.session, ActivePath())
        report = UsageReport(read.token_ledger if read else ())
        if args.children:
            report = report + handle.usage_of_children(args.session)
    if out.json_mode:
        out.json({"session_id": args.session, "entries": report.entries, "total": report.total})
        return 0
    if not report.entries:
        out.line(f"session {args.session!r} has recorded no usage")
        return 0
    out.usage_table(report.entries)
    return 0
