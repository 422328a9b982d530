"""Threaded standard-library servers that stop at once: daemon threads, tracked connections."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from socketserver import TCPServer, ThreadingMixIn
from typing import Any, Set, Tuple, Union

from kenar_api_client._hosts import connect_host

_Request = Union[socket.socket, Tuple[bytes, socket.socket]]


class ThreadedServer(ThreadingMixIn, TCPServer):
    """A thread per connection, and :meth:`stop` that also ends idle and half-sent requests.

    Handler threads are daemon threads, so a stuck client never keeps the process alive.
    """

    daemon_threads = True
    block_on_close = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: Set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: _Request, client_address: Any) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: _Request) -> None:
        if isinstance(request, socket.socket):
            with self._connections_lock:
                self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: _Request, client_address: Any) -> None:
        """A client that went away or stalled is no news (no traceback); anything else is."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)

    def stop(self) -> None:
        """Make ``serve_forever`` (running, or about to run) return, then close every connection.

        ``shutdown()`` alone waits until the serving loop's next poll; connecting to
        ourselves wakes the loop at once, so a test suite can start and stop many servers.
        Threads still handling a request see their connection shut down: reads end, writes fail.
        """
        stopper = threading.Thread(target=self.shutdown, name="kenar-server-stop", daemon=True)
        stopper.start()
        while stopper.is_alive():
            self._wake()
            stopper.join(0.005)
        self.close_connections()
        self.server_close()

    @property
    def connect_host(self) -> str:
        """The address to reach it at: 127.0.0.1 when bound to all addresses."""
        return connect_host(str(self.server_address[0]))

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            socket.create_connection((self.connect_host, int(self.server_address[1])), timeout=0.1).close()

    def close_connections(self) -> None:
        """Shut down every open connection, so handler threads waiting on one end at once."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
