"""lash-s3 against a local moto S3 server: blob throughput, dedup across sessions, bytes stored.

    python -m benchmarks.s3_blobs                 # ~1 minute
    python -m benchmarks.s3_blobs --blobs 1000 --sessions 20

Reported:

* puts/s and gets/s of distinct ~8 KiB blobs through ``EnvelopeBlobStore`` with 1 thread and
  with 8 threads sharing one store (boto3 clients are thread-safe), plus re-puts/s of blobs
  already stored (a HEAD each, no upload);
* 10 sessions (memory heads + S3 blobs, through ``lash.open``) that share one ~64 KiB tool
  catalogue and each commit a few turns: the dedup hit rate (writes that found the object
  already stored), and bytes stored in the bucket against bytes the sessions handed over;
* commits/s of the reference workload (DESIGN §7) through ``lash.open``, with memory heads
  and S3 blobs, and with everything on S3 (backend ``s3``), with the S3 requests per commit;
  each also with a commit's blobs uploaded one at a time (no ``write_many``), and once more
  with ``--rtt-ms`` (20) added to every request, as a stand-in for the network to S3.

moto is an in-process Python emulator over HTTP on localhost: absolute numbers say little
about AWS (tens of ms per request there), the 1-vs-8-thread ratio and the dedup figures do.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lash_s3 import S3BlobStorage, s3_blob_store

import lash
from benchmarks.systems import SnapshotPlugin
from benchmarks.workload import execution_state, text, tool_catalogue, turns
from lash.blobs import EnvelopeBlobStore
from lash.model import BlobHint, BlobKind, BlobRef

FAKE_AWS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_EC2_METADATA_DISABLED": "true"}


def start_moto(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """``python -m moto.server`` on a free 127.0.0.1 port, once it answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name in ("credentials", "config"):
        (workdir / name).touch()
    os.environ.update(
        FAKE_AWS,
        AWS_SHARED_CREDENTIALS_FILE=str(workdir / "credentials"),
        AWS_CONFIG_FILE=str(workdir / "config"),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()
            return process, url
        except OSError:
            time.sleep(0.05)
    process.terminate()
    raise RuntimeError("moto server did not start")


def options(endpoint_url: str, bucket: str) -> dict[str, Any]:
    return {"bucket": bucket, "endpoint_url": endpoint_url, "addressing_style": "path", "create_bucket": True}


def fresh_store(endpoint_url: str) -> EnvelopeBlobStore:
    return s3_blob_store(**options(endpoint_url, f"bench-{uuid.uuid4().hex[:12]}"))


def rate(count: int, threads: int, work: Callable[[int], Any]) -> float:
    """Calls per second of ``work(i)`` for ``i in range(count)`` on ``threads`` threads."""
    started = time.perf_counter()
    if threads == 1:
        for i in range(count):
            work(i)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, range(count)))
    return count / (time.perf_counter() - started)


def throughput(endpoint_url: str, count: int, thread_counts: Sequence[int]) -> None:
    rng = random.Random(1)
    payloads = [execution_state(rng, i) for i in range(count)]
    hints = (BlobHint.COMPRESSIBLE,)
    print(f"\n== blob throughput: {count} distinct ~{len(payloads[0]) // 1024} KiB blobs ==")
    print(f"{'threads':>7}  {'puts/s':>8}  {'re-puts/s':>9}  {'gets/s':>8}")
    for threads in thread_counts:
        store = fresh_store(endpoint_url)
        refs: list[BlobRef] = [BlobRef("")] * count

        def put(i: int, store: EnvelopeBlobStore = store, refs: list[BlobRef] = refs) -> None:
            refs[i] = store.put(payloads[i], BlobKind.EXECUTION_STATE, hints)

        def get(i: int, store: EnvelopeBlobStore = store, refs: list[BlobRef] = refs) -> None:
            assert store.get(refs[i]) == payloads[i]

        puts = rate(count, threads, put)
        reputs = rate(count, threads, put)
        gets = rate(count, threads, get)
        print(f"{threads:>7}  {puts:>8.0f}  {reputs:>9.0f}  {gets:>8.0f}")


class CountingWrites:
    """Wraps ``S3BlobStorage.write`` to record every write: (ref, envelope size, uploaded?)."""

    def __init__(self, storage: S3BlobStorage) -> None:
        self.log: list[tuple[BlobRef, int, bool]] = []
        self._write = storage.write
        storage.write = self  # type: ignore[method-assign]

    def __call__(self, ref: BlobRef, envelope: bytes) -> bool:
        new = self._write(ref, envelope)
        self.log.append((ref, len(envelope), new))
        return new

    def report(self, label: str, refs: Collection[BlobRef] | None = None) -> None:
        rows = [row for row in self.log if refs is None or row[0] in refs]
        uploads = sum(new for _, _, new in rows)
        written = sum(size for _, size, _ in rows)
        uploaded = sum(size for _, size, new in rows if new)
        hits = len(rows) - uploads
        print(
            f"{label:<12} writes {len(rows):>4}  uploads {uploads:>4}  dedup hits {hits:>3} ({hits / len(rows):>5.1%})"
            f"  envelope bytes written {written:>9,}  uploaded {uploaded:>9,}"
        )


def dedup(endpoint_url: str, sessions: int, turns: int) -> None:
    rng = random.Random(2)
    catalogue = tool_catalogue(rng)
    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    config = {
        "store": {"backend": "memory"},
        "blobs": {"backend": "s3", "options": options(endpoint_url, bucket)},
        "gc": {"auto_every_commits": 0},
    }
    with lash.open(config) as handle:
        blobs = handle.backend.blobs
        assert isinstance(blobs, EnvelopeBlobStore) and isinstance(blobs.storage, S3BlobStorage)
        counter = CountingWrites(blobs.storage)
        tool_refs = set()
        for s in range(sessions):
            session = handle.session(f"agent-{s}")
            session.tools.replace(catalogue)
            for t in range(turns):
                session.append_message("user", text(rng, 1000))
                session.append_message("assistant", text(rng, 2000))
                session.record_usage("agent", "model", lash.TokenUsage(input_tokens=1000, output_tokens=300))
                session.set_execution_state(execution_state(rng, t))
                tool_refs.add(session.commit().manifest.tool_state_ref)
        pages = blobs.storage.client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        stored = sum(obj["Size"] for page in pages for obj in page.get("Contents", ()))
    raw_catalogue = len(json.dumps(catalogue).encode())
    written = sum(size for _, size, _ in counter.log)
    print(
        f"\n== dedup: {sessions} sessions x {turns} turns sharing one {raw_catalogue / 1024:.0f} KiB tool catalogue =="
    )
    print(f"distinct tool-state blobs: {len(tool_refs)}")
    counter.report("catalogue", tool_refs)
    counter.report("all blobs")
    print(f"bytes stored in the bucket {stored:,} = {stored / written:.1%} of the envelope bytes written ({written:,})")


def count_requests(client: Any) -> Counter[str]:
    """Counts of the S3 operations ``client`` sends from now on."""
    calls: Counter[str] = Counter()
    client.meta.events.register("before-call.s3", lambda model, **_: calls.update([model.name]))
    return calls


class OneUploadAtATime:
    """An S3BlobStorage without ``write_many``: a commit's blobs go up one after the other (the baseline)."""

    def __init__(self, inner: S3BlobStorage) -> None:
        self._inner = inner
        self.client = inner.client

    def read(self, ref: BlobRef) -> bytes | None:
        return self._inner.read(ref)

    def write(self, ref: BlobRef, envelope: bytes) -> bool:
        return self._inner.write(ref, envelope)

    def exists(self, ref: BlobRef) -> bool:
        return self._inner.exists(ref)

    def delete(self, refs: Collection[BlobRef], *, older_than: float | None = None) -> int:
        return self._inner.delete(refs, older_than=older_than)

    def list(self) -> Any:
        return self._inner.list()


def simulate_round_trip(client: Any, rtt_ms: float) -> None:
    """Delay every request by ``rtt_ms`` (moto on localhost answers in ~1 ms; S3 in tens of ms)."""
    if rtt_ms > 0:
        client.meta.events.register("before-send.s3", lambda **_: time.sleep(rtt_ms / 1000))


LAYOUTS = {
    "memory + s3 blobs": ("memory", True),
    "  one upload at a time": ("memory", False),
    "s3 backend": ("s3", True),
    "  one upload at a time ": ("s3", False),
}
"""Label → (backend, concurrent blob uploads)."""


def commit_rate(endpoint_url: str, count: int, rtt_ms: float) -> None:
    """Commits/s of the reference workload: memory heads + S3 blobs, and the ``s3`` backend."""
    print(f"\n== commits: {count} turns of the reference workload, one session, +{rtt_ms:g} ms per request ==")
    print(f"{'store':<24} {'commits/s':>9}  {'S3 requests/commit':>18}")
    workload = list(turns(count))
    for label, (backend, concurrent) in LAYOUTS.items():
        s3 = options(endpoint_url, f"bench-{uuid.uuid4().hex[:12]}")
        config: dict[str, Any] = {"store": {"backend": backend}, "gc": {"auto_every_commits": 0}}
        if backend == "s3":
            config["store"]["options"] = s3
        else:
            config["blobs"] = {"backend": "s3", "options": s3}
        plugin = SnapshotPlugin()
        with lash.open(config, plugins=[plugin]) as handle:
            session = handle.session("bench")
            blobs = handle.backend.blobs
            assert isinstance(blobs, EnvelopeBlobStore) and isinstance(blobs.storage, S3BlobStorage)
            client = blobs.storage.client
            if not concurrent:
                blobs.storage = OneUploadAtATime(blobs.storage)  # type: ignore[assignment]
            requests = count_requests(client)
            simulate_round_trip(client, rtt_ms)
            started = time.perf_counter()
            for turn in workload:
                session.append_message("user", turn.user)
                session.append_message("assistant", turn.assistant)
                session.record_usage(
                    "agent", "m", lash.TokenUsage(input_tokens=turn.usage[0], output_tokens=turn.usage[1])
                )
                session.set_execution_state(turn.execution_state)
                if turn.tools is not None:
                    session.tools.replace(turn.tools)
                    plugin.state = turn.plugin_state
                session.commit()
            elapsed = time.perf_counter() - started
        print(f"{label:<24} {count / elapsed:>9.1f}  {requests.total() / count:>18.1f}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=400, help="distinct blobs per throughput run")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--turns", type=int, default=5, help="turns per session in the dedup run")
    parser.add_argument("--commits", type=int, default=100, help="turns in the commit-rate run")
    parser.add_argument("--only-commits", action="store_true", help="run only the commit-rate part")
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="latency added to every request (commit rate)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_moto(Path(tmp))
        try:
            if not args.only_commits:
                throughput(url, args.blobs, (1, 8))
                dedup(url, args.sessions, args.turns)
            commit_rate(url, args.commits, 0.0)
            commit_rate(url, args.commits, args.rtt_ms)
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
