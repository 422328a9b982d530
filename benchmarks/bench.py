"""Measure the SDK's per-call client CPU against raw urllib3, import time, memory and threads.

Usage:
    python benchmarks/bench.py            # full run (about a minute)
    python benchmarks/bench.py --quick    # smoke run with small counts (CI)
    python benchmarks/bench.py --check    # also exit 1 if a target is missed
    python benchmarks/bench.py --instructions   # also count instructions per call (valgrind)

What is compared: the client process's CPU time (``time.process_time``) per call, warm-up
first, best of several repeats, for ``events_send_event``, for
``events_register_event_subscription`` with its model built inside the loop, and for a raw
``urllib3.PoolManager().request`` sending byte-identical requests (checked before measuring)
and ``json.loads``-ing the reply. The server runs in a separate process, so its work is not
counted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from _callgrind import instructions

API_KEY = "bench-api-key-0123456789abcdef0123"
ACCESS_TOKEN = "bench-access-token-0123456789abcdef0123456789"
SEND_PATH = "/experimental/open-platform/events/send"
SUBSCRIBE_PATH = "/v1/open-platform/events/subscriptions"
MESSAGE = "سفارش شما ارسال شد"
USER_ID = "demo-user-7f3a"
POST_TOKEN = "wZ3kT9pQ"

TARGET_CALL_RATIO = 1.00
TARGET_IMPORT_RATIO = 1.3
TARGET_MEMORY_GROWTH_MB = 1.0

_REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


# -- the server (separate process) ---------------------------------------------------------


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            writer.write(_REPLY)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _serve(port_queue: Any) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_handle, "127.0.0.1", 0)
        port_queue.put(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_server() -> Tuple[multiprocessing.Process, str]:
    port_queue: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve, args=(port_queue,), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{port_queue.get(timeout=10)}"


def capture_one_request(send: Callable[[str], None]) -> bytes:
    """The exact bytes ``send(base_url)`` puts on the wire, seen by a one-shot local listener."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen: List[bytes] = []

    def accept() -> None:
        conn, _ = listener.accept()
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        lengths = [
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ]
        length = lengths[0] if lengths else 0
        while len(body) < length:
            body += conn.recv(65536)
        seen.append(head + b"\r\n\r\n" + body)
        conn.sendall(_REPLY)
        conn.close()

    thread = threading.Thread(target=accept)
    thread.start()
    send(f"http://127.0.0.1:{listener.getsockname()[1]}")
    thread.join(5)
    listener.close()
    return seen[0]


# -- the calls being compared ----------------------------------------------------------------


def sdk_calls(base_url: str) -> Tuple[Callable[[], Any], Callable[[], Any], Any]:
    import kenar_api_client
    from kenar_api_client import EventsRegisterEventSubscriptionRequest

    configuration = kenar_api_client.Configuration(
        host=base_url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN
    )
    client = kenar_api_client.ApiClient(configuration)
    api = kenar_api_client.EventsApi(client)

    def send() -> Any:
        return api.events_send_event(message=MESSAGE, target_type="USER", target_resource_id=USER_ID)

    def subscribe() -> Any:
        request = EventsRegisterEventSubscriptionRequest(
            event_type="NEW_MESSAGE_ON_POST", event_resource_id=POST_TOKEN, metadata={"shop": "42"}
        )
        return api.events_register_event_subscription(request)

    return send, subscribe, client


def raw_calls(base_url: str, user_agent: str) -> Tuple[Callable[[], Any], Callable[[], Any]]:
    from urllib.parse import quote

    import urllib3

    manager = urllib3.PoolManager()
    auth = {"X-API-Key": API_KEY, "Authorization": f"Bearer {ACCESS_TOKEN}"}
    headers = {"User-Agent": user_agent, "Accept": "application/json", **auth}
    send_url = (
        f"{base_url}{SEND_PATH}?message={quote(MESSAGE, safe='')}&target_type=USER"
        f"&target_resource_id={USER_ID}"
    )
    subscribe_headers = {
        "User-Agent": user_agent,
        "Accept": "application/json",
        "Content-Type": "application/json",
        **auth,
    }
    subscribe_url = base_url + SUBSCRIBE_PATH
    body = json.dumps(
        {"event_resource_id": POST_TOKEN, "event_type": "NEW_MESSAGE_ON_POST", "metadata": {"shop": "42"}},
        separators=(",", ":"),
    ).encode()

    def send() -> Any:
        return json.loads(manager.request("POST", send_url, headers=headers).data)

    def subscribe() -> Any:
        return json.loads(manager.request("POST", subscribe_url, body=body, headers=subscribe_headers).data)

    return send, subscribe


def check_byte_identical(user_agent: str) -> None:
    """Refuse to compare unless the raw calls send exactly the SDK's bytes."""
    for index, label in ((0, "send"), (1, "subscribe")):

        def via_sdk(url: str, index: int = index) -> None:
            calls = sdk_calls(url)
            calls[index]()
            calls[2].close()

        def via_raw(url: str, index: int = index) -> None:
            raw_calls(url, user_agent)[index]()

        # Host carries the listener's port, which differs between the two captures.
        sdk_bytes = _without_host(capture_one_request(via_sdk))
        raw_bytes = _without_host(capture_one_request(via_raw))
        if sdk_bytes != raw_bytes:
            raise SystemExit(f"{label}: raw request differs from the SDK's:\n{sdk_bytes!r}\n{raw_bytes!r}")


def _without_host(request: bytes) -> bytes:
    return b"\r\n".join(line for line in request.split(b"\r\n") if not line.lower().startswith(b"host:"))


# -- measurements --------------------------------------------------------------------------------


def cpu_per_call(call: Callable[[], Any], calls: int, repeats: int) -> float:
    """Best-of-``repeats`` client CPU seconds per call, after a warm-up."""
    for _ in range(max(200, calls // 10)):
        call()
    best = float("inf")
    for _ in range(repeats):
        gc.collect()
        started = time.process_time()
        for _ in range(calls):
            call()
        best = min(best, (time.process_time() - started) / calls)
    return best


def import_seconds(statement: str, runs: int) -> float:
    """Median time a fresh interpreter takes to run ``statement`` (startup excluded)."""
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    samples = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(runs)
    ]
    return statistics.median(samples)


def first_call_seconds(base_url: str, runs: int) -> float:
    """Median time a fresh interpreter takes to import the SDK and make its first EventsApi call."""
    statement = (
        "import kenar_api_client as k; "
        f"c = k.Configuration(host={base_url!r}, api_key={{'APIKey': {API_KEY!r}}}, "
        f"access_token={ACCESS_TOKEN!r}); "
        "k.EventsApi(k.ApiClient(c)).events_send_event(message='m', target_type='USER', "
        "target_resource_id='u')"
    )
    return import_seconds(statement, runs)


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def memory_growth(call: Callable[[], Any], first: int, second: int) -> Tuple[float, float]:
    for _ in range(first):
        call()
    gc.collect()
    after_first = rss_mb()
    for _ in range(second - first):
        call()
    gc.collect()
    return after_first, rss_mb()


def threaded_throughput(call: Callable[[], Any], threads: int, calls_per_thread: int) -> Tuple[float, int]:
    errors: List[BaseException] = []

    def worker() -> None:
        for _ in range(calls_per_thread):
            try:
                call()
            except Exception as error:  # counted and reported
                errors.append(error)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    started = time.perf_counter()
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return threads * calls_per_thread / (time.perf_counter() - started), len(errors)


def managed_send(base_url: str) -> Tuple[Callable[[], Any], Any]:
    """``events_send_event`` with a user's token from a ``TokenManager``, and the manager."""
    import kenar_api_client
    from kenar_api_client.oauth import OAuthClient, OAuthToken, TokenManager

    now = time.time()
    token = OAuthToken(ACCESS_TOKEN, "bench-refresh-token", now + 3600, ["SEND_EVENT"], obtained_at=now)
    tokens = TokenManager(OAuthClient("bench-app", "bench-secret", "http://127.0.0.1/cb"))
    tokens.save("user-1", token)
    configuration = kenar_api_client.Configuration(host=base_url, api_key={"APIKey": API_KEY})
    api = kenar_api_client.EventsApi(
        tokens.api_client_for("user-1", kenar_api_client.ApiClient(configuration))
    )

    def call() -> Any:
        return api.events_send_event(message=MESSAGE, target_type="USER", target_resource_id=USER_ID)

    return call, tokens


def named_calls(base_url: str) -> Dict[str, Callable[[], Any]]:
    import kenar_api_client

    sdk_send, sdk_subscribe, _ = sdk_calls(base_url)
    user_agent = f"kenar-api-client/{kenar_api_client.__version__}/python"
    raw_send, raw_subscribe = raw_calls(base_url, user_agent)
    return {
        "raw urllib3 send": raw_send,
        "events_send_event": sdk_send,
        "raw urllib3 subscribe": raw_subscribe,
        "events_register_event_subscription": sdk_subscribe,
        "events_send_event, managed token": managed_send(base_url)[0],
    }


def instructions_per_call(
    base_url: str, name: str, counts: Tuple[int, int] = (300, 1300), script: str = __file__
) -> float:
    """Instructions the client executes per call, counted by valgrind: noise-free.

    Two runs of ``script --run-calls name count url`` that differ only in the number of
    calls; the difference cancels start-up and warm-up.
    """
    command = [sys.executable, script, "--run-calls", name]
    totals = [instructions([*command, str(count), base_url]) for count in counts]
    return (totals[1] - totals[0]) / (counts[1] - counts[0])


def run_calls(name: str, count: int, base_url: str) -> None:
    call = named_calls(base_url)[name]
    for _ in range(100 + count):
        call()


# -- report --------------------------------------------------------------------------------


def sdk_to_raw(figures: Dict[str, float]) -> Tuple[float, float]:
    """The SDK / raw ratios of the send and the subscribe figures."""
    return (
        figures["events_send_event"] / figures["raw urllib3 send"],
        figures["events_register_event_subscription"] / figures["raw urllib3 subscribe"],
    )


def print_ratios(send: float, subscribe: float, note: str = "") -> None:
    row("ratio events_send_event / raw", f"{send:8.2f}", note)
    row("ratio register_event_subscription / raw", f"{subscribe:8.2f}", note)


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<42} {value}" + (f"  ({note})" if note else ""))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--instructions", action="store_true", help="also count instructions per call with valgrind"
    )
    parser.add_argument("--run-calls", nargs=3, metavar=("NAME", "COUNT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_calls:
        name, count, url = args.run_calls
        run_calls(name, int(count), url)
        return 0
    calls, repeats, import_runs = (200, 2, 3) if args.quick else (3000, 7, 21)
    memory_counts = (100, 500) if args.quick else (1000, 20000)
    thread_calls = 50 if args.quick else 1000

    process, base_url = start_server()
    try:
        import kenar_api_client

        user_agent = f"kenar-api-client/{kenar_api_client.__version__}/python"
        check_byte_identical(user_agent)
        sdk_send, sdk_subscribe, client = sdk_calls(base_url)
        raw_send, raw_subscribe = raw_calls(base_url, user_agent)

        cpu: Dict[str, float] = {}
        for name, call in (
            ("raw urllib3 send", raw_send),
            ("events_send_event", sdk_send),
            ("raw urllib3 subscribe", raw_subscribe),
            ("events_register_event_subscription", sdk_subscribe),
        ):
            cpu[name] = cpu_per_call(call, calls, repeats)
        send_ratio, subscribe_ratio = sdk_to_raw(cpu)

        deps = import_seconds("import pydantic, urllib3, dateutil.parser", import_runs)
        package = import_seconds("import kenar_api_client", import_runs)
        first_use = import_seconds(
            "import kenar_api_client; kenar_api_client.EventsApi; "
            "kenar_api_client.EventsRegisterEventSubscriptionRequest",
            import_runs,
        )
        import_ratio = package / deps
        first_call = first_call_seconds(base_url, import_runs)

        after_first, after_second = memory_growth(sdk_send, *memory_counts)
        growth = after_second - after_first

        throughput = {n: threaded_throughput(sdk_send, n, thread_calls) for n in (1, 4, 16)}
        client.close()
        instructions = (
            {name: instructions_per_call(base_url, name) for name in cpu} if args.instructions else {}
        )
    finally:
        process.terminate()

    print(
        f"kenar-api-client {kenar_api_client.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs{' (quick run)' if args.quick else ''}"
    )
    print(f"\nclient CPU per call (best of {repeats} x {calls} calls)")
    for name, seconds in cpu.items():
        row(name, f"{seconds * 1e6:8.1f} us")
    print_ratios(send_ratio, subscribe_ratio, f"target <= {TARGET_CALL_RATIO:.2f}")
    if instructions:
        print("\nclient instructions per call (valgrind; 1300 minus 300 calls)")
        for name, count in instructions.items():
            row(name, f"{count:8.0f}")
        print_ratios(*sdk_to_raw(instructions))
    print(f"\nimport in a fresh interpreter (median of {import_runs} runs)")
    row("import pydantic, urllib3, dateutil.parser", f"{deps * 1e3:8.1f} ms")
    row("import kenar_api_client", f"{package * 1e3:8.1f} ms")
    row("... then load EventsApi and a model", f"{first_use * 1e3:8.1f} ms")
    row("ratio import / dependencies", f"{import_ratio:8.2f}", f"target <= {TARGET_IMPORT_RATIO}")
    row("import, then the first events_send_event", f"{first_call * 1e3:8.1f} ms")
    print("\nresident memory")
    row(f"after {memory_counts[0]} calls", f"{after_first:8.2f} MB")
    row(f"after {memory_counts[1]} calls", f"{after_second:8.2f} MB")
    row("growth", f"{growth:8.2f} MB", f"target < {TARGET_MEMORY_GROWTH_MB}")
    print(f"\nthroughput of one shared client ({thread_calls} calls per thread)")
    for threads, (rate, errors) in throughput.items():
        row(f"{threads} threads", f"{rate:8.0f} calls/s", f"{errors} errors")

    errors = sum(e for _, e in throughput.values())
    missed = [
        name
        for name, ok in (
            ("send ratio", send_ratio <= TARGET_CALL_RATIO),
            ("subscribe ratio", subscribe_ratio <= TARGET_CALL_RATIO),
            ("import ratio", import_ratio <= TARGET_IMPORT_RATIO),
            ("memory growth", growth < TARGET_MEMORY_GROWTH_MB),
        )
        if not ok
    ]
    if missed:
        print(f"\ntargets missed: {', '.join(missed)}")
    if errors:
        print(f"\n{errors} calls failed")
        return 1
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
