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
from servers import reserved_port

#: CI sets this so that a missing redis-server fails the run instead of skipping tests.
REQUIRE_ENV = "KENAR_TEST_REQUIRE_REDIS"


class RedisServer:
    """``redis-server`` on a free loopback port, in a temporary directory.

    With ``password``, clients must authenticate (``requirepass``). ``persistent=False`` runs
    it as a cache (no AOF, no RDB save schedule), which the Redis token store warns about;
    the default has an hourly RDB save schedule, which never fires during a test.
    """

    def __init__(self, password: Optional[str] = None, persistent: bool = True) -> None:
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
        self._directory = tempfile.TemporaryDirectory(prefix="kenar-redis-")
        self._process: Optional[subprocess.Popen[bytes]] = None
        # redis-server must be told its port. Another process may still take a reserved port
        # first; then redis-server exits, and it is tried again on another.
        for _ in range(5):
            self.port = reserved_port()
            self._process = subprocess.Popen(
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
                    *(["--requirepass", password] if password else []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_ready(self._process):
                return
            self._process.kill()
            self._process.wait()
        self.stop()
        pytest.fail("redis-server did not start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> bool:
        """Whether ``process`` came to serve on ``self.port``; False once it has exited.

        It counts as ready only when the server answering there is this process: after a
        lost race for the port, another redis-server might answer PING on it.
        """
        deadline = time.monotonic() + 120  # a safety net: a loaded machine starts it late
        while time.monotonic() < deadline and process.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
                    if self.password:
                        sock.sendall(f"AUTH {self.password}\r\n".encode())
                        if not sock.recv(16).startswith(b"+OK"):
                            time.sleep(0.02)
                            continue
                    sock.sendall(b"INFO server\r\n")
                    answer = b""
                    while b"process_id:" not in answer or not answer.endswith(b"\r\n"):
                        chunk = sock.recv(65536)
                        if not chunk:
                            break
                        answer += chunk
                    return f"process_id:{process.pid}\r\n".encode() in answer
            except OSError:
                time.sleep(0.02)
        return False

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
            self._process = None
        self._directory.cleanup()
