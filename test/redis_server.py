"""A real ``redis-server`` on 127.0.0.1, started and stopped by the tests that need one."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from typing import Optional

import pytest

#: CI sets this so that a missing redis-server fails the run instead of skipping tests.
REQUIRE_ENV = "KENAR_TEST_REQUIRE_REDIS"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` on a free loopback port, no persistence, in a temporary directory.

    With ``password``, clients must authenticate (``requirepass``).
    """

    def __init__(self, password: Optional[str] = None) -> None:
        self.password = password
        binary = shutil.which("redis-server")
        if binary is None:
            message = "redis-server is not installed (apt-get install redis-server)"
            if os.environ.get(REQUIRE_ENV):
                pytest.fail(message)
            pytest.skip(message)
        try:
            import redis  # noqa: F401
        except ImportError:
            if os.environ.get(REQUIRE_ENV):
                pytest.fail("the redis package is not installed (pip install -e '.[test]')")
            pytest.skip("the redis package is not installed")
        self.port = _free_port()
        self._directory = tempfile.TemporaryDirectory(prefix="kenar-redis-")
        self._process: Optional[subprocess.Popen[bytes]] = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._directory.name,
                *(["--requirepass", password] if password else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if self.password:
                        sock.sendall(f"AUTH {self.password}\r\n".encode())
                        if not sock.recv(16).startswith(b"+OK"):
                            time.sleep(0.02)
                            continue
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        self.stop()
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None
        self._directory.cleanup()
