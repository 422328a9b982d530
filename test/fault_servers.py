"""Misbehaving loopback servers for the fault-injection tests.

``RawServer`` speaks raw TCP on 127.0.0.1: each accepted connection is handed to a
behaviour function (stall, reset mid-answer, close after each answer, send garbage...).
It counts accepted connections and the request heads it read, so a test can assert how
many times the client really tried. ``HTTPSRecordingServer`` is ``servers.RecordingServer``
behind TLS, with a certificate from a test CA made by ``trustme``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import struct
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

import trustme
from servers import RecordingServer, Responder, refused_port

SEND_PATH = "/experimental/open-platform/events/send"
SUBSCRIBE_PATH = "/v1/open-platform/events/subscriptions"


class RawServer:
    """A TCP server on 127.0.0.1 that runs ``behaviour(server, conn)`` for each connection.

    ``requests`` holds the head (request line and headers) of every request a behaviour read
    with ``read_request``; ``connections`` counts accepted connections and ``closed`` those
    the server has closed.
    """

    def __init__(
        self,
        behaviour: Callable[[RawServer, socket.socket], None],
        address: Tuple[str, int] = ("127.0.0.1", 0),
    ) -> None:
        self.behaviour = behaviour
        self.requests: List[bytes] = []
        self.connections = 0
        self.closed = 0  # connections this server has finished with and closed
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._open: List[socket.socket] = []
        self._serving: List[threading.Thread] = []
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self._listener = socket.create_server(address, family=family, backlog=64)
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> RawServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end every connection's behaviour and wait until each has ended."""
        self.stopped.set()
        # Closing a socket does not wake a thread blocked in accept() on Linux: connect once.
        if self._thread.is_alive():
            with contextlib.suppress(OSError):
                socket.create_connection(self._listener.getsockname()[:2], timeout=10).close()
            self._thread.join(timeout=30)
        self._listener.close()
        with self._lock:
            open_sockets, self._open = self._open, []
            serving, self._serving = self._serving, []
        for conn in open_sockets:
            # shutdown() wakes a behaviour blocked in recv() on it; close() alone would not.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            _close_quietly(conn)
        for thread in serving:
            thread.join(timeout=30)

    def _accept_loop(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            if self.stopped.is_set():
                conn.close()
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            with self._lock:
                self.connections += 1
                self._open.append(conn)
                self._serving.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.behaviour(self, conn)
        except OSError:
            pass  # the client went away: that is what many of these tests provoke
        finally:
            _close_quietly(conn)
            with self._lock:
                self.closed += 1

    def read_request(self, conn: socket.socket) -> Optional[bytes]:
        """Read one request (head and Content-Length body); None if the client closed first."""
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        with self._lock:
            self.requests.append(head)
        return head


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held.

    The deadline is only a safety net, generous for a loaded machine: a condition that holds
    ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)
    return True


def client_saw_the_close(server: RawServer) -> bool:
    """Wait until no client connection to ``server`` is still ESTABLISHED, having got its FIN.

    A server's close() sends its FIN at once, but a loaded machine may deliver it to the
    client's socket later; Linux shows each socket's TCP state in /proc/net/tcp (01 is
    ESTABLISHED, 08 CLOSE_WAIT: the peer's FIN has arrived). Elsewhere this only waits a
    little, which is what it can do.
    """
    port = int(server.url.rsplit(":", 1)[1])
    if not os.path.exists("/proc/net/tcp"):
        time.sleep(0.05)
        return True

    def no_established_client() -> bool:
        with open("/proc/net/tcp", encoding="ascii") as table:
            rows = [line.split() for line in table.readlines()[1:]]
        # Columns: slot, local address:port, remote address:port, state (all hexadecimal).
        return not any(int(row[2].split(":")[1], 16) == port and row[3] == "01" for row in rows)

    return wait_until(no_established_client)


def _close_quietly(conn: socket.socket) -> None:
    with contextlib.suppress(OSError):
        conn.close()


def http_response(
    status: int = 200,
    body: bytes = b"{}",
    headers: Optional[Dict[str, str]] = None,
    reason: str = "OK",
) -> bytes:
    """A complete HTTP/1.1 response with a Content-Length."""
    all_headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    all_headers.update(headers or {})
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in all_headers.items())
    return head.encode("latin-1") + b"\r\n" + body


def reset(conn: socket.socket) -> None:
    """Close with an RST instead of a FIN: SO_LINGER on with a zero timeout."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


# -- behaviours ---------------------------------------------------------------------------


def stall(server: RawServer, conn: socket.socket) -> None:
    """Read the request, then say nothing until the server is stopped."""
    server.read_request(conn)
    server.stopped.wait(30)


def reset_mid_response(server: RawServer, conn: socket.socket) -> None:
    """Send the head and part of the promised body, then reset the connection."""
    server.read_request(conn)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        + b'{"pad": "'
        + b"x" * 100
    )
    reset(conn)


def stall_mid_body(server: RawServer, conn: socket.socket) -> None:
    """Send the head and a first piece of the body, then go silent."""
    server.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    server.stopped.wait(30)


def close_without_answer(server: RawServer, conn: socket.socket) -> None:
    """Read the request and close the connection without a byte of answer."""
    server.read_request(conn)


def garbage_status_line(server: RawServer, conn: socket.socket) -> None:
    """Answer with something that is not HTTP."""
    server.read_request(conn)
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")


def bad_gzip(server: RawServer, conn: socket.socket) -> None:
    """Claim a gzip-encoded body and send bytes that are not gzip."""
    server.read_request(conn)
    conn.sendall(http_response(200, b"this is not gzip at all", {"Content-Encoding": "gzip"}))


def short_body_then_close(server: RawServer, conn: socket.socket) -> None:
    """Promise 1000 bytes, send 10, and close normally (FIN)."""
    server.read_request(conn)
    conn.sendall(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"a": "bcd'
    )
    conn.shutdown(socket.SHUT_RDWR)


def bad_chunked(server: RawServer, conn: socket.socket) -> None:
    """A chunked body whose chunk size is not a number."""
    server.read_request(conn)
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"zz\r\n{}\r\n0\r\n\r\n"
    )


def huge_header_line(server: RawServer, conn: socket.socket) -> None:
    """A header line longer than http.client accepts (64 KiB)."""
    server.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * 70_000 + b"\r\nContent-Length: 2\r\n\r\n{}")


def answer_then_close(server: RawServer, conn: socket.socket) -> None:
    """Answer one request promising keep-alive, then close the connection anyway.

    This is what a server (or a load balancer) with a short keep-alive idle timeout does.
    """
    if server.read_request(conn) is None:
        return
    conn.sendall(http_response(200, b'{"ok": true}', {"Connection": "keep-alive"}))
    conn.shutdown(socket.SHUT_RDWR)


def endless_chunks(server: RawServer, conn: socket.socket) -> None:
    """A chunked 200 that never ends: 64 KiB chunks until the client hangs up."""
    server.read_request(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    chunk = b"0" * 65536
    while not server.stopped.is_set():
        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))


def trickle(gap: float, body: bytes = b'{"ok": true}') -> Callable[[RawServer, socket.socket], None]:
    """A behaviour that answers 200 with ``body`` sent one byte every ``gap`` seconds."""

    def behaviour(server: RawServer, conn: socket.socket) -> None:
        server.read_request(conn)
        conn.sendall(http_response(200, body)[: -len(body)])
        for byte in body:
            time.sleep(gap)
            conn.sendall(bytes([byte]))

    return behaviour


# -- TLS ----------------------------------------------------------------------------------


class HTTPSRecordingServer(RecordingServer):
    """``RecordingServer`` behind TLS, with a certificate from ``ca`` for ``names``."""

    def __init__(
        self,
        ca: trustme.CA,
        responder: Optional[Responder] = None,
        names: Tuple[str, ...] = ("127.0.0.1", "localhost"),
    ) -> None:
        super().__init__(responder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*names).configure_cert(context)
        # The handshake runs in accept(); a client that rejects the certificate makes accept()
        # raise an SSLError (an OSError), which socketserver ignores.
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"https://{host}:{port}"


class UnacceptingListener:
    """A listening socket that never accepts, with its backlog already full.

    The kernel then drops new SYNs, so a connect attempt hangs until the client's connect
    timeout: a connect timeout on loopback, without a network.
    """

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(0)
        self._fillers: List[socket.socket] = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(self._listener.getsockname())
            self._fillers.append(filler)

    @property
    def url(self) -> str:
        host, port = self._listener.getsockname()[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self._listener.close()


def free_port() -> Tuple[str, int]:
    """An address where nothing listens: connections are refused (``servers.refused_port``)."""
    return "127.0.0.1", refused_port()
