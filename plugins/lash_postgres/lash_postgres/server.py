"""A real, throwaway PostgreSQL server in a temporary directory: for tests and benchmarks.

:class:`PostgresServer` runs ``initdb`` and ``pg_ctl`` from the installed PostgreSQL binaries
(Debian's ``postgresql`` package, found by :func:`find_bindir`), listening on 127.0.0.1 on a
free port; connections from there are trusted, except :data:`PASSWORD_ROLE`'s, which need a
password. PostgreSQL refuses to run as root, so under root it runs as the ``postgres`` system
user (created if missing) through ``runuser``. ``close()`` stops it and removes its files.

Tests run it with ``durable=False`` (``fsync``, ``synchronous_commit`` and
``full_page_writes`` off: nothing needs to survive a power cut); benchmarks with
``durable=True`` (the server's defaults, every commit flushed to disk before it returns).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg
from psycopg import sql

SERVER_USER = "postgres"
"""The system user that runs the server when the tests run as root (Debian's package creates it)."""
SUPERUSER = "lash"
PASSWORD_ROLE = "lash_password"
"""The role that must authenticate with a password (the others are trusted from 127.0.0.1)."""
DATABASE = "lash"


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``pg_ctl``, else the one on ``PATH``."""
    candidates = sorted(
        (Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")),
        key=lambda bindir: [int(part) for part in bindir.parent.name.split(".") if part.isdigit()],
        reverse=True,
    )
    if candidates:
        return candidates[0]
    on_path = shutil.which("pg_ctl")
    return Path(on_path).resolve().parent if on_path else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ensure_system_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            check=True,
            capture_output=True,
        )


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, thrown away by :meth:`close`.

    Connections over TCP from 127.0.0.1 are trusted (cheap to open), except those of
    :data:`PASSWORD_ROLE`, which must give :attr:`password` (for tests of authentication).
    ``durable=False`` turns off ``fsync``, ``synchronous_commit`` and ``full_page_writes``.
    """

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        self.durable = durable
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.root = Path(tempfile.mkdtemp(prefix="lash-postgres-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            _ensure_system_user(SERVER_USER)
            entry = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o755)  # the server's user must reach its data and socket directories
        self._admin: psycopg.Connection | None = None
        self._lash_db: psycopg.Connection | None = None
        try:
            self._create()
        except BaseException:
            self.close()
            raise

    def _create(self) -> None:
        """``initdb``, our ``pg_hba.conf``, start, then the test database and the password role."""
        initdb = ("-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
        self._run("initdb", *initdb)
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 trust\n"
        )
        self.start()
        admin = self._admin_connection()
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
        role = sql.SQL("CREATE ROLE {} LOGIN SUPERUSER PASSWORD {}")
        admin.execute(role.format(sql.Identifier(PASSWORD_ROLE), sql.Literal(self.password)))

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / tool), *args]
        if self._as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.root, check=False)
        if result.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.strip()}\n{log}")
        return result

    def _pg_ctl(self, action: str) -> None:
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            "pg_ctl", action, "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-m", "fast", "-o", options
        )

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every open connection is dropped."""
        self._pg_ctl("restart")
        if self._admin is not None:
            self._admin.close()

    def stop(self) -> None:
        """Stop at once (``-m immediate``): the cluster is thrown away anyway."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")

    def dsn(self, dbname: str = DATABASE) -> str:
        """A URL DSN for ``dbname`` as the (trusted) superuser."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def password_dsn(self, dbname: str = DATABASE, *, password: str | None = None) -> str:
        """A URL DSN for ``dbname`` as :data:`PASSWORD_ROLE`, with its password (or ``password``)."""
        secret = self.password if password is None else password
        return f"postgresql://{PASSWORD_ROLE}:{secret}@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = DATABASE) -> psycopg.Connection:
        return psycopg.connect(self.dsn(dbname), autocommit=True)

    def execute(self, statement: sql.Composable | str, params: tuple | None = None) -> None:
        """Run one statement as the superuser on :data:`DATABASE` (one connection, kept open)."""
        for attempt in range(2):
            if self._lash_db is None or self._lash_db.closed or self._lash_db.broken:
                self._lash_db = self.connect()
            try:
                self._lash_db.execute(statement, params)
                return
            except psycopg.OperationalError:  # dropped by a restart since its last use: reconnect once
                if attempt or not self._lash_db.broken:
                    raise

    def create_database(self) -> str:
        name = f"test_{uuid.uuid4().hex[:16]}"
        self._admin_connection().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def drop_database(self, name: str) -> None:
        statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        self._admin_connection().execute(statement)

    def _admin_connection(self) -> psycopg.Connection:
        if self._admin is None or self._admin.closed or self._admin.broken:
            self._admin = self.connect("postgres")
        return self._admin

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for conn in (self._admin, self._lash_db):
            if conn is not None:
                conn.close()
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
