"""The subscription keeper at scale: an hourly round for many users, against a fake Kenar.

Usage:
    python benchmarks/bench_keeper.py                          # 1k and 10k users, SQLite, 1 process
    python benchmarks/bench_keeper.py --transport threads,aiohttp,httpx  # how the keeper sends
    python benchmarks/bench_keeper.py --users 100000           # the 100,000-user hour
    python benchmarks/bench_keeper.py --stores sqlite,redis,postgres --processes 1,2,4,8
    python benchmarks/bench_keeper.py --delay 0.010 --concurrency 32
    python benchmarks/bench_keeper.py --quick                  # smoke run (CI)
    python benchmarks/bench_keeper.py --check                  # exit 1 if a target is missed

Each run puts N users in a fresh store, each with a token and two kept subscriptions
registered with it, as after a first round (``--transport``: the keeper's rounds on threads,
or on an event loop over aiohttp or httpx); then moves the keeper's clock to the moment
every token is due for its refresh (jitter off, so all N fall due at once: the worst
case), and runs keepers in P processes until no user is due. Every user then needs one
refresh and two registrations, each answered by the fake Kenar (benchmarks/fake_kenar.py,
its own process) after ``--delay`` seconds. Printed per run: users/s (wall time of the
whole round), client CPU per user (``time.process_time`` of the keeper processes, all
threads, divided by users), the lag (how late the last user was taken up, counted from
the moment every token fell due and the keepers were let go), the requests
beyond the needed ones (duplicate refreshes and registrations, counted by the fake), and
an idle round's time (a round right after, with nothing due). The stores' servers (Redis,
PostgreSQL) run on this machine too; their CPU is not counted as the client's.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import urllib3

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test"))

import fake_kenar
from _callgrind import instructions

TARGET_USERS_PER_SECOND = 500.0
TARGET_CPU_PER_USER = 0.0015
TARGET_IDLE_ROUND = 0.050
TARGET_HOUR_SECONDS = 200.0
LEEWAY = 300.0
POST_TOKEN = "wZ3kT9pQ"
_http = urllib3.PoolManager()


# -- the stores -------------------------------------------------------------------------------


class Stores:
    """Starts the servers the runs need, once, and opens a fresh store per run."""

    def __init__(self, work: str) -> None:
        self.work = work
        self._redis: Optional[subprocess.Popen[bytes]] = None
        self._redis_port = 0
        self._postgres: Any = None
        self._runs = 0

    def open(self, kind: str) -> Tuple[Any, Tuple[str, str, str]]:
        """A fresh store of ``kind`` and what a child process needs to open it again."""
        self._runs += 1
        if kind == "sqlite":
            where = (kind, os.path.join(self.work, f"run{self._runs}.sqlite3"), "")
        elif kind == "redis":
            where = (kind, self._redis_url(), f"run{self._runs}:")
        elif kind == "postgres":
            where = (kind, self._postgres_url(), f"run{self._runs}_")
        else:
            raise SystemExit(f"unknown store {kind!r}: sqlite, redis or postgres")
        return open_store(where), where

    def _redis_url(self) -> str:
        if self._redis is None:
            binary = shutil.which("redis-server")
            if binary is None:
                raise SystemExit("redis-server is not installed")
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                self._redis_port = probe.getsockname()[1]
            port = str(self._redis_port)
            # An hourly RDB save schedule: persistent, as a token store must be, and idle here.
            settings = ["--port", port, "--bind", "127.0.0.1", "--save", "3600 1", "--dir", self.work]
            self._redis = subprocess.Popen([binary, *settings], stdout=subprocess.DEVNULL)
            url = f"redis://127.0.0.1:{self._redis_port}/0"
            import redis

            deadline = time.monotonic() + 10
            while True:
                try:
                    redis.Redis.from_url(url).ping()
                    break
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        return f"redis://127.0.0.1:{self._redis_port}/0"

    def _postgres_url(self) -> str:
        if self._postgres is None:
            from postgres_server import PostgresServer

            self._postgres = PostgresServer()
        return str(self._postgres.url)

    def stop(self) -> None:
        if self._redis is not None:
            self._redis.terminate()
            self._redis.wait(10)
        if self._postgres is not None:
            self._postgres.stop()


def open_store(where: Tuple[str, str, str]) -> Any:
    from kenar_api_client.oauth import RedisTokenStore, SQLiteTokenStore
    from kenar_api_client.oauth.postgres_store import PostgresTokenStore

    kind, location, prefix = where
    if kind == "sqlite":
        return SQLiteTokenStore(location)
    if kind == "redis":
        return RedisTokenStore(url=location, prefix=prefix)
    return PostgresTokenStore(location, table_prefix=prefix)


# -- the app's side ---------------------------------------------------------------------------


class Clock:
    """The keepers' clock: real time moved ``offset`` seconds ahead (to make every token due)."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


def keeper_for(
    store: Any, base_url: str, clock: Callable[[], float], concurrency: int, pool: int, transport: str = ""
) -> Any:
    import kenar_api_client
    from kenar_api_client.oauth import OAuthClient, SubscriptionKeeper, TokenManager

    configuration = kenar_api_client.Configuration(host=base_url, api_key={"APIKey": "bench-api-key"})
    if pool:
        configuration.connection_pool_maxsize = pool
    oauth = OAuthClient(
        "bench-app", "bench-secret", "http://127.0.0.1/cb", base_url, configuration=configuration, clock=clock
    )
    tokens = TokenManager(oauth, store, leeway=LEEWAY)
    api_client = kenar_api_client.ApiClient(configuration)
    return SubscriptionKeeper(
        tokens,
        api_client,
        concurrency=concurrency or None,
        jitter=0.0,
        transport=transport or None,  # type: ignore[arg-type]  # the command line's choice
    )


def warm_up() -> None:
    """Load what the first registration would (the API and model modules): a keeper pays it once."""
    from kenar_api_client.api.events_api import EventsApi  # noqa: F401
    from kenar_api_client.models import EventsRegisterEventSubscriptionRequest

    EventsRegisterEventSubscriptionRequest(event_type="POST_UPDATE", metadata={}).to_dict()


def populate(store: Any, users: int, started: float) -> float:
    """N users as after their first round; returns when their tokens fall due for a refresh."""
    from kenar_api_client.oauth import OAuthToken
    from kenar_api_client.oauth.kept import REGISTERED, SUBSCRIPTIONS_KEY_PREFIX, KeptSubscription, encode

    scopes = fake_kenar.SCOPES.split()
    expires_at = started + 3600
    for index in range(users):
        user = f"user-{index}"
        token = OAuthToken(f"at.{index}.0", f"rt.{index}.0", expires_at, scopes, obtained_at=started)
        record = {"token": token.to_dict(), "divar_user_id": None, "consent_required": None}
        store.put("token:" + user, json.dumps(record))
        kept = [
            KeptSubscription(user, "POST_UPDATE", "", {"user": user}),
            KeptSubscription(user, "NEW_MESSAGE_ON_POST", POST_TOKEN, {"user": user}),
        ]
        registered = {
            s.key: KeptSubscription(
                **{**s.to_dict(), "state": REGISTERED, "token_fingerprint": token.fingerprint}
            )
            for s in kept
        }
        store.put(SUBSCRIPTIONS_KEY_PREFIX + user, encode(registered))
        store.schedule(user, expires_at - LEEWAY)
    return expires_at - LEEWAY


# -- one run ----------------------------------------------------------------------------------


def _child(
    where: Tuple[str, str, str],
    base_url: str,
    offset: float,
    concurrency: int,
    pool: int,
    transport: str,
    go: Any,
    results: Any,
) -> None:
    keeper = keeper_for(open_store(where), base_url, Clock(offset), concurrency, pool, transport)
    warm_up()
    go.wait()
    cpu, kernel = time.process_time(), os.times().system
    users = rounds = errors = 0
    lag = 0.0
    while True:
        report = keeper.renew_due()
        rounds += 1
        users += report.users - len(report.errors)
        errors += len(report.errors)
        lag = max(lag, report.lag)
        if not report.users and not report.busy:
            break
    spent, in_kernel = time.process_time() - cpu, os.times().system - kernel
    results.put(
        {"users": users, "errors": errors, "cpu": spent, "sys": in_kernel, "lag": lag, "ended": time.time()}
    )


def run(
    stores: Stores,
    kind: str,
    users: int,
    processes: int,
    base_url: str,
    concurrency: int,
    pool: int,
    transport: str = "",
) -> Dict[str, Any]:
    _http.request("POST", base_url + "/_reset")
    store, where = stores.open(kind)
    started = time.time()
    due_at = populate(store, users, started)
    offset = due_at - time.time() + 1.0  # every token just due
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    children = [
        context.Process(
            target=_child,
            args=(where, base_url, offset, concurrency, pool, transport, go, results),
        )
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    time.sleep(1.0 + 0.3 * processes)  # let them import and connect before the clock starts
    began = time.time()
    go.set()
    outcomes = [_result_of(results, children) for _ in children]
    for child in children:
        child.join(60)
    wall = max(o["ended"] for o in outcomes) - began
    done = sum(o["users"] for o in outcomes)
    stats = json.loads(_http.request("GET", base_url + "/_stats").data)
    keeper = keeper_for(store, base_url, Clock(offset + 5), concurrency, pool, transport)
    idle = min(_timed(keeper.renew_due) for _ in range(5))
    return {
        "store": kind,
        "transport": transport or "threads",
        "users": users,
        "processes": processes,
        "renewed": done,
        "errors": sum(o.get("errors", 0) for o in outcomes),
        "wall": wall,
        "users_per_s": done / wall if wall else 0.0,
        "cpu_per_user": sum(o["cpu"] for o in outcomes) / max(1, done),
        # The part of it spent in the kernel (system calls: sockets, the store's files, locks).
        "sys_per_user": sum(o["sys"] for o in outcomes) / max(1, done),
        # How late the last user was taken up, from the moment the keepers were let go.
        "lag": max(o["lag"] for o in outcomes) - (began + offset - due_at),
        "idle_round": idle,
        **stats,
        "missing": users - stats["users_registered"],
    }


def _result_of(results: Any, children: List[Any]) -> Dict[str, Any]:
    """The next child's figures; fails at once if a child died instead of waiting forever."""
    import queue

    while True:
        try:
            result: Dict[str, Any] = results.get(timeout=5)
            return result
        except queue.Empty:
            dead = [child.exitcode for child in children if child.exitcode not in (None, 0)]
            if dead:
                raise SystemExit(f"a keeper process died (exit codes {dead})") from None


# -- instructions (valgrind): the same round, counted, not timed -------------------------------

#: The SDK's register call on this machine (docs/performance.md): instructions and quiet CPU time,
#: the rate that turns an instruction count into the time a quiet core takes.
CALIBRATION_INSTRUCTIONS, CALIBRATION_SECONDS = 787_266, 243.3e-6


def instructions_per_user(
    base_url: str, work: str, transport: str = "", counts: Tuple[int, int] = (100, 300)
) -> float:
    """Instructions one process executes per due user (one keeper thread; valgrind counts).

    Two rounds that differ only in their number of users; the difference cancels start-up,
    imports and warm-up.
    """
    totals = []
    for count in counts:
        path = os.path.join(work, f"instructions-{count}.sqlite3")
        due_at = populate(open_store(("sqlite", path, "")), count, time.time())
        offset = repr(due_at - time.time() + 1.0)
        totals.append(
            instructions(
                [sys.executable, __file__, "--run-round", path, base_url, offset, transport or "threads"]
            )
        )
    return (totals[1] - totals[0]) / (counts[1] - counts[0])


def run_round(path: str, base_url: str, offset: float, transport: str) -> None:
    library = "" if transport == "threads" else transport
    # Threads: one, so that valgrind counts no thread handoffs; a loop: its default concurrency.
    keeper = keeper_for(
        open_store(("sqlite", path, "")), base_url, Clock(offset), 0 if library else 1, 0, library
    )
    warm_up()
    report = keeper.renew_due()
    if report.users == 0 or not report.ok:
        raise SystemExit(f"the counted round did not renew: {report}")


def _timed(function: Callable[[], Any]) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def _line(result: Dict[str, Any]) -> str:
    return (
        f"{result['store']:8} {result['transport']:7} {result['users']:7} users {result['processes']} proc: "
        f"{result['users_per_s']:7.0f} users/s, {result['cpu_per_user'] * 1000:5.2f} ms CPU/user "
        f"({result['sys_per_user'] * 1000:.2f} in the kernel), "
        f"lag {result['lag']:6.1f} s, idle round {result['idle_round'] * 1000:6.2f} ms, "
        f"duplicates {result['duplicate_refreshes']} refreshes / {result['duplicate_registrations']} "
        f"registrations, {result['missing']} users missed ({result['errors']} rounds broke off), "
        f"round {result['wall']:.1f} s"
    )


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", default="1000,10000", help="comma-separated user counts")
    parser.add_argument("--stores", default="sqlite", help="sqlite, redis, postgres (comma-separated)")
    parser.add_argument("--processes", default="1", help="comma-separated process counts")
    parser.add_argument("--delay", type=float, default=0.010, help="seconds the fake takes per request")
    parser.add_argument(
        "--concurrency", type=int, default=0, help="the keeper's concurrency (0: its default)"
    )
    parser.add_argument(
        "--transport",
        default="threads,aiohttp",
        help="threads, aiohttp, httpx (comma-separated): how the keeper sends (its transport=); "
        "the speed targets are checked on aiohttp runs",
    )
    parser.add_argument(
        "--pool", type=int, default=64, help="connection_pool_maxsize (0: the Configuration default)"
    )
    parser.add_argument("--quick", action="store_true", help="small counts (a smoke run)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    parser.add_argument("--instructions", action="store_true", help="also count instructions per user")
    parser.add_argument(
        "--idle-only", action="store_true", help="only time a round with nothing due over each user count"
    )
    parser.add_argument(
        "--run-round", nargs=4, metavar=("STORE", "URL", "OFFSET", "TRANSPORT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.run_round:
        run_round(args.run_round[0], args.run_round[1], float(args.run_round[2]), args.run_round[3])
        return 0
    counts = [200] if args.quick else [int(n) for n in args.users.split(",")]
    kinds = args.stores.split(",")
    process_counts = [int(n) for n in args.processes.split(",")]
    transports = ["" if name == "threads" else name for name in args.transport.split(",")]

    server, base_url = fake_kenar.start(args.delay)
    work = tempfile.mkdtemp(prefix="kenar-bench-keeper-")
    stores = Stores(work)
    results: List[Dict[str, Any]] = []
    try:
        delay = args.delay * 1000
        print(f"fake Kenar: {delay:.0f} ms per request; concurrency {args.concurrency}, pool {args.pool}")
        for kind in kinds:
            for users in counts if args.idle_only else []:
                store, _ = stores.open(kind)
                due_at = populate(store, users, time.time())
                keeper = keeper_for(store, base_url, Clock(due_at - time.time() - 600), 1, 0)
                keeper.renew_due()  # the first records the round in the store
                idle = min(_timed(keeper.renew_due) for _ in range(7))
                print(f"{kind:8} {users:7} users: a round with nothing due: {idle * 1000:.2f} ms", flush=True)
            for users in [] if args.idle_only else counts:
                for processes in process_counts:
                    for transport in transports:
                        result = run(
                            stores, kind, users, processes, base_url, args.concurrency, args.pool, transport
                        )
                        results.append(result)
                        print(_line(result), flush=True)
        for transport in transports if args.instructions else []:
            counted = instructions_per_user(base_url, work, transport)
            quiet = counted * CALIBRATION_SECONDS / CALIBRATION_INSTRUCTIONS
            how = "one thread" if not transport else f"an event loop over {transport}"
            print(
                f"instructions per due user (SQLite, {how}): {counted:,.0f}, "
                f"{quiet * 1000:.2f} ms of CPU at the rate of bench.py's quiet-machine figures",
                flush=True,
            )
    finally:
        stores.stop()
        server.terminate()
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(results, file, indent=1)
    missed = _missed(results)
    for line in missed:
        print("target missed:", line, file=sys.stderr)
    return 1 if args.check and missed else 0


def _missed(results: List[Dict[str, Any]]) -> List[str]:
    missed = []
    for r in results:
        name = f"{r['store']} {r['transport']} {r['users']} users {r['processes']} proc"
        if r["duplicate_refreshes"] or r["duplicate_registrations"] or r["missing"]:
            missed.append(f"{name}: duplicates or missed users")
        if r["idle_round"] > TARGET_IDLE_ROUND and r["users"] <= 10000:
            missed.append(f"{name}: idle round {r['idle_round'] * 1000:.0f} ms")
        # The speed targets are the event loop's over aiohttp: threads are there to compare.
        if r["processes"] == 1 and r["users"] >= 1000 and r["transport"] == "aiohttp":
            if r["users_per_s"] < TARGET_USERS_PER_SECOND:
                missed.append(f"{name}: {r['users_per_s']:.0f} users/s")
            if r["cpu_per_user"] > TARGET_CPU_PER_USER:
                missed.append(f"{name}: {r['cpu_per_user'] * 1000:.2f} ms CPU per user")
            if r["users"] >= 100000 and r["wall"] > TARGET_HOUR_SECONDS:
                missed.append(f"{name}: the hour's work took {r['wall']:.0f} s")
    return missed


if __name__ == "__main__":
    sys.exit(main())
