"""``lash demo``: record, commit, compact, close and resume a scripted agent session.

Everything lash promises shows up once: messages and tool calls appended every turn, a tool
registry that changes, an in-process plugin whose state is snapshotted and restored, usage
from two models plus a sub-agent, compaction into a new frame, and a resume in a fresh
:class:`lash.Lash` that must equal what was committed (exit 1 if it does not).
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

import lash
from lash.cli import demo_script as script
from lash.cli.context import CliError
from lash.cli.equality import differences, of_session
from lash.cli.output import Output, human_bytes
from lash.model import CommitResult, LedgerEntry, SessionConfig

ROOT_ID = "demo"
CHILD_ID = "demo.researcher"
KEEP_LAST = 6
CONFIG_TOML = f"""\
# Written by `lash demo`; run `lash sessions` in this directory to explore what it stored.
[store]
backend = "sqlite"
options = {{ path = "sessions" }}

[compaction]
strategy = "keep-recent"
options = {{ keep_last = {KEEP_LAST} }}
"""


class NotesPlugin:
    """An in-process plugin: remembers the files each session touched and offers a tool.

    Its state is what ``lash_snapshot_session`` stores and ``lash_restore_session`` gets back.
    """

    def __init__(self) -> None:
        self.__name__ = "lash-demo-notes"  # pluggy's plugin name: the key of its snapshot entry
        self.files: dict[str, list[str]] = {}

    def touch(self, session: lash.Session, path: str) -> None:
        files = self.files.setdefault(session.session_id, [])
        if path not in files:
            files.append(path)

    @lash.hookimpl
    def lash_materialize_session(self, session: lash.Session, plugin_options: dict, is_root_session: bool) -> None:
        if "reasoning_effort" not in session.protocol_turn_options:  # resumed sessions keep theirs
            session.set_protocol_turn_options(reasoning_effort="medium" if is_root_session else "low")

    @lash.hookimpl
    def lash_session_tools(self, session: lash.Session) -> list[dict[str, Any]]:
        return [{"name": "recall_files", "description": "List the files touched in this session."}]

    @lash.hookimpl
    def lash_snapshot_session(self, session: lash.Session) -> dict[str, Any] | None:
        files = self.files.get(session.session_id)
        return {"files": list(files)} if files else None

    @lash.hookimpl
    def lash_restore_session(self, session: lash.Session, snapshot: dict[str, Any]) -> None:
        self.files[session.session_id] = list(snapshot["files"])


@attrs.frozen
class BlobCounts:
    """Snapshot blobs referenced by the turn commits: newly stored vs reused from before."""

    stored: dict[str, int]
    reused: dict[str, int]


class RefCounter:
    """Counts, per snapshot kind, refs seen for the first time vs seen in an earlier commit."""

    KINDS = ("tool_state", "plugin_snapshot", "execution_state")

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self.stored = dict.fromkeys(self.KINDS, 0)
        self.reused = dict.fromkeys(self.KINDS, 0)

    def add(self, result: CommitResult) -> None:
        manifest = result.manifest
        refs = (manifest.tool_state_ref, manifest.plugin_snapshot_ref, manifest.execution_state_ref)
        for kind, ref in zip(self.KINDS, refs, strict=True):
            if ref is None:
                continue
            counts = self.reused if ref in self._seen else self.stored
            counts[kind] += 1
            self._seen.add(ref)

    def counts(self) -> BlobCounts:
        return BlobCounts(dict(self.stored), dict(self.reused))


@attrs.frozen
class DemoReport:
    """What ``lash demo`` prints (and emits with ``--json``)."""

    directory: str
    kept: bool
    turns: int
    commits: int
    compacted: bool
    nodes: int
    messages_in_context: int
    frames: int
    revision: int | None
    child_session: str
    child_nodes: int
    blobs: BlobCounts
    bytes_on_disk: int
    files_on_disk: int
    usage: tuple[LedgerEntry, ...]
    equal: bool
    differences: tuple[str, ...]


def run_demo(directory: Path, turns: int, *, kept: bool, on_turn: Callable[[int], None] = lambda t: None) -> DemoReport:
    """Record ``turns`` turns in ``directory``, close everything, resume and compare."""
    config_path = directory / "lash.toml"
    config_path.write_text(CONFIG_TOML, encoding="utf-8")
    refs = RefCounter()
    commits = 0
    compacted = False
    before: dict[str, dict[str, Any]] = {}
    notes = NotesPlugin()
    with lash.open(config_path, plugins=[notes]) as handle:
        root = handle.session(ROOT_ID)
        root.config = SessionConfig("anthropic", script.MAIN_MODEL, 200_000, "agent", "compaction")
        root.append_message("system", script.SYSTEM_PROMPT)
        for turn in range(turns):
            _record_turn(root, notes, turn)
            if turn == turns // 2:
                before[CHILD_ID] = _run_child(root, notes, turn)
            refs.add(root.commit())
            commits += 1
            if turn == (2 * turns) // 3 and root.compact():
                commits += 1
                compacted = True
            on_turn(turn)
        before[ROOT_ID] = of_session(root)
        plugin_before = dict(notes.files)

    resumed_notes = NotesPlugin()
    with lash.open(config_path, plugins=[resumed_notes]) as handle:
        resumed = handle.session(ROOT_ID)
        resumed_child = handle.session(CHILD_ID)
        after = {ROOT_ID: of_session(resumed), CHILD_ID: of_session(resumed_child)}
        diffs = [f"{sid}: {part}" for sid in before for part in differences(before[sid], after[sid])]
        if resumed_notes.files != plugin_before:
            diffs.append("plugin state")
        report_fields = {
            "nodes": len(resumed.graph),
            "messages_in_context": len(resumed.messages()),
            "frames": len(resumed.frames),
            "revision": resumed.head_revision,
            "child_nodes": len(resumed_child.graph),
            "usage": resumed.usage_report(include_children=True).entries,
        }
    files = [p for p in (directory / "sessions").rglob("*") if p.is_file()]
    return DemoReport(
        directory=str(directory),
        kept=kept,
        turns=turns,
        commits=commits,
        compacted=compacted,
        child_session=CHILD_ID,
        blobs=refs.counts(),
        bytes_on_disk=sum(p.stat().st_size for p in files),
        files_on_disk=len(files),
        equal=not diffs,
        differences=tuple(diffs),
        **report_fields,
    )


def _record_turn(session: lash.Session, notes: NotesPlugin, turn: int) -> None:
    """One agent turn: the user asks, the assistant maybe calls a tool, then answers."""
    session.tools.replace(script.tools_for(turn))
    session.append_message("user", script.user_message(turn))
    if script.uses_tool(turn):
        call = script.tool_call(turn)
        session.append_message("assistant", "", tool_calls=[call])
        session.append_message("tool", script.tool_result(turn), tool_call_id=call["id"])
        session.record_usage("agent", script.SMALL_MODEL, script.small_usage(turn))
        notes.touch(session, call["arguments"]["path"])
    session.append_message("assistant", script.assistant_message(turn))
    session.append_event("turn_finished", {"turn": turn, "tool_calls": int(script.uses_tool(turn))})
    session.record_usage("agent", script.MAIN_MODEL, script.main_usage(turn))
    session.set_execution_state(f"turn={turn};cursor={turn * 7 % 13};pending=[]".encode())


def _run_child(parent: lash.Session, notes: NotesPlugin, turn: int) -> dict[str, Any]:
    """A sub-agent session with its own messages and usage, committed every step; returns its digest."""
    child = parent.spawn_child(CHILD_ID)
    child.config = SessionConfig("anthropic", script.SMALL_MODEL, 200_000, "subagent", "")
    notes.touch(child, script.task_for(turn).path)
    for step, (question, answer) in enumerate(script.child_turns(turn)):
        child.append_message("user", question)
        child.append_message("assistant", answer)
        child.record_usage("subagent:researcher", script.SMALL_MODEL, script.child_usage(step))
        child.commit()
    digest = of_session(child)
    child.close()
    return digest


# --- the command -------------------------------------------------------------------------


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        parents=parents,
        help="record, compact and resume a scripted agent session (no network)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--turns", type=_positive, default=20, help="number of agent turns (default: 20)")
    parser.add_argument("--dir", type=Path, help="keep the sessions in DIR instead of a temporary directory")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=demo_command)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


@contextmanager
def _workspace(directory: Path | None) -> Iterator[Path]:
    if directory is None:
        with tempfile.TemporaryDirectory(prefix="lash-demo-") as tmp:
            yield Path(tmp)
        return
    sessions = directory / "sessions"
    if sessions.exists() and any(sessions.iterdir()):
        raise CliError(f"{directory} already holds a demo; pass an empty or new directory")
    directory.mkdir(parents=True, exist_ok=True)
    yield directory.resolve()


def demo_command(args: argparse.Namespace, out: Output) -> int:
    with _workspace(args.dir) as directory, out.progress("recording turns", args.turns) as ticker:
        report = run_demo(directory, args.turns, kept=args.dir is not None, on_turn=lambda turn: ticker.advance())
    if out.json_mode:
        out.json(report)
    else:
        _print_report(out, report)
    return 0 if report.equal else 1


def _print_report(out: Output, report: DemoReport) -> None:
    blobs = report.blobs
    compaction = ", one of them the compaction" if report.compacted else ""
    out.markup("[bold]lash demo[/bold]: a scripted coding-agent session on the embedded SQLite backend")
    out.fields(
        [
            ("turns", f"{report.turns} ({report.commits} commits{compaction})"),
            ("session", f"{ROOT_ID}: {report.nodes} nodes, revision {report.revision}"),
            ("frames", f"{report.frames} (the model now sees {report.messages_in_context} messages)"),
            ("sub-agent", f"{report.child_session}: {report.child_nodes} nodes"),
            *(
                (f"{kind} blobs", f"{blobs.stored[kind]} stored, {blobs.reused[kind]} reused")
                for kind in RefCounter.KINDS
            ),
            ("on disk", f"{human_bytes(report.bytes_on_disk)} in {report.files_on_disk} files"),
        ]
    )
    out.line()
    out.usage_table(report.usage, title="usage (sub-agent rolled up)")
    out.line()
    if report.equal:
        out.markup(
            "[green]resumed in a new Lash: equal[/green] "
            "(messages, graph, frames, tools, ledger, execution state, plugin state)"
        )
    else:
        out.markup(f"[red]resumed session differs[/red]: {', '.join(report.differences)}")
    if report.kept:
        out.line(f"explore it: cd {report.directory} && lash sessions")
