"""What a webhook delivery costs the receiver: the SDK's apps against a floor app, and the servers.

Usage:
    python benchmarks/bench_webhooks.py                  # CPU per delivery, deliveries/s
    python benchmarks/bench_webhooks.py --instructions   # also valgrind instruction counts
    python benchmarks/bench_webhooks.py --quick          # smoke run (CI)
    python benchmarks/bench_webhooks.py --check          # exit 1 if the 2.0x target is missed

Per delivery, called in-process with a ready WSGI environ or ASGI scope (no socket), each
delivery a different NEW_MESSAGE (its own message id):

- the floor app: read the body, compare the key (``hmac.compare_digest``), ``json.loads``,
  answer 200; once as WSGI, once as ASGI;
- ``make_wsgi_app`` and ``make_asgi_app`` with a no-op handler (target: at most 2.0x the
  floor's instructions), and ``make_wsgi_app`` with each delivery log (memory, a SQLite file,
  a real redis-server on 127.0.0.1 when one is installed): the log's cost per delivery.

CPU time is the best of several repeats (``time.process_time``); instructions are counted by
``valgrind --tool=callgrind`` as the difference of two runs (1,200 minus 200 deliveries),
which cancels start-up and does not move with the machine's load.

Deliveries per second over HTTP with 1 and 16 senders on keep-alive connections (a separate
process that sends and reads with raw sockets), to ``make_server`` (16 workers),
gunicorn (one gthread worker, 16 threads) serving the same WSGI app, and uvicorn serving
``make_asgi_app``; gunicorn and uvicorn are skipped when not installed.
"""

from __future__ import annotations

import argparse
import hmac
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from _callgrind import instructions

KEY = "bench-identification-key-4f1c"
TARGET_RATIO = 2.0
HERE = Path(__file__).resolve().parent
OK_BODY = b'{"status": "ok"}'


def body(number: int) -> bytes:
    """A NEW_MESSAGE delivery of Kenar's documented shape, its own message id per number."""
    return json.dumps(
        {
            "type": "NEW_MESSAGE",
            "metadata": {"shop": "42"},
            "new_message": {
                "id": f"0f0e1d2c-3b4a-5968-7786-{number:012d}",
                "conversation": {
                    "id": "5b9c1f0e-2d7a-4c1e-9f55-0c3f4a6b7d21",
                    "type": "POST",
                    "post_token": "QaZ1xSw2",
                },
                "sender": {"side": "BUYER", "type": "HUMAN"},
                "type": "TEXT",
                "sent_at": 1732182000123456,
                "text": "سلام، این آگهی هنوز موجوده؟",
            },
        },
        ensure_ascii=False,
    ).encode("utf-8")


# -- the apps -----------------------------------------------------------------------------


def floor_wsgi(environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
    """What any receiver must do: read, compare the key, decode, answer."""
    received = environ.get("HTTP_AUTHORIZATION", "").encode("latin-1")
    if not hmac.compare_digest(received, KEY.encode()):
        start_response("401 Unauthorized", [("Content-Type", "application/json"), ("Content-Length", "2")])
        return [b"{}"]
    json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(OK_BODY)))])
    return [OK_BODY]


async def floor_asgi(scope: Dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    """The floor as ASGI."""
    received = next((value for name, value in scope["headers"] if name == b"authorization"), b"")
    message = await receive()
    if not hmac.compare_digest(received, KEY.encode()):
        status, answer = 401, b"{}"
    else:
        json.loads(message["body"])
        status, answer = 200, OK_BODY
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(answer)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": answer})


def no_op(event: Any) -> None:
    """The handler: does nothing, so only the receiver is measured."""


def wsgi_app(deliveries: Any = None) -> Any:
    """``make_wsgi_app`` with the no-op handler (gunicorn loads it as ``bench_webhooks:wsgi_app()``)."""
    from kenar_api_client.webhooks import make_wsgi_app

    return make_wsgi_app(KEY, no_op, deliveries=deliveries)


def asgi_app() -> Any:
    """``make_asgi_app`` with the no-op handler (uvicorn loads it with ``--factory``)."""
    from kenar_api_client.webhooks import make_asgi_app

    return make_asgi_app(KEY, no_op)


# -- calling an app in-process -------------------------------------------------------------


def _start_response(status: str, headers: List[Tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def wsgi_caller(app: Any, bodies: List[bytes]) -> Callable[[int], None]:
    def call(number: int) -> None:
        raw = bodies[number % len(bodies)]
        environ = {
            "REQUEST_METHOD": "POST",
            "CONTENT_LENGTH": str(len(raw)),
            "CONTENT_TYPE": "application/json",
            "HTTP_AUTHORIZATION": KEY,
            "REMOTE_ADDR": "78.111.6.41",
            "wsgi.input": io.BytesIO(raw),
        }
        b"".join(app(environ, _start_response))

    return call


def asgi_caller(app: Any, bodies: List[bytes]) -> Callable[[int], None]:
    """Drive the app's coroutine by hand: nothing in it waits, so no event loop is needed."""

    def call(number: int) -> None:
        raw = bodies[number % len(bodies)]
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/",
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                (b"authorization", KEY.encode()),
            ],
            "client": ("78.111.6.41", 40000),
        }

        async def receive() -> Dict[str, Any]:
            return {"type": "http.request", "body": raw, "more_body": False}

        async def send(message: Dict[str, Any]) -> None:
            pass

        coroutine = app(scope, receive, send)
        try:
            coroutine.send(None)
        except StopIteration:
            return
        raise RuntimeError("the app waited for something")

    return call


class Logs:
    """The delivery logs to measure, with what they need (a temporary file, a redis-server)."""

    def __init__(self) -> None:
        self._directory = tempfile.TemporaryDirectory(prefix="kenar-bench-")
        self.redis: Optional[subprocess.Popen[bytes]] = None
        self.redis_url: Optional[str] = None

    def make(self, kind: str) -> Any:
        from kenar_api_client.webhooks import MemoryDeliveryLog, RedisDeliveryLog, SQLiteDeliveryLog

        if kind == "memory":
            return MemoryDeliveryLog()
        if kind == "sqlite":
            return SQLiteDeliveryLog(
                os.path.join(self._directory.name, f"deliveries-{time.monotonic_ns()}.db")
            )
        if kind == "redis":
            return RedisDeliveryLog(url=self.start_redis(), prefix=f"bench:{time.monotonic_ns()}:")
        raise ValueError(kind)

    def start_redis(self) -> str:
        if self.redis_url is None:
            binary = shutil.which("redis-server")
            if binary is None:
                raise RuntimeError("redis-server is not installed")
            port = free_port()
            self.redis = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=self._directory.name,
            )
            wait_for_port(port)
            self.redis_url = f"redis://127.0.0.1:{port}/0"
        return self.redis_url

    def close(self) -> None:
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait()
        self._directory.cleanup()


LOG_KINDS = ("memory", "sqlite", "redis")
CASES = (
    "floor (WSGI)",
    "make_wsgi_app",
    "floor (ASGI)",
    "make_asgi_app",
    *(f"make_wsgi_app, {kind} log" for kind in LOG_KINDS),
)


def caller(case: str, bodies: List[bytes], logs: Logs) -> Callable[[int], None]:
    if case == "floor (WSGI)":
        return wsgi_caller(floor_wsgi, bodies)
    if case == "floor (ASGI)":
        return asgi_caller(floor_asgi, bodies)
    if case == "make_wsgi_app":
        return wsgi_caller(wsgi_app(), bodies)
    if case == "make_asgi_app":
        return asgi_caller(asgi_app(), bodies)
    kind = case.rsplit(", ", 1)[1].split()[0]
    return wsgi_caller(wsgi_app(logs.make(kind)), bodies)


def cpu_per_delivery(call: Callable[[int], None], count: int, repeats: int) -> float:
    for number in range(200):  # warm-up: first-use imports, caches
        call(10_000_000 + number)
    best = float("inf")
    for repeat in range(repeats):
        started = time.process_time()
        for number in range(repeat * count, (repeat + 1) * count):
            call(number)
        best = min(best, time.process_time() - started)
    return best / count


def run_deliveries(case: str, count: int) -> None:
    """The body of one valgrind run: ``count`` deliveries after 100 of warm-up."""
    logs = Logs()
    try:
        # As many bodies in every run, so building them cancels out of the difference.
        call = caller(case, [body(n) for n in range(RUN_COUNTS[1] + 100)], logs)
        for number in range(count + 100):
            call(number)
    finally:
        logs.close()


RUN_COUNTS = (200, 1200)


def instructions_per_delivery(case: str, counts: Tuple[int, int] = RUN_COUNTS) -> float:
    totals = [
        instructions([sys.executable, __file__, "--run-deliveries", case, str(count)]) for count in counts
    ]
    return (totals[1] - totals[0]) / (counts[1] - counts[0])


# -- over HTTP ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def serve_with_make_server(port: int) -> None:
    """The body of the make_server process."""
    from kenar_api_client.webhooks import make_server

    with make_server("127.0.0.1", port, wsgi_app()) as server:
        signal.signal(signal.SIGTERM, lambda signum, frame: server.stop())
        server.serve_forever()


def server_commands(port: int) -> Dict[str, List[str]]:
    commands = {"make_server (16 workers)": [sys.executable, __file__, "--serve", str(port)]}
    bin_dir = Path(sys.executable).parent
    gunicorn, uvicorn = bin_dir / "gunicorn", bin_dir / "uvicorn"
    if gunicorn.exists():
        commands["gunicorn (gthread, 1 worker, 16 threads)"] = [
            str(gunicorn), "--chdir", str(HERE), "--bind", f"127.0.0.1:{port}", "--worker-class", "gthread",
            "--workers", "1", "--threads", "16", "--log-level", "warning", "bench_webhooks:wsgi_app()",
        ]  # fmt: skip
    if uvicorn.exists():
        commands["uvicorn (make_asgi_app)"] = [
            str(uvicorn), "--app-dir", str(HERE), "--factory", "--host", "127.0.0.1", "--port", str(port),
            "--log-level", "warning", "--no-access-log", "bench_webhooks:asgi_app",
        ]  # fmt: skip
    return commands


def send_deliveries(port: int, senders: int, seconds: float) -> Tuple[int, int]:
    """Each sender posts deliveries on its own keep-alive connection for ``seconds``: (200s, others)."""
    counts = [[0, 0] for _ in range(senders)]
    deadline = time.monotonic() + seconds

    def sender(index: int) -> None:
        connection = socket.create_connection(("127.0.0.1", port), timeout=30)
        reader = connection.makefile("rb")
        number = index * 10_000_000
        while time.monotonic() < deadline:
            raw = body(number)
            number += 1
            connection.sendall(
                b"POST /kenar/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Authorization: {KEY}\r\nContent-Length: {len(raw)}\r\n\r\n".encode()
                + raw
            )
            status = int(reader.readline().split()[1])
            length = 0
            while True:
                line = reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            reader.read(length)
            counts[index][0 if status == 200 else 1] += 1
        connection.close()

    threads = [threading.Thread(target=sender, args=(index,)) for index in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def deliveries_per_second(command: List[str], port: int, seconds: float) -> Dict[int, Tuple[float, int]]:
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_port(port)
        send_deliveries(port, 4, min(seconds, 1.0))  # warm-up
        rates = {}
        for senders in (1, 16):
            # The senders run in a process of their own, as Kenar's would be elsewhere.
            result = subprocess.run(
                [sys.executable, __file__, "--send", str(port), str(senders), str(seconds)],
                capture_output=True,
                text=True,
                check=True,
            )
            answered, other = (int(value) for value in result.stdout.split())
            rates[senders] = ((answered + other) / seconds, other)
        return rates
    finally:
        process.terminate()
        process.wait(timeout=30)


# -- report -------------------------------------------------------------------------------


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<44} {value}" + (f"  ({note})" if note else ""))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--check", action="store_true", help="exit 1 if the 2.0x target is missed")
    parser.add_argument("--instructions", action="store_true", help="also count instructions with valgrind")
    parser.add_argument("--no-servers", action="store_true", help="skip the deliveries/s part")
    parser.add_argument("--run-deliveries", nargs=2, metavar=("CASE", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--serve", metavar="PORT", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--send", nargs=3, metavar=("PORT", "SENDERS", "SECONDS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_deliveries:
        run_deliveries(args.run_deliveries[0], int(args.run_deliveries[1]))
        return 0
    if args.serve:
        serve_with_make_server(args.serve)
        return 0
    if args.send:
        answered, other = send_deliveries(int(args.send[0]), int(args.send[1]), float(args.send[2]))
        print(answered, other)
        return 0

    count, repeats, seconds = (200, 2, 0.5) if args.quick else (2000, 5, 3.0)
    redis_installed = shutil.which("redis-server") is not None
    cases = [case for case in CASES if redis_installed or "redis" not in case]
    logs = Logs()
    try:
        bodies = [body(n) for n in range(repeats * count)]
        cpu = {case: cpu_per_delivery(caller(case, bodies, logs), count, repeats) for case in cases}
    finally:
        logs.close()
    counted = {case: instructions_per_delivery(case) for case in cases} if args.instructions else {}
    rates: Dict[str, Dict[int, Tuple[float, int]]] = {}
    if not args.no_servers:
        for name in server_commands(0):
            port = free_port()
            rates[name] = deliveries_per_second(server_commands(port)[name], port, seconds)

    import kenar_api_client

    print(
        f"kenar-api-client {kenar_api_client.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs{' (quick run)' if args.quick else ''}"
    )
    print(f"\nCPU per delivery (best of {repeats} x {count})")
    for case, value in cpu.items():
        row(case, f"{value * 1e6:8.1f} us")
    ratios = {
        "WSGI": ("make_wsgi_app", "floor (WSGI)"),
        "ASGI": ("make_asgi_app", "floor (ASGI)"),
    }
    figures = counted or cpu
    kind = "instructions" if counted else "CPU time"
    if counted:
        print("\ninstructions per delivery (valgrind; 1200 minus 200 deliveries)")
        for case, value in counted.items():
            row(case, f"{value:10.0f}")
    print(f"\nratio to the floor, by {kind} (target <= {TARGET_RATIO})")
    missed = []
    for label, (app, floor) in ratios.items():
        ratio = figures[app] / figures[floor]
        row(label, f"{ratio:8.2f}")
        if ratio > TARGET_RATIO:
            missed.append(label)
    print("\nwhat a delivery log adds per delivery")
    for log_kind in LOG_KINDS:
        case = f"make_wsgi_app, {log_kind} log"
        if case in figures:
            added = figures[case] - figures["make_wsgi_app"]
            value = f"{added:10.0f} instructions" if counted else f"{added * 1e6:8.1f} us"
            row(f"{log_kind} log", value, f"+{added / figures['make_wsgi_app']:.0%}")
    for name, by_senders in rates.items():
        print(f"\n{name}: deliveries/s over HTTP/1.1 keep-alive ({seconds:.1f} s each)")
        for senders, (rate, other) in by_senders.items():
            row(f"{senders} sender{'s' if senders > 1 else ''}", f"{rate:8.0f}/s", f"{other} not 200")
    if missed:
        print(f"\ntarget missed: {', '.join(missed)}")
    bad = sum(other for by_senders in rates.values() for _, other in by_senders.values())
    if bad:
        print(f"\n{bad} deliveries were not answered 200")
        return 1
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
