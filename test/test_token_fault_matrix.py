"""The fault matrix: no single fault at any step of a refresh or a code exchange loses a user.

Each cell runs 1-4 real app processes (token_fault_worker.py, forked from a forkserver that has
the SDK imported) on one SQLite file or one real redis-server, against the sandbox. The first
process is stopped at a step it makes observable (the ``kenar_step`` log records; or the
sandbox holds its request) and is SIGKILLed there, or the step is made to fail for real: the
store refuses writes (another connection holds the SQLite file's write lock; Redis is set to
``min-replicas-to-write``), or the token endpoint answers 503 with Retry-After, 500 after
processing, a body cut short, a trickle. The others are started while it is stopped, and a last
process comes after the fault is over. Then, whatever the cell:

* the store ends up holding a valid token that is not due: the user still has one;
* the sandbox saw no spent refresh token or code come back after the grace: no chain revoked;
* every call got a valid token, or (only when no valid token could be had) a typed
  connection or store error: never a "consent again", never a raw exception;
* with a token still valid (``due`` cells), every call of every process returned it at once,
  while the first process's background refresh was stopped at the step.

Leases are short (1.5 s), so a cell takes a few seconds; the deadlines below are safety nets.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import token_fault_worker
from oauth_helpers import SCOPES, browser_consent, manager_with_user, oauth_client, wait_until
from redis_server import RedisServer

from kenar_api_client.oauth import OAuthToken, RedisTokenStore, SQLiteTokenStore, TokenManager, TokenStore
from kenar_api_client.sandbox import Sandbox

USER = "user-42"
LEASE_TTL = 1.5
RETRY_INTERVAL = 0.3
HELD = "held"  # the step is "the request is at Kenar": the sandbox holds it
_END_STEP = {"refresh": "refresh-released", "login": "exchange-stored"}  # logged when a flow is over
SAFETY = 60.0  # seconds: only a hang reaches this
#: What a call may get when no valid token can be had during the fault; anything else fails the cell.
TYPED_WAITS = {"TokenUnavailableError", "TokenStoreError", "ApiTimeoutError"}
#: A login the token endpoint turned away says so; the user tries again.
TYPED_LOGIN_FAILURES = {"OAuthServerError"}

if "forkserver" not in multiprocessing.get_all_start_methods():
    pytest.skip("the fault matrix forks its app processes from a forkserver (POSIX)", allow_module_level=True)
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["token_fault_worker"])


@dataclass(frozen=True)
class Scenario:
    """A step of a flow and what happens to it there."""

    name: str
    flow: str  # "refresh" or "login"
    step: Optional[str]  # a kenar_step to stop at, HELD, or None (the fault needs no stop)
    mode: str  # "kill" or "fail"
    fault: Dict[str, Any] = field(default_factory=dict)  # inject_fault at oauth2_token
    failure_step: Optional[str] = None  # the store refuses writes from the step until this is logged


REFRESH_SCENARIOS = [
    Scenario(
        "the mark before the request refused",
        "refresh",
        "refresh-leased",
        "fail",
        failure_step="refresh-failed",
    ),
    Scenario("killed before the request", "refresh", "refresh-request", "kill"),
    Scenario(
        "killed, request held unprocessed",
        "refresh",
        HELD,
        "kill",
        {"fault": 503, "delay": 60, "takes_effect": False},
    ),
    Scenario(
        "killed, request processed, answer held", "refresh", HELD, "kill", {"fault": "slow", "delay": 60}
    ),
    Scenario("503 with Retry-After", "refresh", None, "fail", {"fault": 503, "retry_after": 1}),
    Scenario("processed, then 500", "refresh", None, "fail", {"fault": 500}),
    Scenario("killed with the answer read", "refresh", "token-answer", "kill"),
    Scenario("answer cut short after processing", "refresh", None, "fail", {"fault": "malformed"}),
    Scenario("a trickling answer", "refresh", None, "fail", {"fault": "trickle", "delay": 60}),
    Scenario("killed before the store write", "refresh", "refresh-answered", "kill"),
    Scenario(
        "the store write refused", "refresh", "refresh-answered", "fail", failure_step="store-write-failed"
    ),
    Scenario("killed after the store write, lease held", "refresh", "refresh-stored", "kill"),
    Scenario("the lease release refused", "refresh", "refresh-stored", "fail", failure_step="release-failed"),
]
LOGIN_SCENARIOS = [
    Scenario("killed before the request", "login", "exchange-request", "kill"),
    Scenario("killed, code processed, answer held", "login", HELD, "kill", {"fault": "slow", "delay": 60}),
    Scenario("503 turned away", "login", None, "fail", {"fault": 503}),
    Scenario("killed with the answer read", "login", "token-answer", "kill"),
    Scenario("killed before the store write", "login", "exchange-answered", "kill"),
    Scenario(
        "the store write refused", "login", "exchange-answered", "fail", failure_step="store-write-failed"
    ),
    Scenario("killed after the store write", "login", "exchange-stored", "kill"),
]


@dataclass(frozen=True)
class Cell:
    scenario: Scenario
    store: str  # "sqlite" or "redis"
    processes: int  # 1-4
    due: bool  # refresh: due but still valid (refreshed in the background), else expired

    @property
    def id(self) -> str:
        state = "" if self.scenario.flow == "login" else (", due" if self.due else ", expired")
        return f"{self.scenario.flow}: {self.scenario.name} [{self.store}, {self.processes}p{state}]"


def _cells() -> List[Cell]:
    cells = []
    for number, scenario in enumerate(REFRESH_SCENARIOS):
        for store in ("sqlite", "redis"):
            cells.append(
                Cell(scenario, store, 1 + (number + len(store)) % 4, due=(number + len(store)) % 2 == 1)
            )
    for number, scenario in enumerate(LOGIN_SCENARIOS):
        cells.append(Cell(scenario, ("sqlite", "redis")[number % 2], 1, due=False))
    return cells


# -- the processes ----------------------------------------------------------------------------------


class AppProcess:
    """An app process (token_fault_worker.run) and its two pipes: the pause at a step, and control."""

    def __init__(self, config: Dict[str, Any]) -> None:
        self.name = config["name"]
        self._pause, pause_end = _CONTEXT.Pipe()
        self._control, control_end = _CONTEXT.Pipe()
        self.process = _CONTEXT.Process(
            target=token_fault_worker.run, args=(config, pause_end, control_end), daemon=True
        )
        self.process.start()

    def wait_at_step(self) -> str:
        return self._next_pause_message("at")

    def wait_saw(self, *steps: str) -> None:
        while self._next_pause_message("saw") not in steps:
            pass

    def _next_pause_message(self, kind: str) -> str:
        while True:
            assert self._pause.poll(SAFETY), f"{self.name} never logged the step awaited"
            got, step = self._pause.recv()
            if got == kind:
                return str(step)

    def go_on(self) -> None:
        self._pause.send("go")

    def kill(self) -> None:
        assert self.process.pid is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(SAFETY)
        assert self.process.exitcode == -signal.SIGKILL

    def outcomes(self) -> List[Dict[str, Any]]:
        assert self._control.poll(2 * SAFETY), f"{self.name} never finished its calls"
        kind, outcomes = self._control.recv()
        assert kind == "done"
        return list(outcomes)

    def exit(self) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError):  # it may be gone already
                self._control.send("exit")
            self.process.join(SAFETY)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(SAFETY)


class SharedStore:
    """The store the processes share, and a real way to make it refuse every write for a while."""

    def __init__(self, kind: str, tmp_path: Path, redis_server: Optional[RedisServer]) -> None:
        self.kind = kind
        if kind == "sqlite":
            path = str(tmp_path / "tokens.sqlite3")
            self.spec: Dict[str, Any] = {"kind": "sqlite", "path": path, "busy_timeout": 1.0}
            self.store: TokenStore = SQLiteTokenStore(path)
            self._locker = sqlite3.connect(
                path, isolation_level=None, timeout=SAFETY, check_same_thread=False
            )
        else:
            assert redis_server is not None
            import redis

            prefix = f"matrix-{os.urandom(4).hex()}:"
            self.spec = {"kind": "redis", "url": redis_server.url, "prefix": prefix}
            self.store = RedisTokenStore(url=redis_server.url, prefix=prefix)
            self._admin = redis.Redis.from_url(redis_server.url)

    def refuse_writes(self) -> None:
        if self.kind == "sqlite":
            self._locker.execute("BEGIN IMMEDIATE")  # another process's write transaction
        else:
            self._admin.config_set("min-replicas-to-write", 1)  # writes fail: NOREPLICAS

    def take_writes(self) -> None:
        if self.kind == "sqlite":
            self._locker.execute("ROLLBACK")
        else:
            self._admin.config_set("min-replicas-to-write", 0)

    def close(self) -> None:
        if self.kind == "sqlite":
            self._locker.close()
        else:
            self._admin.close()


# -- one cell -------------------------------------------------------------------------------------


class Run:
    """One cell being run: the sandbox, the store, the processes and what their calls got."""

    def __init__(self, cell: Cell, sandbox: Sandbox, store: SharedStore) -> None:
        self.cell = cell
        self.sandbox = sandbox
        self.store = store
        self.processes: List[AppProcess] = []
        self.outcomes: List[Dict[str, Any]] = []

    def start(self, name: str, **extra: Any) -> AppProcess:
        config = {
            "name": name,
            "oauth_url": self.sandbox.oauth_url,
            "clock_offset": self.sandbox.clock.now() - time.time(),
            "store": self.store.spec,
            "user": USER,
            "lease_ttl": LEASE_TTL,
            "retry_interval": RETRY_INTERVAL,
            "action": "token",
            "calls": 20 if self.cell.due else 1,
            **extra,
        }
        process = AppProcess(config)
        self.processes.append(process)
        return process

    def start_first(self, **extra: Any) -> AppProcess:
        """The process the fault hits, stopped at its step (or with its request held at Kenar)."""
        scenario = self.cell.scenario
        log_step = scenario.step if scenario.step != HELD else None
        notify = [scenario.failure_step, _END_STEP[scenario.flow]] if scenario.failure_step else []
        first = self.start("first", pause_at=log_step, notify_at=notify, **extra)
        if scenario.step == HELD:
            wait_until(lambda: self.sandbox.injected_faults, "the request to reach Kenar", SAFETY)
        elif log_step is not None:
            assert first.wait_at_step() == log_step
        return first

    def kill_or_fail(self, first: AppProcess) -> None:
        """SIGKILL the first process at its step, or make the step fail for real and let it go on."""
        scenario = self.cell.scenario
        if scenario.mode == "kill":
            first.kill()
            return
        if scenario.failure_step:
            self.store.refuse_writes()
        if scenario.step not in (None, HELD):
            first.go_on()
        if scenario.failure_step:
            try:  # the step fails; or it was not reached: the lease ran out and another took over
                first.wait_saw(scenario.failure_step, _END_STEP[scenario.flow])
            finally:
                self.store.take_writes()
        if not self.cell.due:
            self.outcomes += first.outcomes()

    def stored(self) -> Optional[OAuthToken]:
        return TokenManager(oauth_client(self.sandbox), self.store.store).stored(USER)

    def stored_is_valid_and_fresh(self) -> bool:
        stored = self.stored()
        if stored is None or self.sandbox.state.tokens.status(stored.access_token).grant is None:
            return False
        return bool(stored.expires_at - 300 > self.sandbox.clock.now())

    def finish(self) -> None:
        for process in self.processes:
            process.exit()
        self.store.close()


def _refresh_cell(run: Run) -> None:
    cell, sandbox = run.cell, run.sandbox
    manager_with_user(sandbox, run.store.store)
    sandbox.clock.advance(3600 - 100 if cell.due else 3601)
    if cell.scenario.fault:
        sandbox.inject_fault("oauth2_token", **cell.scenario.fault)
    first = run.start_first()
    if cell.due:
        run.outcomes += first.outcomes()  # its calls went on at once, its own refresh stopped
    others = [run.start(f"other-{number}") for number in range(1, cell.processes)]
    if cell.due:
        for other in others:  # and theirs, while the first one holds the lease
            run.outcomes += other.outcomes()
    run.kill_or_fail(first)
    if not cell.due:
        for other in others:
            run.outcomes += other.outcomes()
    run.outcomes += run.start("last", until_token=True).outcomes()  # the app goes on (or restarts)
    wait_until(run.stored_is_valid_and_fresh, "a valid, refreshed token in the store", SAFETY)


def _login_cell(run: Run) -> None:
    sandbox = run.sandbox
    oauth = oauth_client(sandbox)
    request = oauth.authorization_url(SCOPES)
    login = {"action": "login", "redirect": browser_consent(request.url), "state": request.state}
    if run.cell.scenario.fault:
        sandbox.inject_fault("oauth2_token", **run.cell.scenario.fault)
    first = run.start_first(**login)
    run.kill_or_fail(first)
    got_tokens = any("token" in outcome for outcome in run.outcomes)
    if got_tokens:  # kept in memory while the store refused them: written once it takes writes
        wait_until(lambda: run.stored() is not None, "the tokens to be stored", SAFETY)

    exchanges = _code_exchanges(sandbox)
    # The browser comes back with the same code (a reload, a retry): it is never sent twice.
    (again,) = run.start("same-code", **login).outcomes()
    if "token" in again:  # the first was turned away (503) before Kenar took the code
        assert (exchanges, _code_exchanges(sandbox), got_tokens) == (0, 1, False)
    else:
        assert again["error"] == "InvalidGrantError", again
        assert "already sent" in again["message"]
        assert _code_exchanges(sandbox) == exchanges
    run.outcomes.append(again)
    if run.stored() is None:
        # The tokens of that code died with the process: the user consents again, and it works.
        request = oauth.authorization_url(SCOPES)
        fresh = {"action": "login", "redirect": browser_consent(request.url), "state": request.state}
        run.outcomes += run.start("consents-again", **fresh).outcomes()
    wait_until(run.stored_is_valid_and_fresh, "a valid token in the store", SAFETY)


def _code_exchanges(sandbox: Sandbox) -> int:
    return len([r for r in sandbox.token_requests if r.grant_type == "authorization_code"])


@pytest.mark.parametrize("cell", _cells(), ids=lambda cell: cell.id)
def test_no_single_fault_loses_the_user(
    cell: Cell, sandbox: Sandbox, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    redis_server = request.getfixturevalue("redis_server") if cell.store == "redis" else None
    run = Run(cell, sandbox, SharedStore(cell.store, tmp_path, redis_server))
    try:
        (_refresh_cell if cell.scenario.flow == "refresh" else _login_cell)(run)
    finally:
        run.finish()

    stored = run.stored()
    assert stored is not None
    assert sandbox.state.tokens.status(stored.access_token).grant is not None  # the user has a token
    assert [r for r in sandbox.token_reuses if not r.within_grace] == []  # nothing replayed after the grace
    assert not any(r.revoked_chain for r in sandbox.token_reuses)
    for outcome in run.outcomes:
        if "token" in outcome:
            assert sandbox.state.tokens.status(outcome["token"]).grant is not None, outcome
        elif outcome["error"] == "InvalidGrantError":
            assert "already sent" in outcome["message"]  # the same code, refused before sending
        else:
            typed = TYPED_WAITS | (TYPED_LOGIN_FAILURES if cell.scenario.flow == "login" else set())
            assert outcome["error"] in typed, outcome  # no valid token could be had: said so
            assert not cell.due, outcome  # a valid token was there: it should have been handed out
    refreshes = [r for r in sandbox.token_requests if r.grant_type == "refresh_token"]
    assert len(refreshes) <= 3 * cell.processes + 4  # no storm: a few per process at the most
