"""The token stores keep one contract: versioned compare-and-set, prefix listing and leases.

Each test runs against the in-memory store, a SQLite file and a real redis-server.
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
from typing import Iterator

import pytest
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


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TokenStore:
    if request.param == "memory":
        return MemoryTokenStore()
    if request.param == "sqlite":
        return SQLiteTokenStore(tmp_path / "tokens.sqlite3")
    server = request.getfixturevalue("redis_server")
    return RedisTokenStore(url=server.url, prefix=f"test-{os.urandom(4).hex()}:")


def test_the_stores_satisfy_the_protocol(store: TokenStore) -> None:
    assert isinstance(store, TokenStore)


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


def test_compare_and_set_loses_no_update_across_processes_sqlite(tmp_path: Path) -> None:
    path = str(tmp_path / "tokens.sqlite3")
    SQLiteTokenStore(path)
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_child_increment_sqlite, args=(path, 30)) for _ in range(3)]
    for process in processes:
        process.start()
    _increment(SQLiteTokenStore(path), "counter", 30)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    stored = SQLiteTokenStore(path).get("counter")
    assert stored is not None
    assert json.loads(stored.value) == 120


def test_compare_and_set_loses_no_update_across_processes_redis(redis_server: RedisServer) -> None:
    prefix = f"procs-{os.urandom(4).hex()}:"
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_child_increment_redis, args=(redis_server.url, prefix, 30)) for _ in range(3)
    ]
    for process in processes:
        process.start()
    _increment(RedisTokenStore(url=redis_server.url, prefix=prefix), "counter", 30)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    stored = RedisTokenStore(url=redis_server.url, prefix=prefix).get("counter")
    assert stored is not None
    assert json.loads(stored.value) == 120


def _child_increment_sqlite(path: str, times: int) -> None:
    _increment(SQLiteTokenStore(path), "counter", times)


def _child_increment_redis(url: str, prefix: str, times: int) -> None:
    _increment(RedisTokenStore(url=url, prefix=prefix), "counter", times)


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
