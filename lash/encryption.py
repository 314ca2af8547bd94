"""Encryption at rest: AES-256-GCM over every record and blob, applied once for every backend.

Imported only when ``[encryption]`` is configured (it needs ``cryptography``, the
``lash[encryption]`` extra). :class:`Encryption` is attached to a
:class:`~lash.store.StorageBackend`, which wraps each session's primitives in
:class:`EncryptedSessionStorage` and its blob store in :class:`EncryptedBlobStore`: backends
keep storing opaque bytes and never see plaintext or keys.

Keys. A master key (32 bytes, from a key provider, named by a key id) never encrypts data
itself; HKDF-SHA256 derives purpose-bound keys from it:

* each session's *data key* (``info`` = the session id) seals its head, meta, ledger rows
  and node records, each with a random 96-bit nonce and its *slot* (``head``, ``meta``,
  ``ledger:<row>``, ``node:<id>``) as associated data, so a record cannot be moved to
  another session or slot undetected;
* the domain's *ref key* computes blob refs: ``sha256:<HMAC-SHA256(ref key, content)>``;
* each blob's *blob key* (``info`` = its ref) seals the blob's usual envelope.

Every sealed record records the key id and a 4-byte key check, so a rotated key stays
readable while its provider still supplies it, and a wrong key is told apart from altered
bytes. Content addressing: refs are keyed by the master key, so sessions under one key
deduplicate blobs while equal content under two keys (tenants) gets unrelated refs, and
nothing about the content can be confirmed from a ref without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import AsyncIterator, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import attrs

from lash import codec
from lash.blobs import (
    BlobProfile,
    BlobStorage,
    BlobStore,
    EnvelopeBlobStore,
    OpenedEnvelope,
    check_ref,
    open_envelope,
    seal,
)
from lash.errors import (
    BlobDecryptionError,
    BlobIntegrityError,
    ConfigError,
    CorruptRecordError,
    DecryptionError,
    SchemaVersionError,
    SessionDeletedError,
)
from lash.keys import Keyring, MasterKey
from lash.model import BlobKind, BlobRef, Node
from lash.store import (
    AsyncSessionStorage,
    AsyncStorageTransaction,
    LedgerKey,
    SessionStorage,
    StandardSessionStore,
    StorageTransaction,
    StoredHead,
    StoredNode,
)

try:
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
except ModuleNotFoundError as exc:  # pragma: no cover - depends on what is installed
    raise ConfigError(
        "encryption needs the cryptography package: pip install 'lash[encryption]'", key="encryption"
    ) from exc

MAGIC = codec.ENCRYPTED_MAGIC
FORMAT_VERSION = 1
NONCE_BYTES = 12
KEY_CHECK_BYTES = 4

__all__ = [
    "AsyncEncryptedSessionStorage",
    "EncryptedBlobStore",
    "EncryptedSessionStorage",
    "Encryption",
    "RekeyReport",
    "rekey",
]


# --- keys ----------------------------------------------------------------------------------


def derive_key(master: MasterKey, purpose: str, context: str = "") -> bytes:
    """A 32-byte key for ``purpose`` (and ``context``: a session id, a ref) from ``master``."""
    info = f"lash/v{FORMAT_VERSION}/{purpose}".encode() + b"\x00" + context.encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master.material)


def key_check(master: MasterKey) -> bytes:
    """A short public fingerprint of ``master``: tells a wrong key from altered bytes."""
    return derive_key(master, "key-check")[:KEY_CHECK_BYTES]


def keyed_ref(ref_key: bytes, content: bytes) -> BlobRef:
    """The ref of ``content`` under a domain's ref key (HMAC-SHA256, rendered like every ref)."""
    return BlobRef("sha256:" + hmac.new(ref_key, content, hashlib.sha256).hexdigest())


# --- the sealed format -----------------------------------------------------------------------


@attrs.frozen
class Sealed:
    """One encrypted record or blob: ``MAGIC`` + msgpack ``[version, key_id, check, slot, nonce, ciphertext]``."""

    key_id: str
    check: bytes
    slot: str
    nonce: bytes = attrs.field(repr=False)
    ciphertext: bytes = attrs.field(repr=False)

    def to_bytes(self) -> bytes:
        return MAGIC + codec.pack([FORMAT_VERSION, self.key_id, self.check, self.slot, self.nonce, self.ciphertext])

    @classmethod
    def parse(cls, data: bytes, what: str) -> Sealed:
        """The sealed record in ``data``; a clear error when it is plaintext or malformed."""
        if not data.startswith(MAGIC):
            raise DecryptionError(
                what,
                "it is stored unencrypted, but [encryption] is on (plaintext is refused so that nobody can "
                "substitute unencrypted records; copy unencrypted sessions in with `lash migrate --to`)",
            )
        try:
            fields = codec.unpack(data[len(MAGIC) :], what)
        except CorruptRecordError:
            fields = None
        if isinstance(fields, list) and fields and isinstance(fields[0], int) and fields[0] > FORMAT_VERSION:
            raise SchemaVersionError(fields[0], FORMAT_VERSION, f"encryption format of {what}")
        if not (
            isinstance(fields, list)
            and len(fields) == 6
            and isinstance(fields[1], str)
            and isinstance(fields[3], str)
            and all(isinstance(f, bytes) for f in (fields[2], fields[4], fields[5]))
        ):
            raise DecryptionError(what, "the encrypted envelope is malformed (altered bytes)")
        return cls(fields[1], fields[2], fields[3], fields[4], fields[5])


def _aad(slot: str) -> bytes:
    return f"lash/v{FORMAT_VERSION}\x00".encode() + slot.encode("utf-8")


def _seal(aead: AESGCM, master: MasterKey, check: bytes, slot: str, plaintext: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return Sealed(master.key_id, check, slot, nonce, aead.encrypt(nonce, plaintext, _aad(slot))).to_bytes()


def _open(aead: AESGCM, check: bytes, sealed: Sealed, what: str) -> bytes:
    if not hmac.compare_digest(sealed.check, check):
        raise DecryptionError(what, f"the key supplied for key id {sealed.key_id!r} is not the key it was written with")
    try:
        return aead.decrypt(sealed.nonce, sealed.ciphertext, _aad(sealed.slot))
    except InvalidTag:
        reason = f"authentication failed under key id {sealed.key_id!r}: the stored bytes were altered"
        raise DecryptionError(what, reason) from None


# --- session records -------------------------------------------------------------------------


class SessionCipher:
    """Seals and opens the records of one session with its data keys (one per key id)."""

    def __init__(self, keyring: Keyring, session_id: str) -> None:
        self.keyring = keyring
        self.session_id = session_id
        self._aeads: dict[str, tuple[AESGCM, bytes]] = {}
        write = keyring.write_key
        self.ledger_index_key = derive_key(write, "ledger-index", session_id)

    def __repr__(self) -> str:
        return f"<SessionCipher {self.session_id!r} write_key_id={self.keyring.write_key.key_id!r}>"

    def _aead(self, master: MasterKey) -> tuple[AESGCM, bytes]:
        cached = self._aeads.get(master.key_id)
        if cached is None:
            cached = self._aeads[master.key_id] = (
                AESGCM(derive_key(master, "session", self.session_id)),
                key_check(master),
            )
        return cached

    def seal(self, slot: str, plaintext: bytes) -> bytes:
        master = self.keyring.write_key
        aead, check = self._aead(master)
        return _seal(aead, master, check, slot, plaintext)

    def open(self, data: bytes, what: str, slot: str | None = None, *, slot_prefix: str = "") -> tuple[Sealed, bytes]:
        """The sealed header and plaintext of ``data``, checking its slot (exactly, or by prefix)."""
        sealed = Sealed.parse(data, what)
        if (slot is not None and sealed.slot != slot) or not sealed.slot.startswith(slot_prefix):
            raise DecryptionError(what, f"it was sealed for slot {sealed.slot!r} (a record moved from elsewhere)")
        master = self.keyring.get(sealed.key_id, needed_for=what)
        aead, check = self._aead(master)
        return sealed, _open(aead, check, sealed, what)


def _node_slot(node_id: str) -> str:
    return "node:" + node_id


class RecordSealing:
    """What an encrypted transaction does around each primitive, without the call itself.

    Clear to the backend: node ids, parent ids, tombstone flags and the head revision (the
    columns it indexes and walks). Ledger rows are keyed by an HMAC of ``(source, model)``,
    so model names are sealed too. ``key_ids`` collects the key ids of every record read
    (:func:`rekey` uses it to find records under old keys). :class:`EncryptedTransaction`
    and :class:`AsyncEncryptedTransaction` only add the (awaited) call to the inner one.
    """

    def __init__(self, cipher: SessionCipher) -> None:
        self.cipher = cipher
        self.key_ids: set[str] = set()
        self._ledger_rows: dict[LedgerKey, LedgerKey] | None = None  # (source, model) → the backend's row key

    def _what(self, record: str) -> str:
        return f"{record} of session {self.cipher.session_id!r}"

    def _open(self, data: bytes, what: str, slot: str | None = None, *, slot_prefix: str = "") -> bytes:
        sealed, plaintext = self.cipher.open(data, what, slot, slot_prefix=slot_prefix)
        self.key_ids.add(sealed.key_id)
        return plaintext

    def _open_node(self, data: bytes, node_id: str | None) -> bytes:
        if node_id is not None:
            return self._open(data, self._what(f"node {node_id!r}"), _node_slot(node_id))
        return self._open(data, self._what("a node"), slot_prefix="node:")

    def open_head(self, data: bytes | None) -> bytes | None:
        return None if data is None else self._open(data, self._what("head"), "head")

    def open_meta(self, data: bytes | None) -> bytes | None:
        return None if data is None else self._open(data, self._what("meta"), "meta")

    def open_found(self, found: Mapping[str, bytes]) -> dict[str, bytes]:
        return {node_id: self._open_node(data, node_id) for node_id, data in found.items()}

    def open_all(self, records: Iterable[bytes]) -> list[bytes]:
        return [self._open_node(data, None) for data in records]

    def open_path(self, records: Sequence[bytes], leaf_id: str) -> list[bytes]:
        return [self._open_node(data, leaf_id if i == 0 else None) for i, data in enumerate(records)]

    def seal_nodes(self, nodes: Sequence[StoredNode]) -> list[StoredNode]:
        seal = self.cipher.seal
        return [StoredNode(n.node_id, n.parent_id, seal(_node_slot(n.node_id), n.data)) for n in nodes]

    # Ledgers hold one row per (source, model): reading them all keeps row keys stable across key rotation.

    def open_ledger(self, stored: Mapping[LedgerKey, bytes]) -> dict[LedgerKey, tuple[LedgerKey, bytes]]:
        """(source, model) → (row key, usage bytes) of every stored row, in insertion order."""
        rows: dict[LedgerKey, tuple[LedgerKey, bytes]] = {}
        for row_key, data in stored.items():
            what = self._what("a ledger entry")
            entry = codec.unpack(self._open(data, what, "ledger:" + row_key[0]), what)
            if not (isinstance(entry, list) and len(entry) == 3 and all(isinstance(e, str) for e in entry[:2])):
                raise DecryptionError(what, "the decrypted ledger entry is malformed")
            source, model, usage = entry
            rows[(source, model)] = (row_key, usage)
        self._ledger_rows = {key: row_key for key, (row_key, _) in rows.items()}
        return rows

    @staticmethod
    def select_ledger(
        rows: Mapping[LedgerKey, tuple[LedgerKey, bytes]], keys: Collection[LedgerKey] | None
    ) -> dict[LedgerKey, bytes]:
        if keys is None:
            return {key: usage for key, (_, usage) in rows.items()}
        return {key: rows[key][1] for key in keys if key in rows}

    @property
    def ledger_known(self) -> bool:
        """Whether the row keys are known (a write must read the ledger first otherwise)."""
        return self._ledger_rows is not None

    def seal_ledger(self, rows: Mapping[LedgerKey, bytes]) -> dict[LedgerKey, bytes]:
        existing = self._ledger_rows or {}
        sealed: dict[LedgerKey, bytes] = {}
        for (source, model), usage in rows.items():
            row_key = existing.get((source, model))
            if row_key is None:
                digest = hmac.new(self.cipher.ledger_index_key, codec.pack([source, model]), hashlib.sha256)
                row_key = (digest.hexdigest(), "")
            sealed[row_key] = self.cipher.seal("ledger:" + row_key[0], codec.pack([source, model, usage]))
        return sealed


class EncryptedTransaction(RecordSealing):
    """A :class:`~lash.store.StorageTransaction` that seals what it writes and opens what it reads."""

    def __init__(self, inner: StorageTransaction, cipher: SessionCipher) -> None:
        super().__init__(cipher)
        self.inner = inner

    def read_head(self) -> bytes | None:
        return self.open_head(self.inner.read_head())

    def write_head(self, revision: int, data: bytes) -> None:
        self.inner.write_head(revision, self.cipher.seal("head", data))

    def read_meta(self) -> bytes | None:
        return self.open_meta(self.inner.read_meta())

    def write_meta(self, data: bytes) -> None:
        self.inner.write_meta(self.cipher.seal("meta", data))

    def read_nodes(self, node_ids: Collection[str], *, include_tombstoned: bool = False) -> dict[str, bytes]:
        return self.open_found(self.inner.read_nodes(node_ids, include_tombstoned=include_tombstoned))

    def read_all_nodes(self) -> list[bytes]:
        return self.open_all(self.inner.read_all_nodes())

    def read_path(self, leaf_id: str) -> list[bytes]:
        return self.open_path(self.inner.read_path(leaf_id), leaf_id)

    def insert_nodes(self, nodes: Sequence[StoredNode]) -> None:
        self.inner.insert_nodes(self.seal_nodes(nodes))

    def clear_nodes(self) -> None:
        self.inner.clear_nodes()

    def tombstone_nodes(self, node_ids: Collection[str]) -> int:
        return self.inner.tombstone_nodes(node_ids)

    def vacuum(self) -> int:
        return self.inner.vacuum()

    def read_ledger(self, keys: Collection[LedgerKey] | None = None) -> dict[LedgerKey, bytes]:
        return self.select_ledger(self.open_ledger(self.inner.read_ledger(None)), keys)

    def write_ledger(self, rows: Mapping[LedgerKey, bytes]) -> None:
        if not self.ledger_known:
            self.open_ledger(self.inner.read_ledger(None))
        self.inner.write_ledger(self.seal_ledger(rows))


class AsyncEncryptedTransaction(RecordSealing):
    """:class:`EncryptedTransaction` over an :class:`~lash.store.AsyncStorageTransaction`."""

    def __init__(self, inner: AsyncStorageTransaction, cipher: SessionCipher) -> None:
        super().__init__(cipher)
        self.inner = inner

    async def read_head(self) -> bytes | None:
        return self.open_head(await self.inner.read_head())

    async def write_head(self, revision: int, data: bytes) -> None:
        await self.inner.write_head(revision, self.cipher.seal("head", data))

    async def read_meta(self) -> bytes | None:
        return self.open_meta(await self.inner.read_meta())

    async def write_meta(self, data: bytes) -> None:
        await self.inner.write_meta(self.cipher.seal("meta", data))

    async def read_nodes(self, node_ids: Collection[str], *, include_tombstoned: bool = False) -> dict[str, bytes]:
        return self.open_found(await self.inner.read_nodes(node_ids, include_tombstoned=include_tombstoned))

    async def read_all_nodes(self) -> list[bytes]:
        return self.open_all(await self.inner.read_all_nodes())

    async def read_path(self, leaf_id: str) -> list[bytes]:
        return self.open_path(await self.inner.read_path(leaf_id), leaf_id)

    async def insert_nodes(self, nodes: Sequence[StoredNode]) -> None:
        await self.inner.insert_nodes(self.seal_nodes(nodes))

    async def clear_nodes(self) -> None:
        await self.inner.clear_nodes()

    async def tombstone_nodes(self, node_ids: Collection[str]) -> int:
        return await self.inner.tombstone_nodes(node_ids)

    async def vacuum(self) -> int:
        return await self.inner.vacuum()

    async def read_ledger(self, keys: Collection[LedgerKey] | None = None) -> dict[LedgerKey, bytes]:
        return self.select_ledger(self.open_ledger(await self.inner.read_ledger(None)), keys)

    async def write_ledger(self, rows: Mapping[LedgerKey, bytes]) -> None:
        if not self.ledger_known:
            self.open_ledger(await self.inner.read_ledger(None))
        await self.inner.write_ledger(self.seal_ledger(rows))


class EncryptedSessionStorage:
    """A backend's :class:`~lash.store.SessionStorage` with every record sealed."""

    def __init__(self, inner: SessionStorage, cipher: SessionCipher) -> None:
        self.inner = inner
        self.cipher = cipher

    def __repr__(self) -> str:
        return f"<EncryptedSessionStorage {self.inner!r}>"

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator[EncryptedTransaction]:
        with self.inner.transaction(write=write) as txn:
            yield EncryptedTransaction(txn, self.cipher)

    def scrub(self) -> None:
        """Forward :class:`~lash.store.ScrubbingStorage` when the backend's storage offers it."""
        scrub = getattr(self.inner, "scrub", None)
        if scrub is not None:
            scrub()

    def close(self) -> None:
        self.inner.close()


class AsyncEncryptedSessionStorage:
    """:class:`EncryptedSessionStorage` over an :class:`~lash.store.AsyncSessionStorage`."""

    def __init__(self, inner: AsyncSessionStorage, cipher: SessionCipher) -> None:
        self.inner = inner
        self.cipher = cipher

    def __repr__(self) -> str:
        return f"<AsyncEncryptedSessionStorage {self.inner!r}>"

    @asynccontextmanager
    async def transaction(self, *, write: bool) -> AsyncIterator[AsyncEncryptedTransaction]:
        async with self.inner.transaction(write=write) as txn:
            yield AsyncEncryptedTransaction(txn, self.cipher)

    async def close(self) -> None:
        await self.inner.close()


# --- blobs -----------------------------------------------------------------------------------


class EncryptedBlobStore(EnvelopeBlobStore):
    """An :class:`~lash.blobs.EnvelopeBlobStore` whose envelopes are sealed and whose refs are keyed.

    It overrides only the store's three rules, so every read and write path of the base
    class (``put``, ``put_many``, ``get``, ``get_envelope``) encrypts: the ref is the HMAC of
    the content under the write key's ref key; the usual (compressed) envelope is sealed
    with the blob key, the ref as associated data; reads open it with the key its header
    names and verify the ref against the content, every time.
    """

    def __init__(self, storage: BlobStorage, profile: BlobProfile | str, keyring: Keyring) -> None:
        super().__init__(storage, profile)
        self.keyring = keyring
        self._derived: dict[str, tuple[bytes, bytes]] = {}  # key id → (ref key, key check)

    def __repr__(self) -> str:
        return f"<EncryptedBlobStore {self.storage!r} write_key_id={self.keyring.write_key.key_id!r}>"

    def evolve(
        self, *, storage: BlobStorage | None = None, profile: BlobProfile | str | None = None
    ) -> EncryptedBlobStore:
        return EncryptedBlobStore(storage or self.storage, profile or self.profile, self.keyring)

    def _keys_of(self, master: MasterKey) -> tuple[bytes, bytes]:
        """The ref key and key check of ``master`` (derived once per key id)."""
        derived = self._derived.get(master.key_id)
        if derived is None:
            derived = self._derived[master.key_id] = (derive_key(master, "blob-ref"), key_check(master))
        return derived

    def ref_for(self, data: bytes) -> BlobRef:
        return keyed_ref(self._keys_of(self.keyring.write_key)[0], data)

    def _seal(self, ref: BlobRef, data: bytes, kind: str, hints: Collection[str]) -> bytes:
        master = self.keyring.write_key
        envelope = seal(data, kind, hints, self.profile)
        return _seal(AESGCM(derive_key(master, "blob", ref)), master, self._keys_of(master)[1], ref, envelope)

    def _open(self, ref: BlobRef, raw: bytes) -> OpenedEnvelope:
        what = f"blob {ref}"
        try:
            sealed = Sealed.parse(raw, what)
            if sealed.slot != ref:
                raise DecryptionError(what, f"it was sealed as blob {sealed.slot} (a blob moved from elsewhere)")
            master = self.keyring.get(sealed.key_id, needed_for=what)
            ref_key, check = self._keys_of(master)
            envelope = _open(AESGCM(derive_key(master, "blob", ref)), check, sealed, what)
        except DecryptionError as exc:
            raise BlobDecryptionError(ref, exc.reason) from None
        return open_envelope(ref, envelope, ref_for=lambda content: keyed_ref(ref_key, content))

    def key_id_of(self, ref: BlobRef) -> str | None:
        """The key id blob ``ref`` is sealed with (None when absent), without decrypting it."""
        raw = self.storage.read(check_ref(ref))
        if raw is None:
            return None
        try:
            return Sealed.parse(raw, f"blob {ref}").key_id
        except DecryptionError as exc:
            raise BlobDecryptionError(ref, exc.reason) from None


# --- attaching to a backend ---------------------------------------------------------------------


class Encryption:
    """What ``[encryption]`` attaches to a :class:`~lash.store.StorageBackend`: the keyring and the wrappers."""

    def __init__(self, keyring: Keyring) -> None:
        self.keyring = keyring

    def __repr__(self) -> str:
        return f"<Encryption {self.keyring!r}>"

    def session_storage(self, session_id: str, storage: SessionStorage) -> EncryptedSessionStorage:
        return EncryptedSessionStorage(storage, SessionCipher(self.keyring, session_id))

    def async_session_storage(self, session_id: str, storage: AsyncSessionStorage) -> AsyncEncryptedSessionStorage:
        """:meth:`session_storage` for a backend's async primitives (``lash.aio`` over a native backend)."""
        return AsyncEncryptedSessionStorage(storage, SessionCipher(self.keyring, session_id))

    def blob_store(self, blobs: BlobStore) -> EncryptedBlobStore:
        """``blobs`` with sealed envelopes (idempotent: an encrypted store is returned as is)."""
        if isinstance(blobs, EncryptedBlobStore):
            return blobs
        if not isinstance(blobs, EnvelopeBlobStore):
            raise ConfigError(
                f"blob store {type(blobs).__name__} cannot be encrypted: lash encrypts envelopes of a "
                "lash.blobs.EnvelopeBlobStore (every built-in blob store is one)",
                key="encryption",
            )
        return EncryptedBlobStore(blobs.storage, blobs.profile, self.keyring)

    def attach(self, backend: Any, backend_name: str) -> None:
        """Encrypt everything ``backend`` stores from now on, or raise :class:`ConfigError`."""
        attach = getattr(backend, "attach_encryption", None)
        if attach is None:
            raise ConfigError(
                f"backend {backend_name!r} cannot encrypt: lash encrypts the primitives of a lash.store.StorageBackend",
                key="encryption",
            )
        if backend.blobs is not None:
            self.blob_store(backend.blobs)  # refuse a blob store that cannot be encrypted now, not at the first commit
        attach(self)


# --- rotation ------------------------------------------------------------------------------------


@attrs.frozen
class RekeyReport:
    """What :func:`rekey` did: sessions examined and rewritten, records and blobs re-encrypted."""

    key_id: str
    session_count: int = 0
    rekeyed_session_count: int = 0
    record_count: int = 0
    blob_count: int = 0

    def __add__(self, other: RekeyReport) -> RekeyReport:
        return RekeyReport(
            self.key_id,
            self.session_count + other.session_count,
            self.rekeyed_session_count + other.rekeyed_session_count,
            self.record_count + other.record_count,
            self.blob_count + other.blob_count,
        )


def rekey(backend: Any, session_ids: Iterable[str] | None = None) -> RekeyReport:
    """Re-encrypt every record and head-referenced blob not under the current key (``[encryption] key_id``).

    Each session is rewritten in one write transaction (its revision is unchanged), so a
    session either moves to the new key completely or not at all, and concurrent commits
    serialise with it. Tombstoned nodes are vacuumed (they would keep old ciphertext). Blobs
    get new refs under the new key; the old ones become unreachable for ``Lash.gc()``.
    Idempotent: sessions already under the current key are only read.
    """
    encryption = getattr(backend, "encryption", None)
    if not isinstance(encryption, Encryption):
        raise ConfigError("lash rekey needs [encryption] configured (the key to re-encrypt with)", key="encryption")
    report = RekeyReport(encryption.keyring.write_key.key_id)
    for session_id in backend.session_ids() if session_ids is None else session_ids:
        store = backend.open_session(session_id, create=False)
        if store is None:
            continue
        try:
            report += _rekey_session(store, report.key_id)
        except SessionDeletedError:
            continue
        finally:
            store.close()
    return report


def _rekey_session(store: StandardSessionStore, key_id: str) -> RekeyReport:
    blobs = store.blobs
    assert isinstance(blobs, EncryptedBlobStore) and isinstance(store.storage, EncryptedSessionStorage)
    with store.storage.transaction(write=True) as txn:
        raw_head = txn.read_head()
        stored = (
            None if raw_head is None else codec.decode(raw_head, StoredHead, f"head of session {store.session_id!r}")
        )
        if stored is not None and stored.deleted_at is not None:
            raise SessionDeletedError(store.session_id)
        vacuumed = txn.vacuum()  # tombstoned rows are never read again, and may hold old ciphertext
        meta = txn.read_meta()
        records = txn.read_all_nodes()
        ledger = txn.read_ledger()
        refs = _blob_refs(stored) if stored else []
        stale_refs = [ref for ref in refs if blobs.key_id_of(ref) not in (key_id, None)]
        if txn.key_ids <= {key_id} and not stale_refs:
            return RekeyReport(key_id, session_count=1, rekeyed_session_count=int(vacuumed > 0))
        nodes = [codec.decode(raw, Node, f"a node of session {store.session_id!r}") for raw in records]
        txn.clear_nodes()
        txn.insert_nodes([StoredNode(n.node_id, n.parent_id, raw) for n, raw in zip(nodes, records, strict=True)])
        if meta is not None:
            txn.write_meta(meta)
        if ledger:
            txn.write_ledger(ledger)
        if stored is not None:
            head = stored.head
            moved = {ref: _reput(blobs, ref, store.session_id) for ref in stale_refs if ref != head.checkpoint_ref}
            manifest = attrs.evolve(
                head.manifest,
                tool_state_ref=moved.get(head.manifest.tool_state_ref, head.manifest.tool_state_ref),
                plugin_snapshot_ref=moved.get(head.manifest.plugin_snapshot_ref, head.manifest.plugin_snapshot_ref),
                execution_state_ref=moved.get(head.manifest.execution_state_ref, head.manifest.execution_state_ref),
            )
            checkpoint_ref = blobs.put(codec.encode(manifest), BlobKind.CHECKPOINT_MANIFEST)
            head = attrs.evolve(head, manifest=manifest, checkpoint_ref=checkpoint_ref)
            txn.write_head(head.revision, codec.encode(attrs.evolve(stored, head=head)))
    record_count = len(records) + (meta is not None) + len(ledger) + (stored is not None)
    return RekeyReport(key_id, 1, 1, record_count, len(stale_refs))


def _blob_refs(stored: StoredHead) -> list[BlobRef]:
    return [stored.head.checkpoint_ref, *stored.head.manifest.blob_refs()]


def _reput(blobs: EncryptedBlobStore, ref: BlobRef, session_id: str) -> BlobRef:
    opened = blobs.get_envelope(ref)
    if opened is None:
        raise BlobIntegrityError(ref, f"referenced by the head of {session_id!r} but missing")
    return blobs.put(opened.content, opened.kind, opened.hints)
