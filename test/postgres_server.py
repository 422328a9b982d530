"""A real PostgreSQL server on 127.0.0.1, started and stopped by the tests that need one.

Started the way ``redis_server.py`` starts redis-server: ``initdb`` into a temporary
directory, then ``postgres`` on a free loopback port, no durability (``fsync=off``), trust
authentication for one role. PostgreSQL refuses to run as root, and the tests and CI run as
root: then the server runs as an unprivileged user (``nobody``, or ``$KENAR_TEST_POSTGRES_USER``)
through ``runuser``. Without a server to start the tests skip, unless
``KENAR_TEST_REQUIRE_POSTGRES=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import List, Optional

#: CI sets this so that a missing PostgreSQL fails the run instead of skipping tests.
REQUIRE_ENV = "KENAR_TEST_REQUIRE_POSTGRES"
#: The unprivileged user the server runs as when the tests run as root.
USER_ENV = "KENAR_TEST_POSTGRES_USER"
ROLE = "kenar"
DATABASE = "kenar"


class PostgresUnavailable(Exception):
    """No PostgreSQL server can be started here (the reason is the message)."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binaries() -> str:
    """The directory holding initdb and postgres (Debian keeps them off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_major_version)
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb is not None:
        return os.path.dirname(initdb)
    raise PostgresUnavailable(
        "PostgreSQL is not installed (apt-get install postgresql: initdb and postgres are needed)"
    )


def _major_version(path: str) -> int:
    part = path.split("/")[4]
    return int(part) if part.isdigit() else 0


class PostgresServer:
    """``postgres`` on a free loopback port with a ``kenar`` role and database, in a temp dir."""

    def __init__(self) -> None:
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise PostgresUnavailable(
                f"psycopg cannot be imported ({exc}): pip install -e '.[test]'"
            ) from None
        bindir = _binaries()
        self.port = _free_port()
        self._directory = tempfile.TemporaryDirectory(prefix="kenar-postgres-")
        self._process: Optional[subprocess.Popen[bytes]] = None
        root = self._directory.name
        data, sockets = os.path.join(root, "data"), os.path.join(root, "sockets")
        os.mkdir(sockets)
        self._as_user: List[str] = []
        if os.geteuid() == 0:
            user = os.environ.get(USER_ENV, "nobody")
            if shutil.which("runuser") is None:
                raise PostgresUnavailable("running as root and runuser is missing (util-linux)")
            self._as_user = ["runuser", "-u", user, "--"]
            shutil.chown(root, user)
            shutil.chown(sockets, user)
        self._log = os.path.join(root, "postgres.log")
        initdb = subprocess.run(
            [
                *self._as_user,
                os.path.join(bindir, "initdb"),
                "-D",
                data,
                "-U",
                ROLE,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            capture_output=True,
            check=False,
        )
        if initdb.returncode != 0:
            self._directory.cleanup()
            raise PostgresUnavailable(f"initdb failed: {initdb.stderr.decode(errors='replace')[-500:]}")
        log = open(self._log, "wb")  # noqa: SIM115 - the server writes to it until stop()
        self._process = subprocess.Popen(
            [
                *self._as_user,
                os.path.join(bindir, "postgres"),
                "-D",
                data,
                "-p",
                str(self.port),
                "-k",
                sockets,
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",  # the benchmark's 8 keeper processes: a connection per thread
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self._wait_ready()
        self._create_database()

    @property
    def url(self) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"

    def _wait_ready(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        admin = f"postgresql://{ROLE}@127.0.0.1:{self.port}/postgres"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            try:
                psycopg.connect(admin, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                time.sleep(0.05)
        with open(self._log, "rb") as log:
            tail = log.read()[-800:].decode(errors="replace")
        self.stop()
        raise PostgresUnavailable(f"postgres did not start: {tail}")

    def _create_database(self) -> None:
        import psycopg

        with psycopg.connect(f"postgresql://{ROLE}@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def fresh_database(self, name: str) -> str:
        """A new empty database on this server; its URL."""
        import psycopg

        if not name.isidentifier():
            raise ValueError(f"not a database name: {name!r}")
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()  # "smart" shutdown: waits for clients to go
            try:
                self._process.wait(5)
            except subprocess.TimeoutExpired:
                self._process.kill()  # runuser passes it on; the server drops its clients
                self._process.wait(10)
            self._process = None
        self._directory.cleanup()


def start_or_skip() -> PostgresServer:
    """A running server, or skip the test (fail it when ``KENAR_TEST_REQUIRE_POSTGRES`` is set)."""
    import pytest

    try:
        return PostgresServer()
    except PostgresUnavailable as exc:
        if os.environ.get(REQUIRE_ENV):
            pytest.fail(f"{exc} (and {REQUIRE_ENV} is set)")
        pytest.skip(str(exc))
        raise  # unreachable: skip raises
