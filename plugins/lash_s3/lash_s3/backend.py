"""The ``s3`` backend: heads, nodes, ledger, meta and blobs of every session in one bucket.

Blobs use the same content-addressed keys as the ``s3`` blob store (``<prefix>/sha256/...``,
shared by every session); each session lives under ``<prefix>/sessions/<sha256(id)[:32]>/``
(see :mod:`lash_s3.sessions`). The commit semantics are the core's
(:class:`lash.store.StandardSessionStore`); this module only maps sessions to key prefixes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from lash import codec
from lash.blobs import BlobProfile, EnvelopeBlobStore
from lash.store import SessionStorage, StorageBackend
from lash_s3.objects import S3Objects
from lash_s3.sessions import S3SessionStorage, SessionLayout, SessionState, decode_state
from lash_s3.storage import S3BlobStorage


class S3Backend(StorageBackend):
    """Every session and blob in one bucket under one prefix.

    ``client`` is a boto3 S3 client; ``gc_grace_seconds`` protects blobs (and node segments)
    of commits in flight from ``Lash.gc()`` and ``vacuum``.
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        prefix: str = "",
        *,
        blob_profile: str = BlobProfile.BALANCED,
        refresh_after_seconds: float = 600.0,
        gc_grace_seconds: float = 3600.0,
    ) -> None:
        super().__init__(gc_grace_seconds=gc_grace_seconds)
        self.objects = S3Objects(client, bucket)
        self.prefix = prefix.strip("/")
        self._sessions_root = f"{self.prefix}/sessions/" if self.prefix else "sessions/"
        self.blob_storage = S3BlobStorage(client, bucket, self.prefix, refresh_after_seconds=refresh_after_seconds)
        self._blob_store = EnvelopeBlobStore(self.blob_storage, blob_profile)

    def __repr__(self) -> str:
        return f"<S3Backend s3://{self.objects.bucket}/{self._sessions_root}>"

    def layout(self, session_id: str) -> SessionLayout:
        """Where ``session_id``'s objects live: a hash, so any id makes a valid, fixed-length key."""
        digest = hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:32]
        return SessionLayout(f"{self._sessions_root}{digest}/")

    def _open_storage(self, session_id: str, *, create: bool) -> S3SessionStorage | None:
        layout = self.layout(session_id)
        if create:  # one request: creates the state, or finds it there (412)
            self.objects.put_if(layout.state, codec.encode(SessionState(session_id)), etag=None)
        elif self.objects.head(layout.state) is None:
            return None
        return S3SessionStorage(self.objects, layout, segment_grace_seconds=self.gc_grace_seconds)

    def _session_blobs(self, storage: SessionStorage) -> EnvelopeBlobStore:
        return self._blob_store

    def _own_shared_blobs(self) -> EnvelopeBlobStore:
        return self._blob_store

    def _session_ids(self) -> list[str]:
        states = [f"{folder}state" for folder in self.objects.folders(self._sessions_root)]
        stored = self.objects.map(self.objects.get, states)
        return [decode_state(obj, key).session_id for key, obj in zip(states, stored, strict=True) if obj is not None]

    def _close(self) -> None:
        self.objects.close()
        self.blob_storage.objects.close()

    def _delete_storage(self, session_id: str) -> bool:
        layout = self.layout(session_id)
        existed = self.objects.head(layout.state) is not None
        self.objects.delete([layout.state])  # first: the session is gone for open and list at once
        rest = [obj.key for obj in self.objects.list(layout.root)]
        if rest:
            self.objects.delete(rest)
        return existed
