"""The token stores keep one contract: versioned compare-and-set, prefix listing, leases and the due index.

Each test runs against the in-memory store, a SQLite file, a real redis-server and a real
PostgreSQL server (test/postgres_server.py).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import sqlite3
import stat
import threading
import time
from pathlib import Path
from typing import Any, List, Tuple

import pytest
from postgres_server import PostgresServer
from redis_server import RedisServer
from servers import refused_port

from kenar_api_client.exceptions import ApiConnectionError, ApiValueError
from kenar_api_client.oauth import (
    MemoryTokenStore,
    RedisTokenStore,
    SQLiteTokenStore,
    TokenStore,
    TokenStoreError,
)
from kenar_api_client.oauth.postgres_store import PostgresTokenStore
from kenar_api_client.oauth.store import Due, DueIndex, VolatileStoreWarning

STORES = ["memory", "sqlite", "redis", "postgres"]


def _open(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """A fresh, empty store of ``kind`` (a new table prefix or key prefix on a shared server)."""
    if kind == "memory":
        return MemoryTokenStore()
    if kind == "sqlite":
        return SQLiteTokenStore(tmp_path / "tokens.sqlite3")
    if kind == "redis":
        server = request.getfixturevalue("redis_server")
        return RedisTokenStore(url=server.url, prefix=f"test-{os.urandom(4).hex()}:")
    postgres = request.getfixturevalue("postgres_server")
    return PostgresTokenStore(postgres.url, table_prefix=f"t{os.urandom(4).hex()}_")


@pytest.fixture(params=STORES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    return _open(request.param, request, tmp_path)


def test_the_stores_satisfy_the_protocols(store: TokenStore) -> None:
    assert isinstance(store, TokenStore)
    assert isinstance(store, DueIndex)


def test_put_get_and_versions(store: TokenStore) -> None:
    assert store.get("token:a") is None
    assert store.put("token:a", "one") == 1
    assert store.get("token:a") == ("one", 1)
    assert store.put("token:a", "two") == 2
    assert store.get("token:a") == ("two", 2)


def test_compare_and_set_refuses_a_stale_version(store: TokenStore) -> None:
    assert store.put("k", "first", expected_version=0) == 1
    assert store.put("k", "again", expected_version=0) is None  # 0 means "absent"
    assert store.put("k", "stale", expected_version=5) is None
    assert store.get("k") == ("first", 1)
    assert store.put("k", "second", expected_version=1) == 2
    assert store.get("k") == ("second", 2)


def test_delete_and_keys_by_prefix(store: TokenStore) -> None:
    for key in ("token:a", "token:b*", "subscriptions:a", "tokenish"):
        store.put(key, "{}")
    assert sorted(store.keys("token:")) == ["token:a", "token:b*"]
    assert store.keys("token:b*") == ["token:b*"]  # glob characters are literal
    store.delete("token:a")
    store.delete("token:missing")
    assert sorted(store.keys("token:")) == ["token:b*"]
    assert store.get("token:a") is None


def test_a_lease_is_exclusive_until_released(store: TokenStore) -> None:
    assert store.acquire_lease("refresh:a", "owner-1", 30)
    assert not store.acquire_lease("refresh:a", "owner-2", 30)
    assert store.acquire_lease("refresh:b", "owner-2", 30)  # leases are per name
    store.release_lease("refresh:a", "owner-2")  # not the holder: no effect
    assert not store.acquire_lease("refresh:a", "owner-2", 30)
    store.release_lease("refresh:a", "owner-1")
    assert store.acquire_lease("refresh:a", "owner-2", 30)


def test_a_lease_expires_by_itself(store: TokenStore) -> None:
    ttl = 1.0
    started = time.monotonic()
    assert store.acquire_lease("refresh:a", "crashed-process", ttl)
    taken_early = store.acquire_lease("refresh:a", "other", 30)
    if time.monotonic() - started < ttl:  # a loaded machine may get here only after the ttl
        assert not taken_early
    # Nobody releases it: it becomes free by itself, and not before its ttl.
    deadline = started + 30
    while not store.acquire_lease("refresh:a", "other", 30):
        assert time.monotonic() < deadline, "the lease never expired"
        time.sleep(0.02)
    assert time.monotonic() - started >= ttl * 0.9


def test_only_the_holder_renews_a_lease_and_only_before_it_runs_out(store: TokenStore) -> None:
    assert store.acquire_lease("refresh:a", "holder", 0.3)
    assert not store.renew_lease("refresh:a", "someone-else", 30)
    assert store.renew_lease("refresh:a", "holder", 30)
    time.sleep(0.5)  # past the first ttl: the renewal holds it
    assert not store.acquire_lease("refresh:a", "someone-else", 30)
    assert not store.renew_lease("refresh:never-taken", "holder", 30)

    assert store.acquire_lease("refresh:b", "slow-holder", 0.2)
    time.sleep(0.4)  # it ran out: another may have taken it since, so no renewal
    assert not store.renew_lease("refresh:b", "slow-holder", 30)
    assert store.acquire_lease("refresh:b", "someone-else", 30)
    assert not store.renew_lease("refresh:b", "slow-holder", 30)


def test_leases_are_not_listed_as_keys(store: TokenStore) -> None:
    store.acquire_lease("token:x", "owner", 30)
    store.put("token:y", "{}")
    assert store.keys("") == ["token:y"]


def _increment(store: TokenStore, key: str, times: int) -> None:
    for _ in range(times):
        while True:
            current = store.get(key)
            count = json.loads(current.value) if current else 0
            if store.put(key, json.dumps(count + 1), current.version if current else 0) is not None:
                break


def test_compare_and_set_loses_no_update_under_thread_contention(store: TokenStore) -> None:
    threads = [threading.Thread(target=_increment, args=(store, "counter", 40)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = store.get("counter")
    assert stored is not None
    assert json.loads(stored.value) == 320
    assert stored.version == 320


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_compare_and_set_loses_no_update_across_processes(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = _open(kind, request, tmp_path)
    where = _locator(kind, store, request)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_child_increment, args=(kind, where, 30)) for _ in range(3)]
    for process in processes:
        process.start()
    _increment(store, "counter", 30)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    stored = _reopen(kind, where).get("counter")
    assert stored is not None
    assert json.loads(stored.value) == 120


def _child_increment(kind: str, where: Tuple[str, str], times: int) -> None:
    _increment(_reopen(kind, where), "counter", times)


# -- the due index -------------------------------------------------------------------------


def test_claim_due_takes_the_most_overdue_first_and_only_once(store: DueIndex) -> None:
    for name, due_at in (("late", 100.0), ("later", 150.0), ("earliest", 50.0), ("future", 500.0)):
        store.schedule(name, due_at)
    assert store.claim_due(200.0, "one", 30, 2) == [Due("earliest", 50.0), Due("late", 100.0)]
    assert store.claim_due(200.0, "two", 30, 10) == [Due("later", 150.0)]  # the rest; not "future"
    assert store.claim_due(200.0, "three", 30, 10) == []  # every due name is claimed
    assert store.claim_due(200.0, "one", 30, 0) == []


def test_an_earlier_schedule_wins_a_later_one_does_not_postpone(store: DueIndex) -> None:
    store.schedule("u", 300.0)
    store.schedule("u", 100.0)
    store.schedule("u", 200.0)
    assert store.claim_due(150.0, "o", 30, 10) == [Due("u", 100.0)]


def test_a_claim_runs_out_and_the_name_falls_due_again(store: DueIndex) -> None:
    store.schedule("u", 100.0)
    assert store.claim_due(100.0, "crashed", 30, 10) == [Due("u", 100.0)]
    assert store.claim_due(129.0, "other", 30, 10) == []
    assert store.claim_due(131.0, "other", 30, 10) == [Due("u", 130.0)]  # due since the claim ended
    # The first owner's late release no longer counts.
    assert not store.release("u", "crashed", 1000.0)
    assert store.claim_due(150.0, "third", 30, 10) == []  # still claimed by "other"


def test_release_sets_the_next_due_time_and_none_unschedules(store: DueIndex) -> None:
    store.schedule("a", 10.0)
    store.schedule("b", 10.0)
    assert len(store.claim_due(10.0, "o", 30, 10)) == 2
    assert store.release("a", "o", 3600.0)
    assert store.release("b", "o", None)
    assert store.claim_due(3599.0, "o", 30, 10) == []
    assert store.claim_due(3600.0, "o", 30, 10) == [Due("a", 3600.0)]
    assert store.due_summary(0.0).scheduled == 1  # "b" is gone


def test_schedule_during_a_claim_applies_at_release(store: DueIndex) -> None:
    store.schedule("u", 10.0)
    assert store.claim_due(10.0, "o", 60, 10) == [Due("u", 10.0)]
    store.schedule("u", 20.0)  # e.g. keep() while a keeper renews the user
    assert store.claim_due(30.0, "other", 60, 10) == []  # the claim still keeps others away
    assert store.release("u", "o", 3600.0)
    assert store.claim_due(30.0, "other", 60, 10) == [Due("u", 20.0)]
    assert store.release("u", "other", None)
    store.schedule("v", 10.0)
    store.claim_due(10.0, "o", 60, 10)
    store.schedule("v", 40.0)
    assert store.release("v", "o", None)  # unscheduled by the owner, but asked for meanwhile
    assert store.claim_due(40.0, "o", 60, 10) == [Due("v", 40.0)]


def test_release_by_another_owner_changes_nothing(store: DueIndex) -> None:
    store.schedule("u", 10.0)
    store.claim_due(10.0, "owner", 60, 10)
    assert not store.release("u", "intruder", None)
    assert not store.release("missing", "owner", 5.0)
    assert store.claim_due(80.0, "next", 60, 10) == [Due("u", 70.0)]


def test_claim_one_name_due_or_not(store: DueIndex) -> None:
    assert store.claim("fresh", "o", 100.0, 30)  # not scheduled: claimed all the same
    assert store.claim("fresh", "o", 110.0, 30)  # extends its own claim, to 140
    assert not store.claim("fresh", "other", 139.0, 30)
    assert store.claim("fresh", "other", 141.0, 30)  # the claim ran out
    assert not store.release("fresh", "o", None)
    assert store.release("fresh", "other", 500.0)
    assert store.claim_due(499.0, "x", 30, 10) == []
    store.schedule("later", 1000.0)
    assert store.claim("later", "x", 0.0, 30)  # not due yet: claimed anyway
    assert store.claim_due(10.0, "y", 30, 10) == []


def test_unschedule_and_summary(store: DueIndex) -> None:
    assert store.due_summary(0.0) == (0, 0, None)
    for name, due_at in (("a", 10.0), ("b", 20.0), ("c", 30.0)):
        store.schedule(name, due_at)
    assert store.due_summary(25.0) == (3, 2, 10.0)
    store.claim_due(10.0, "o", 100, 1)  # "a" claimed until 110
    store.unschedule("a")
    store.unschedule("b")
    store.unschedule("missing")
    assert store.due_summary(25.0) == (1, 0, 30.0)
    assert not store.release("a", "o", 5.0)


def test_names_are_text_as_given(store: DueIndex) -> None:
    names = [
        "user:42",
        "user 7",
        "فروشنده-" + chr(0x6F1),
        "a'b\\c%_*",
    ]  # a Persian digit, quotes, LIKE and glob characters
    for index, name in enumerate(names):
        store.schedule(name, float(index))
    assert [due.name for due in store.claim_due(10.0, "o", 30, 10)] == names


def _claim_all(store: DueIndex, owner: str, batch: int) -> List[str]:
    claimed: List[str] = []
    while True:
        found = store.claim_due(1000.0, owner, 3600, batch)
        if not found:
            return claimed
        claimed += [due.name for due in found]


def test_concurrent_claims_hand_each_name_to_one_thread(store: DueIndex) -> None:
    for index in range(300):
        store.schedule(f"user-{index}", float(index))
    results: List[List[str]] = [[] for _ in range(6)]
    threads = [
        threading.Thread(target=lambda i=i: results[i].extend(_claim_all(store, f"t{i}", 7)))
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [name for claimed in results for name in claimed]
    assert sorted(every) == sorted(f"user-{index}" for index in range(300))  # each once, none lost


@pytest.mark.parametrize("kind", ["sqlite", "redis", "postgres"])
def test_concurrent_claims_hand_each_name_to_one_process(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    store = _open(kind, request, tmp_path)
    for index in range(400):
        store.schedule(f"user-{index}", float(index))
    where = _locator(kind, store, request)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    processes = [
        context.Process(target=_child_claim_all, args=(kind, where, f"p{i}", queue)) for i in range(4)
    ]
    for process in processes:
        process.start()
    claimed = [queue.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    every = [name for names in claimed for name in names]
    assert len(every) == 400
    assert set(every) == {f"user-{index}" for index in range(400)}


def _locator(kind: str, store: Any, request: pytest.FixtureRequest) -> Tuple[str, str]:
    """What a child process needs to open the same store."""
    if kind == "sqlite":
        return (store.path, "")
    if kind == "redis":
        return (request.getfixturevalue("redis_server").url, store.prefix)
    return (request.getfixturevalue("postgres_server").url, store.table_prefix)


def _reopen(kind: str, where: Tuple[str, str]) -> Any:
    if kind == "sqlite":
        return SQLiteTokenStore(where[0])
    if kind == "redis":
        return RedisTokenStore(url=where[0], prefix=where[1])
    return PostgresTokenStore(where[0], table_prefix=where[1])


def _child_claim_all(kind: str, where: Tuple[str, str], owner: str, queue: Any) -> None:
    queue.put(_claim_all(_reopen(kind, where), owner, 5))


# -- SQLite specifics --------------------------------------------------------------------------


def test_the_sqlite_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)
    try:
        store = SQLiteTokenStore(tmp_path / "tokens.sqlite3")
        store.put("token:a", "secret")
    finally:
        os.umask(old_umask)
    for path in tmp_path.iterdir():  # the database and its -wal / -shm files
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_sqlite_refuses_memory_paths() -> None:
    with pytest.raises(ApiValueError, match="MemoryTokenStore"):
        SQLiteTokenStore(":memory:")


def test_sqlite_works_in_a_forked_child(tmp_path: Path) -> None:
    store = SQLiteTokenStore(tmp_path / "tokens.sqlite3")
    store.put("token:a", "parent")
    context = multiprocessing.get_context("fork")
    process = context.Process(target=lambda: store.put("token:a", "child"))
    process.start()
    process.join(30)
    assert process.exitcode == 0
    assert store.get("token:a") == ("child", 2)


# -- Redis specifics ---------------------------------------------------------------------------


def test_redis_needs_a_client_or_a_url() -> None:
    with pytest.raises(ApiValueError, match="either"):
        RedisTokenStore()


def test_redis_prefixes_keep_apps_apart(redis_server: RedisServer) -> None:
    one = RedisTokenStore(url=redis_server.url, prefix="app-one:")
    two = RedisTokenStore(url=redis_server.url, prefix="app-two:")
    one.put("token:a", "one's")
    assert two.get("token:a") is None
    assert two.keys("token:") == []


def test_an_unreachable_redis_is_a_typed_connection_error(sandbox_free_port: int) -> None:
    store = RedisTokenStore(url=f"redis://127.0.0.1:{sandbox_free_port}/0")
    with pytest.raises(TokenStoreError) as caught:
        store.get("token:a")
    assert isinstance(caught.value, ApiConnectionError)
    assert isinstance(caught.value.__cause__, Exception)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert str(copy) == str(caught.value)


def test_a_locked_sqlite_file_is_a_typed_connection_error(tmp_path: Path) -> None:
    path = tmp_path / "tokens.sqlite3"
    store = SQLiteTokenStore(path)
    store.put("token:a", "{}")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holding the file
    try:
        other = SQLiteTokenStore(path, busy_timeout=0.1)
        with pytest.raises(TokenStoreError, match="database is locked"):
            other.put("token:a", "{}")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.fixture
def sandbox_free_port() -> int:
    return refused_port()


def test_redis_never_scans_the_keyspace_and_writes_only_under_its_prefix(redis_server: RedisServer) -> None:
    import redis

    admin = redis.Redis.from_url(redis_server.url)
    prefix = f"app-{os.urandom(4).hex()}:"
    store = RedisTokenStore(url=redis_server.url, prefix=prefix)
    admin.config_resetstat()
    for index in range(50):
        store.put(f"token:user-{index}", "{}")
        store.put(f"subscriptions:user-{index}", "{}")
        store.schedule(f"user-{index}", float(index))
    store.acquire_lease("refresh:user-1", "owner", 30)
    assert len(store.keys("token:")) == 50
    assert store.keys("subscriptions:user-4") == ["subscriptions:user-4"] + [
        f"subscriptions:user-{index}" for index in range(40, 50)
    ]
    claimed = store.claim_due(100.0, "owner", 30, 20)
    for due in claimed:
        store.release(due.name, "owner", 500.0)
    store.delete("token:user-3")
    store.due_summary(100.0)
    commands = set(admin.info("commandstats"))
    assert not {"cmdstat_scan", "cmdstat_keys"} & commands, sorted(commands)
    written = [key.decode() for key in admin.scan_iter(match="*")]  # the test may scan
    ours = [key for key in written if not key.startswith(("test-", "procs-", "app-one:", "app-two:"))]
    assert ours
    assert all(key.startswith(prefix) for key in ours), ours


def test_redis_without_persistence_is_loudly_refused_as_a_durable_store() -> None:
    volatile = RedisServer(persistent=False)
    try:
        with pytest.warns(VolatileStoreWarning, match="appendonly") as caught:
            RedisTokenStore(url=volatile.url)
        assert "save" in str(caught[0].message)
        assert RedisTokenStore(url=volatile.url, check_persistence=False).persistence() is False
    finally:
        volatile.stop()


def test_redis_with_persistence_does_not_warn(redis_server: RedisServer) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", VolatileStoreWarning)
        store = RedisTokenStore(url=redis_server.url, prefix="quiet:")
    assert store.persistence() is True


# -- PostgreSQL specifics ----------------------------------------------------------------------


def test_postgres_hides_the_password(postgres_server: PostgresServer) -> None:
    url = postgres_server.url.replace("kenar@", "kenar:s3cret-pw@")
    store = PostgresTokenStore(url, table_prefix="hidden_")
    assert "s3cret-pw" not in repr(store)
    assert "127.0.0.1" in repr(store)
    assert vars(store).get("_where") is not None
    assert not [value for value in vars(store).values() if "s3cret-pw" in repr(value)]


def test_postgres_refuses_bad_settings() -> None:
    with pytest.raises(ApiValueError, match="either"):
        PostgresTokenStore()
    with pytest.raises(ApiValueError, match="table_prefix"):
        PostgresTokenStore("postgresql://127.0.0.1/x", table_prefix="x; DROP TABLE y")
    with pytest.raises(ApiValueError, match="connection string"):
        PostgresTokenStore("not a = valid = string")


def test_an_unreachable_postgres_is_a_typed_connection_error(sandbox_free_port: int) -> None:
    with pytest.raises(TokenStoreError) as caught:
        PostgresTokenStore(f"postgresql://kenar@127.0.0.1:{sandbox_free_port}/kenar", connect_timeout=2)
    assert isinstance(caught.value, ApiConnectionError)


def test_postgres_reconnects_after_its_connection_dies(postgres_server: PostgresServer) -> None:
    import psycopg

    store = PostgresTokenStore(postgres_server.url, table_prefix="reconnect_")
    store.put("token:a", "one")
    with psycopg.connect(postgres_server.url, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND query LIKE '%reconnect_store%'"  # the store's connection: its last query named its table
        )
    with pytest.raises(TokenStoreError):
        store.get("token:a")  # the call that finds the connection dead fails, typed
    assert store.get("token:a") == ("one", 1)  # the next one reconnects


def test_postgres_uses_the_apps_own_connections(postgres_server: PostgresServer) -> None:
    import psycopg

    opened: List[Any] = []

    def connect() -> Any:
        connection = psycopg.connect(postgres_server.url)
        opened.append(connection)
        return connection

    store = PostgresTokenStore(connect=connect, table_prefix="own_")
    assert store.put("token:a", "x") == 1
    assert store.get("token:a") == ("x", 1)
    assert len(opened) == 1
    assert opened[0].autocommit
    assert "connect=" in repr(store)


def test_postgres_closes_what_it_opened_when_a_thread_ends_or_a_connection_dies(
    postgres_server: PostgresServer,
) -> None:
    import gc
    import warnings

    import psycopg

    opened: List[Any] = []

    def connect() -> Any:
        connection = psycopg.connect(postgres_server.url)
        opened.append(connection)
        return connection

    store = PostgresTokenStore(connect=connect, table_prefix="closing_")
    store.put("token:a", "x")
    worker = threading.Thread(target=store.get, args=("token:a",))
    worker.start()
    worker.join()
    assert len(opened) == 2
    assert opened[1].closed  # the worker's connection, closed as its thread ended
    assert not opened[0].closed  # this thread's, still in use
    opened[0].close()  # as if the server had dropped it: the next call opens another
    assert store.get("token:a") == ("x", 1)
    assert len(opened) == 3
    ours = [object.__repr__(connection) for connection in opened]  # as psycopg's warning names one
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store.close()
        del store
        gc.collect()  # may collect other tests' leftovers too: only warnings about ours count
    assert [str(w.message) for w in caught if any(name in str(w.message) for name in ours)] == []
    assert all(connection.closed for connection in opened)
