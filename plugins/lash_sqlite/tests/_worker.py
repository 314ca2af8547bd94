"""A separate OS process that commits through lash's public API (run by the reliability tests).

``python _worker.py contend <dir> <session> <name> <commits> <start_at>``: wait until the epoch
time ``start_at`` (so that every worker contends), then commit ``commits`` messages,
refreshing and retrying on :class:`lash.HeadRevisionConflict`; prints a JSON summary.
``python _worker.py forever <dir> <session>``: commit turns with snapshots until killed;
prints ``ready`` once the first commit is durable.
"""

from __future__ import annotations

import json
import os
import sys
import time

import lash


def _open(directory: str) -> lash.Lash:
    return lash.open({"store": {"backend": "sqlite", "options": {"path": directory}}, "gc": {"auto_every_commits": 7}})


def contend(directory: str, session_id: str, name: str, commits: int, start_at: float) -> None:
    appended: list[str] = []
    conflicts = 0
    with _open(directory) as handle:
        session = handle.session(session_id)
        time.sleep(max(0.0, start_at - time.time()))
        for i in range(commits):
            appended.append(session.append_message("user", f"{name}:{i}"))
            while True:
                try:
                    session.commit()
                    break
                except lash.HeadRevisionConflict:
                    conflicts += 1
                    session.refresh()
    print(json.dumps({"name": name, "appended": appended, "commits": commits, "conflicts": conflicts}))


def forever(directory: str, session_id: str) -> None:
    with _open(directory) as handle:
        session = handle.session(session_id)
        turn = 0
        while True:
            turn += 1
            session.append_message("user", f"question {turn} " * 20)
            session.append_message("assistant", f"answer {turn} " * 40)
            session.record_usage("agent", "model", lash.TokenUsage(input_tokens=turn, output_tokens=1))
            session.set_execution_state(os.urandom(2048) + b"state" * 1000)
            if turn % 3 == 0:
                session.tools.register({"name": f"tool-{turn}", "description": "d" * 2000})
            session.commit()
            if turn == 1:
                print("ready", flush=True)


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    if mode == "contend":
        contend(args[0], args[1], args[2], int(args[3]), float(args[4]))
    else:
        forever(args[0], args[1])
