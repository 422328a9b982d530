"""What the token manager adds to a call: a user's managed token against a fixed access token.

Usage:
    python benchmarks/bench_tokens.py                  # CPU time (noisy on a busy machine)
    python benchmarks/bench_tokens.py --instructions   # also valgrind instruction counts
    python benchmarks/bench_tokens.py --quick          # smoke run (CI)
    python benchmarks/bench_tokens.py --check          # exit 1 if the 5 % target is missed

Every call is bench.py's ``events_send_event`` to its local server (a separate process): one
with ``Configuration(access_token=...)``, the others through
``TokenManager.api_client_for(user_key, api_client)`` with the user's token

* cached: valid for an hour, nothing to do;
* refresh-ahead due: less than the leeway left, its refresh under way in the background
  against an OAuth server that never answers (the calls go on with the valid token; after
  the refresh's deadline it waits for its next try, the same path for a call);
* OAuth outage: due, the OAuth server refusing connections, the failed refresh waiting for its
  next attempt on the backoff schedule.

Besides CPU time per call, measured alternately, the work the managed client adds to every
call (``TokenManager.token`` alone) is timed, and with ``--instructions`` every call is
counted by valgrind, which is repeatable where CPU time is not.
"""

from __future__ import annotations

import argparse
import functools
import logging
import select
import socket
import sys
import threading
import time
import timeit
from typing import Any, Callable, Dict, List, Optional, Tuple

from bench import (
    ACCESS_TOKEN,
    API_KEY,
    MESSAGE,
    USER_ID,
    cpu_per_call,
    instructions_per_call,
    managed_send,
    sdk_calls,
    start_server,
)

TARGET_OVERHEAD = 0.05
FIXED = "events_send_event"
CACHED = "events_send_event, managed token"
DUE = "events_send_event, managed token, refresh-ahead due"
OUTAGE = "events_send_event, managed token, OAuth outage"
MANAGED = (CACHED, DUE, OUTAGE)

# Sockets that must outlive the calls: the silent OAuth server of the "due" variant.
_KEPT: List[socket.socket] = []


def _silent_oauth_server() -> Tuple[str, Callable[[], None]]:
    """A listener that lets clients connect and send, and never answers (nor accepts); and a
    function that returns once a client's connection waits there."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)
    _KEPT.append(listener)

    def connected() -> None:
        select.select([listener], [], [], 60)  # readable: a connection waits to be accepted

    return f"http://127.0.0.1:{listener.getsockname()[1]}", connected


def _refused_oauth_server() -> Tuple[str, Callable[[], None]]:
    """A loopback port nothing listens on; and a function that returns once a refresh failed there."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
    failed = threading.Event()

    class Failed(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "kenar_step", None) == "refresh-failed":
                failed.set()

    manager_logger = logging.getLogger("kenar_api_client.oauth.manager")
    manager_logger.addHandler(Failed(logging.WARNING))
    manager_logger.setLevel(logging.WARNING)

    def refresh_failed() -> None:
        failed.wait(60)

    return url, refresh_failed


def _due_send(base_url: str, oauth: Tuple[str, Callable[[], None]]) -> Tuple[Callable[[], Any], Any]:
    """``events_send_event`` with a managed token due for a refresh that cannot complete; it
    returns once the background refresh is in its steady state (waiting on the server, or
    failed and waiting for its next try), so that every counted call sees the same."""
    import kenar_api_client
    from kenar_api_client.oauth import OAuthClient, OAuthToken, TokenManager

    oauth_url, settled = oauth
    now = time.time()
    # Due (less than the leeway left) for the whole run, and valid for half an hour more.
    token = OAuthToken(
        ACCESS_TOKEN, "bench-refresh-token", now + 1800, ["SEND_EVENT"], obtained_at=now - 1800
    )
    client = OAuthClient("bench-app", "bench-secret", "http://127.0.0.1/cb", oauth_url, timeout=(5.0, 3600.0))
    tokens = TokenManager(client, leeway=3000, lease_ttl=100, retry_interval=3600)
    tokens.save("user-1", token)
    configuration = kenar_api_client.Configuration(host=base_url, api_key={"APIKey": API_KEY})
    api = kenar_api_client.EventsApi(
        tokens.api_client_for("user-1", kenar_api_client.ApiClient(configuration))
    )

    def call() -> Any:
        return api.events_send_event(message=MESSAGE, target_type="USER", target_resource_id=USER_ID)

    call()  # starts the background refresh
    settled()
    return call, tokens


#: Each compared call, made on demand: (the call, its token manager or None).
VARIANTS: Dict[str, Callable[[str], Tuple[Callable[[], Any], Any]]] = {
    FIXED: lambda base_url: (sdk_calls(base_url)[0], None),
    CACHED: managed_send,
    DUE: lambda base_url: _due_send(base_url, _silent_oauth_server()),
    OUTAGE: lambda base_url: _due_send(base_url, _refused_oauth_server()),
}


def _token_seconds(tokens: Any, repeats: int) -> float:
    """``TokenManager.token`` alone: best seconds per call."""
    return (
        min(timeit.repeat(functools.partial(tokens.token, "user-1"), number=100_000, repeat=repeats))
        / 100_000
    )


def run_calls(name: str, count: int, base_url: str) -> None:
    """For valgrind: warm up, then ``count`` calls of one kind."""
    call = VARIANTS[name](base_url)[0]
    for _ in range(100 + count):
        call()


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--instructions", action="store_true")
    parser.add_argument("--run-calls", nargs=3, metavar=("NAME", "COUNT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.run_calls:
        name, count, url = args.run_calls
        run_calls(name, int(count), url)
        return 0
    calls, repeats, rounds = (300, 3, 2) if args.quick else (3000, 5, 5)

    server, base_url = start_server()
    try:
        compared = {name: make(base_url) for name, make in VARIANTS.items()}
        best = {name: float("inf") for name in compared}
        for _ in range(rounds):  # alternate, so machine noise hits all alike
            for name, (call, _) in compared.items():
                best[name] = min(best[name], cpu_per_call(call, calls, repeats))
        added = {name: _token_seconds(tokens, repeats) for name, (_, tokens) in compared.items() if tokens}
        counted = (
            {name: instructions_per_call(base_url, name, script=__file__) for name in compared}
            if args.instructions
            else {}
        )
    finally:
        server.terminate()

    fixed = best[FIXED]
    print(f"{'fixed access token':42} {fixed * 1e6:9.1f} µs CPU per call")
    worst_cpu = 0.0
    for name in MANAGED:
        overhead = best[name] / fixed - 1
        worst_cpu = max(worst_cpu, min(overhead, added[name] / fixed))
        label = name.replace("events_send_event, ", "")
        print(
            f"{label:42} {best[name] * 1e6:9.1f} µs CPU per call  ({overhead:+.1%}); "
            f"token() alone {added[name] * 1e6:.2f} µs ({added[name] / fixed:.2%} of a call)"
        )
    worst = worst_cpu
    if counted:
        print(f"{'instructions, fixed token':42} {counted[FIXED]:9.0f} per call")
        worst = 0.0
        for name in MANAGED:
            overhead = counted[name] / counted[FIXED] - 1
            worst = max(worst, overhead)
            label = "instructions, " + name.replace("events_send_event, ", "")
            print(f"{label:42} {counted[name]:9.0f} per call  ({overhead * 100:+.2f} %)")
    print(f"target: under {TARGET_OVERHEAD * 100:.0f} %, by instructions where counted, else by CPU time")
    if args.check and worst >= TARGET_OVERHEAD:
        print("target missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
