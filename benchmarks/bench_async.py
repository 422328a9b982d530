"""Measure the async client: concurrency against a slow server, client CPU per call, event-loop stalls.

Usage:
    python benchmarks/bench_async.py                  # full run (about a minute)
    python benchmarks/bench_async.py --quick          # smoke run with small counts (CI)
    python benchmarks/bench_async.py --instructions   # also count instructions per call (valgrind)

What is measured, against a loopback server in a separate process that answers every
request after a configurable delay:

* **Concurrency:** N calls of ``AsyncEventsApi.events_send_event`` in flight at once
  (``asyncio.gather``), against a server adding 50 ms (1,000 calls) and 100 ms (200 calls):
  the wall time against the delay (the floor), and the event loop's worst stall meanwhile
  (a ticker task that wakes every 5 ms records how late it woke).
* **Client CPU per call** (``time.process_time``, best of several runs; and with
  ``--instructions``, valgrind's instruction count, which does not depend on the machine's
  load), for the same request sent by this SDK's async client, by a raw
  ``httpx.AsyncClient`` (the floor this SDK is held to: within 1.3x), by raw aiohttp (when
  installed: whether a second transport would be worth it), and by the sync client.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import sys
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from _callgrind import instructions

API_KEY = "bench-api-key-0123456789abcdef0123"
ACCESS_TOKEN = "bench-access-token-0123456789abcdef0123456789"
SEND_PATH = "/experimental/open-platform/events/send"
MESSAGE = "سفارش شما ارسال شد"
USER_ID = "demo-user-7f3a"
USER_AGENT = "kenar-api-client/bench/python"

TARGET_CPU_RATIO = 1.3  # async SDK call / raw httpx call
TARGET_200_AT_100MS_SECONDS = 1.0
TARGET_STALL_SECONDS = 0.05

_REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


# -- the server (separate process) ---------------------------------------------------------


def _serve(port_queue: Any, delay: float) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                if delay:
                    await asyncio.sleep(delay)
                writer.write(_REPLY)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=2048)
        port_queue.put(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def start_server(delay: float) -> Tuple[multiprocessing.Process, str]:
    port_queue: Any = multiprocessing.Queue()
    process = multiprocessing.Process(target=_serve, args=(port_queue, delay), daemon=True)
    process.start()
    return process, f"http://127.0.0.1:{port_queue.get(timeout=10)}"


# -- the calls being compared ----------------------------------------------------------------


def _configuration(base_url: str) -> Any:
    import kenar_api_client

    return kenar_api_client.Configuration(
        host=base_url, api_key={"APIKey": API_KEY}, access_token=ACCESS_TOKEN
    )


async def _async_sdk(
    base_url: str, transport: str = "httpx"
) -> Tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    import kenar_api_client

    client = kenar_api_client.AsyncApiClient(_configuration(base_url), transport=transport)  # type: ignore[arg-type]
    client.user_agent = USER_AGENT
    events = kenar_api_client.AsyncEventsApi(client)

    async def call() -> Any:
        return await events.events_send_event(message=MESSAGE, target_type="USER", target_resource_id=USER_ID)

    return call, client.close


async def _raw_httpx(base_url: str) -> Tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    import httpx

    client = httpx.AsyncClient(base_url=base_url, limits=httpx.Limits(max_connections=256))
    headers = {
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        "X-API-Key": API_KEY,
        "Authorization": f"Bearer {ACCESS_TOKEN}",
    }
    params = {"message": MESSAGE, "target_type": "USER", "target_resource_id": USER_ID}

    async def call() -> Any:
        response = await client.post(SEND_PATH, params=params, headers=headers)
        return response.json()

    return call, client.aclose


async def _raw_aiohttp(base_url: str) -> Tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(base_url=base_url, connector=aiohttp.TCPConnector(limit=256))
    headers = {
        "Accept": "application/json",
        "User-Agent": USER_AGENT,
        "X-API-Key": API_KEY,
        "Authorization": f"Bearer {ACCESS_TOKEN}",
    }
    params = {"message": MESSAGE, "target_type": "USER", "target_resource_id": USER_ID}

    async def call() -> Any:
        async with session.post(SEND_PATH, params=params, headers=headers) as response:
            return await response.json()

    return call, session.close


async def _async_sdk_aiohttp(
    base_url: str,
) -> Tuple[Callable[[], Awaitable[Any]], Callable[[], Awaitable[None]]]:
    return await _async_sdk(base_url, "aiohttp")


_ASYNC_CALLS = {
    "async SDK": _async_sdk,
    "raw httpx.AsyncClient": _raw_httpx,
    "async SDK, aiohttp transport": _async_sdk_aiohttp,
    "raw aiohttp": _raw_aiohttp,
}


def _has_aiohttp() -> bool:
    try:
        import aiohttp  # noqa: F401
    except ImportError:
        return False
    return True


def _names() -> List[str]:
    return [name for name in _ASYNC_CALLS if "aiohttp" not in name or _has_aiohttp()] + ["sync SDK"]


def _sync_sdk(base_url: str) -> Tuple[Callable[[], Any], Callable[[], None]]:
    import kenar_api_client

    client = kenar_api_client.ApiClient(_configuration(base_url))
    client.user_agent = USER_AGENT
    events = kenar_api_client.EventsApi(client)

    def call() -> Any:
        return events.events_send_event(message=MESSAGE, target_type="USER", target_resource_id=USER_ID)

    return call, client.close


def run_calls(name: str, count: int, base_url: str) -> None:
    """Warm up, then make ``count`` calls one after another (what valgrind counts)."""
    if name == "sync SDK":
        call, close = _sync_sdk(base_url)
        for _ in range(100 + count):
            call()
        close()
        return

    async def main() -> None:
        acall, aclose = await _ASYNC_CALLS[name](base_url)
        for _ in range(100 + count):
            await acall()
        await aclose()

    asyncio.run(main())


# -- measurements ----------------------------------------------------------------------------


def cpu_per_call(name: str, base_url: str, calls: int, repeats: int) -> float:
    """Best-of-``repeats`` client CPU seconds per call, calls made one after another."""
    if name == "sync SDK":
        call, close = _sync_sdk(base_url)
        for _ in range(100):
            call()
        best = float("inf")
        for _ in range(repeats):
            started = time.process_time()
            for _ in range(calls):
                call()
            best = min(best, (time.process_time() - started) / calls)
        close()
        return best

    async def main() -> float:
        acall, aclose = await _ASYNC_CALLS[name](base_url)
        for _ in range(100):
            await acall()
        best = float("inf")
        for _ in range(repeats):
            started = time.process_time()
            for _ in range(calls):
                await acall()
            best = min(best, (time.process_time() - started) / calls)
        await aclose()
        return best

    return asyncio.run(main())


def instructions_per_call(name: str, base_url: str, counts: Tuple[int, int] = (200, 700)) -> float:
    """Instructions the client executes per call (valgrind): two runs, the difference per call."""
    totals = [
        instructions([sys.executable, __file__, "--run-calls", name, str(count), base_url])
        for count in counts
    ]
    return (totals[1] - totals[0]) / (counts[1] - counts[0])


def concurrent_run(base_url: str, calls: int, transport: str = "httpx") -> Tuple[float, float, int]:
    """``calls`` calls at once: wall seconds, the loop's worst stall in seconds, errors."""

    async def main() -> Tuple[float, float, int]:
        acall, aclose = await _async_sdk(base_url, transport)
        await acall()  # warm: the first call imports the models
        stop = asyncio.Event()
        worst = 0.0

        async def ticker() -> None:
            nonlocal worst
            while not stop.is_set():
                before = time.perf_counter()
                await asyncio.sleep(0.005)
                worst = max(worst, time.perf_counter() - before - 0.005)

        ticking = asyncio.ensure_future(ticker())
        started = time.perf_counter()
        results = await asyncio.gather(*(acall() for _ in range(calls)), return_exceptions=True)
        wall = time.perf_counter() - started
        stop.set()
        await ticking
        await aclose()
        return wall, worst, sum(isinstance(r, BaseException) for r in results)

    return asyncio.run(main())


# -- report ----------------------------------------------------------------------------------


def row(label: str, value: str, note: str = "") -> None:
    print(f"  {label:<44} {value}" + (f"  ({note})" if note else ""))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--instructions", action="store_true", help="also count instructions per call")
    parser.add_argument("--run-calls", nargs=3, metavar=("NAME", "COUNT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_calls:
        name, count, url = args.run_calls
        run_calls(name, int(count), url)
        return 0
    calls, repeats = (100, 2) if args.quick else (2000, 5)
    wide, narrow = ((200, 0.05), (50, 0.1)) if args.quick else ((1000, 0.05), (200, 0.1))

    runs: Dict[str, Tuple[float, float, int]] = {}
    transports = ["httpx", "aiohttp"] if _has_aiohttp() else ["httpx"]
    for count, delay in (wide, narrow):
        process, url = start_server(delay)
        try:
            for transport in transports:
                label = f"{count} at once, +{delay * 1000:.0f} ms, {transport}"
                runs[label] = concurrent_run(url, count, transport)
        finally:
            process.terminate()

    process, url = start_server(0.0)
    try:
        cpu = {name: cpu_per_call(name, url, calls, repeats) for name in _names()}
        instructions = (
            {name: instructions_per_call(name, url) for name in _names()} if args.instructions else {}
        )
    finally:
        process.terminate()

    import kenar_api_client

    print(
        f"kenar-api-client {kenar_api_client.__version__}, Python {platform.python_version()}, "
        f"{platform.machine()}, {os.cpu_count()} CPUs{' (quick run)' if args.quick else ''}"
    )
    print("\nconcurrent calls (AsyncEventsApi.events_send_event, one AsyncApiClient)")
    for label, (wall, worst, errors) in runs.items():
        row(label, f"{wall * 1000:7.0f} ms wall", f"worst loop stall {worst * 1000:.1f} ms, {errors} errors")
    print(f"\nclient CPU per call, calls one after another (best of {repeats} x {calls})")
    for name, seconds in cpu.items():
        row(name, f"{seconds * 1e6:8.1f} us")
    cpu_ratio = cpu["async SDK"] / cpu["raw httpx.AsyncClient"]
    row("ratio async SDK / raw httpx", f"{cpu_ratio:8.2f}", f"target <= {TARGET_CPU_RATIO}")
    instruction_ratio = None
    if instructions:
        print("\nclient instructions per call (valgrind; 700 minus 200 calls)")
        for name, count in instructions.items():
            row(name, f"{count:8.0f}")
        instruction_ratio = instructions["async SDK"] / instructions["raw httpx.AsyncClient"]
        row("ratio async SDK / raw httpx", f"{instruction_ratio:8.2f}", f"target <= {TARGET_CPU_RATIO}")

    narrow_wall, narrow_stall, narrow_errors = runs[f"{narrow[0]} at once, +{narrow[1] * 1000:.0f} ms, httpx"]
    checks = [
        ("200 calls at 100 ms in well under 1 s", args.quick or narrow_wall < TARGET_200_AT_100MS_SECONDS),
        ("no loop stall over 50 ms at 200 calls", narrow_stall < TARGET_STALL_SECONDS),
        ("no errors", narrow_errors == 0 and all(errors == 0 for _, _, errors in runs.values())),
        ("CPU within 1.3x raw httpx", (instruction_ratio or cpu_ratio) <= TARGET_CPU_RATIO),
    ]
    missed = [name for name, ok in checks if not ok]
    if missed:
        print("\ntargets missed: " + ", ".join(missed))
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
