"""The token manager's background jobs: run at their time, one per key at a time, threads that
end when idle."""

from __future__ import annotations

import threading
import time
from typing import Iterator, List

import pytest
from oauth_helpers import wait_until

from kenar_api_client.oauth import _background
from kenar_api_client.oauth._background import BackgroundTasks


@pytest.fixture
def tasks() -> Iterator[BackgroundTasks]:
    running = BackgroundTasks(2, f"test-tasks-{id(object())}")
    yield running
    running.close()


def _threads_named(prefix: str) -> List[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith(prefix)]


def test_jobs_run_once_each_in_the_order_of_their_times() -> None:
    tasks = BackgroundTasks(1, f"ordered-tasks-{id(object())}")  # one thread: the order is the heap's
    try:
        ran: List[str] = []
        done = threading.Event()
        now = time.monotonic()
        tasks.schedule("b", now + 0.2, lambda: ran.append("b"))
        tasks.schedule("a", now, lambda: ran.append("a"))
        tasks.schedule("a", now + 30, lambda: ran.append("a-later"))  # one waits per key: the earlier
        tasks.schedule("c", now + 0.3, lambda: (ran.append("c"), done.set()))
        assert done.wait(30)
        assert ran == ["a", "b", "c"]
        wait_until(lambda: not tasks.busy("c"), "the last job to end")
        assert not tasks.busy("a")
    finally:
        tasks.close()


def test_one_job_per_key_runs_at_a_time(tasks: BackgroundTasks) -> None:
    release = threading.Event()
    active: List[int] = []
    overlaps: List[int] = []
    finished = threading.Semaphore(0)

    def job() -> None:
        active.append(1)
        overlaps.append(len(active))
        release.wait(30)
        active.pop()
        finished.release()

    tasks.schedule("user", time.monotonic(), job)
    wait_until(lambda: active, "the first job to start")
    tasks.schedule("user", time.monotonic(), job)  # due while the first runs: it waits for it
    assert tasks.busy("user")
    release.set()
    assert finished.acquire(timeout=30)
    assert finished.acquire(timeout=30)
    assert overlaps == [1, 1]


def test_a_cancelled_job_does_not_run_and_a_failing_one_stops_nothing(tasks: BackgroundTasks) -> None:
    ran = threading.Event()
    tasks.schedule("gone", time.monotonic() + 0.1, lambda: pytest.fail("cancelled, yet it ran"))
    tasks.cancel("gone")
    tasks.schedule("broken", time.monotonic(), lambda: 1 / 0)  # type: ignore[func-returns-value]
    tasks.schedule("fine", time.monotonic() + 0.2, ran.set)
    assert ran.wait(30)
    assert not tasks.busy("gone")


def test_idle_threads_end_and_new_work_starts_them_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_background, "IDLE_SECONDS", 0.2)
    name = f"idle-tasks-{id(object())}"
    tasks = BackgroundTasks(2, name)
    try:
        first = threading.Event()
        tasks.schedule("a", time.monotonic(), first.set)
        assert first.wait(30)
        wait_until(lambda: not _threads_named(name), "the idle thread to end")
        second = threading.Event()
        tasks.schedule("a", time.monotonic(), second.set)
        assert second.wait(30)
    finally:
        tasks.close()


def test_after_close_nothing_is_scheduled(tasks: BackgroundTasks) -> None:
    tasks.close()
    tasks.schedule("a", time.monotonic(), lambda: pytest.fail("ran after close"))
    assert not tasks.busy("a")
