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
    """``redis-server`` on a free loopback port, in a temporary directory.

    ``persistent=False`` runs it as a cache (no AOF, no RDB save schedule), which the
    Redis token store warns about; the default has an hourly RDB save schedule, which never
    fires during a test.
    """

    def __init__(self, persistent: bool = True) -> None:
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
                "3600 1" if persistent else "",
                "--appendonly",
                "no",
                "--dir",
                self._directory.name,
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
