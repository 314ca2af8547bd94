"""lash-s3 against a local moto S3 server: blob throughput, dedup across sessions, bytes stored.

    python -m benchmarks.s3_blobs                 # ~1 minute
    python -m benchmarks.s3_blobs --blobs 1000 --sessions 20

Reported:

* puts/s and gets/s of distinct ~8 KiB blobs through ``EnvelopeBlobStore`` with 1 thread and
  with 8 threads sharing one store (boto3 clients are thread-safe), plus re-puts/s of blobs
  already stored (a HEAD each, no upload);
* 10 sessions (memory heads + S3 blobs, through ``lash.open``) that share one ~64 KiB tool
  catalogue and each commit a few turns: the dedup hit rate (writes that found the object
  already stored), and bytes stored in the bucket against bytes the sessions handed over.

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
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lash_s3 import S3BlobStorage, s3_blob_store

import lash
from benchmarks.workload import execution_state, text, tool_catalogue
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blobs", type=int, default=400, help="distinct blobs per throughput run")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--turns", type=int, default=5, help="turns per session in the dedup run")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        process, url = start_moto(Path(tmp))
        try:
            throughput(url, args.blobs, (1, 8))
            dedup(url, args.sessions, args.turns)
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
