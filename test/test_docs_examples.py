"""Docs as tests: every ```python block of README.md and docs/*.md runs, unchanged, against a sandbox.

Each block runs as its own script (``python example.py``) in a fresh subprocess, in an empty
temporary directory, against a fresh :class:`~kenar_api_client.sandbox.Sandbox`, with::

    KENAR_BASE_URL=<sandbox URL>  KENAR_API_KEY=DEMO_API_KEY  KENAR_ACCESS_TOKEN=DEMO_ACCESS_TOKEN
    KENAR_IDENTIFICATION_KEY=DEMO_IDENTIFICATION_KEY  PORT=<a free port>
    KENAR_OAUTH_URL=<sandbox URL>  KENAR_APP_SLUG=DEMO_CLIENT_ID
    KENAR_CLIENT_SECRET=DEMO_CLIENT_SECRET  KENAR_REDIRECT_URI=DEMO_REDIRECT_URI

It must exit with status 0, print no traceback, and every API call it makes must succeed.
A marker on the line right before the fence changes that:

``<!-- not-run: <reason> -->``
    The block is not run (a Flask or Django snippet, ``match`` on Python 3.10...). The
    reason is required.
``<!-- run: expect-api-errors -->``
    The block shows error handling: the sandbox may answer some of its calls with errors.
``<!-- run: python3.10+ -->``
    The block uses syntax of Python 3.10 or later (``match``); on older versions it is skipped.
``<!-- run: webhook-receiver -->``
    The block serves webhook deliveries on ``$PORT`` until stopped (any WSGI or ASGI server,
    any framework the test extra installs). It is started, sent one delivery of each
    documented event type (and one unknown type) at ``/kenar/webhook`` with the demo
    identification key, each of which it must answer 200, then one with a wrong key, which
    it must answer 401, and then terminated.
``<!-- run: job-queue -->``
    A receiver that hands events to a job queue on Redis. A real ``redis-server`` is started
    for it (``REDIS_URL``); it is run as a webhook receiver, as above, but every verified
    delivery is sent twice; then ``python <block> worker --burst`` must process the queue,
    and every queue on that Redis must hold one finished job per distinct delivery and no
    failed one.

The two examples of Kenar's own API page (``../shared/seeds/EventsApi.md``) run as well, with
only ``import os`` prepended and, to stay offline, their hard-coded production host replaced
by the sandbox's URL. The terminal summary reports how many blocks ran and skipped.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from redis_server import RedisServer
from servers import reserved_port

from kenar_api_client.sandbox import (
    DEMO_ACCESS_TOKEN,
    DEMO_API_KEY,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_IDENTIFICATION_KEY,
    DEMO_REDIRECT_URI,
    DOCUMENTED_EVENT_TYPES,
    Delivery,
    Sandbox,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
SEED_PAGE = SHARED / "seeds" / "EventsApi.md"
# A safety net against a block that hangs, generous for a loaded machine: a block that ends
# (most take a second or two) ends the wait.
BLOCK_TIMEOUT = 300.0
RECEIVER_PATH = "/kenar/webhook"

#: Pages whose every python block must run (when the page exists).
MUST_RUN_PAGES = (
    "README.md",
    "docs/EventsApi.md",
    "docs/Configuration.md",
    "docs/Sandbox.md",
    "docs/Testing.md",
    "docs/OAuth.md",
    "docs/Subscriptions.md",
    "docs/Async.md",
)
MIN_RUNNABLE_BLOCKS = 10
# Blocks run in parallel: each mostly waits for its own subprocess.
PARALLEL_BLOCKS = max(2, min(4, os.cpu_count() or 2))

RUN_MODES = ("expect-api-errors", "webhook-receiver", "job-queue", "python3.10+")
_FENCE_OPEN = re.compile(r"^(?P<indent>\s*)```python\s*$")
_FENCE_CLOSE = re.compile(r"^\s*```\s*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<kind>not-run|run)\b(?P<rest>.*?)-->\s*$")

# -- collecting blocks ----------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One ```python block of a Markdown page."""

    page: str  # relative to the repository, e.g. "docs/Webhooks.md"
    line: int  # of the opening fence
    code: str
    marker: Optional[Tuple[str, str]]  # ("not-run", reason) or ("run", mode)

    @property
    def id(self) -> str:
        return f"{self.page}:L{self.line}"

    @property
    def skipped(self) -> bool:
        return self.marker is not None and self.marker[0] == "not-run"

    @property
    def mode(self) -> str:
        return self.marker[1] if self.marker is not None and self.marker[0] == "run" else "run"

    def marker_problem(self) -> Optional[str]:
        """Why the marker is invalid, or None."""
        if self.marker is None:
            return None
        kind, value = self.marker
        if kind == "not-run" and not value:
            return "<!-- not-run: ... --> needs a reason after the colon"
        if kind == "run" and value not in RUN_MODES:
            return f"<!-- run: {value} --> is not one of: {', '.join(RUN_MODES)}"
        return None


def runs_here(block: Block) -> bool:
    """Whether this interpreter can run ``block``."""
    return not block.skipped and (block.mode != "python3.10+" or sys.version_info >= (3, 10))


def _marker(line: str) -> Optional[Tuple[str, str]]:
    match = _MARKER.match(line)
    if match is None:
        return None
    rest = match.group("rest").strip()
    return match.group("kind"), rest[1:].strip() if rest.startswith(":") else rest


def collect_blocks(path: Path, page: str) -> List[Block]:
    """Every ```python block of ``path`` with the marker on the line right before it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: List[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE_OPEN.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent = len(opening.group("indent"))
        end = index + 1
        while end < len(lines) and not _FENCE_CLOSE.match(lines[end]):
            end += 1
        code = "\n".join(
            line[indent:] if line[:indent].isspace() else line for line in lines[index + 1 : end]
        )
        marker = _marker(lines[index - 1]) if index > 0 else None
        blocks.append(Block(page, index + 1, code + "\n", marker))
        index = end + 1
    return blocks


def documented_pages() -> List[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


BLOCKS = [
    block for page in documented_pages() for block in collect_blocks(page, page.relative_to(ROOT).as_posix())
]
SEED_BLOCKS = collect_blocks(SEED_PAGE, "seeds/EventsApi.md") if SEED_PAGE.exists() else []


# -- reporting ------------------------------------------------------------------------------

OUTCOMES: Dict[str, str] = {}  # block id -> "ran" / "skipped: <reason>"


class _SummaryPlugin:
    """Adds a "docs examples" section to pytest's terminal summary."""

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not OUTCOMES:
            return
        docs = {k: v for k, v in OUTCOMES.items() if not k.startswith("seeds/")}
        seeds = [k for k, v in OUTCOMES.items() if k.startswith("seeds/") and v == "ran"]
        skipped = {k: v for k, v in docs.items() if v != "ran"}
        write = terminalreporter.write_line
        terminalreporter.write_sep("-", "docs examples")
        write(
            f"README.md and docs/*.md: {len(docs) - len(skipped)} python blocks ran, {len(skipped)} skipped; "
            f"Kenar's API page: {len(seeds)} ran"
        )
        for block_id, outcome in sorted(skipped.items()):
            write(f"  skipped {block_id}: {outcome}")


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest) -> None:
    plugin_manager = request.config.pluginmanager
    if not plugin_manager.has_plugin("docs-examples-summary"):
        plugin_manager.register(_SummaryPlugin(), "docs-examples-summary")


# -- running blocks -------------------------------------------------------------------------


def block_env(sandbox: Sandbox, port: int) -> Dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("KENAR_") and k not in ("API_KEY", "ACCESS_TOKEN")
    }
    env.update(
        {
            "KENAR_BASE_URL": sandbox.url,
            "KENAR_API_KEY": DEMO_API_KEY,
            "KENAR_ACCESS_TOKEN": DEMO_ACCESS_TOKEN,
            "KENAR_IDENTIFICATION_KEY": DEMO_IDENTIFICATION_KEY,
            "KENAR_OAUTH_URL": sandbox.oauth_url,
            "KENAR_APP_SLUG": DEMO_CLIENT_ID,
            "KENAR_CLIENT_SECRET": DEMO_CLIENT_SECRET,
            "KENAR_REDIRECT_URI": DEMO_REDIRECT_URI,
            "PORT": str(port),
            "PYTHONIOENCODING": "utf-8",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def write_script(workdir: Path, code: str) -> Path:
    script = workdir / "example.py"
    script.write_text(code, encoding="utf-8")
    return script


def run_script(script: Path, env: Dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=BLOCK_TIMEOUT,
    )


def check_clean_exit(block_id: str, returncode: Optional[int], output: str) -> None:
    assert returncode == 0, f"{block_id} exited with {returncode}:\n{output}"
    assert "Traceback (most recent call last)" not in output, f"{block_id} printed a traceback:\n{output}"


def run_receiver(
    script: Path, env: Dict[str, str], sandbox: Sandbox, port: int, twice: bool = False
) -> Tuple[Optional[int], str, List[Delivery]]:
    """Start a serving block, deliver every event type to it (``twice``: each again), stop it.

    Its status, its output, and the deliveries: the verified ones, then the refused one.
    """
    log_path = script.parent / "receiver.log"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, str(script)], cwd=script.parent, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(port, process, log_path)
            sandbox.set_webhook(f"http://127.0.0.1:{port}{RECEIVER_PATH}", DEMO_IDENTIFICATION_KEY)
            deliveries = [sandbox.trigger(t, require_subscription=False) for t in DOCUMENTED_EVENT_TYPES]
            deliveries.append(sandbox.trigger("SOMETHING_NEW", x=1))
            if twice:  # each body again, as a redelivery would be
                deliveries += [sandbox.deliver(delivery.body) for delivery in list(deliveries)]
            sandbox.set_webhook(f"http://127.0.0.1:{port}{RECEIVER_PATH}", "not-the-identification-key")
            deliveries.append(sandbox.trigger("USER_ACCESS_REVOCATION"))
        finally:
            process.terminate()
            process.wait(timeout=10)
    # Ended by our SIGTERM: that is the expected end, not a failure.
    status = 0 if process.returncode == -signal.SIGTERM else process.returncode
    return status, log_path.read_text(encoding="utf-8"), deliveries


def run_worker(
    script: Path, env: Dict[str, str], redis_url: str, distinct: int
) -> Tuple[Optional[int], str, List[Tuple[str, Optional[int], Optional[str]]]]:
    """``python <block> worker --burst``, then what the queues say: a finished job per event, none failed."""
    from redis import Redis
    from rq import Queue
    from rq.registry import FailedJobRegistry, FinishedJobRegistry

    result = subprocess.run(
        [sys.executable, str(script), "worker", "--burst"],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )
    connection = Redis.from_url(redis_url)
    queues = Queue.all(connection=connection)
    finished = sum(len(FinishedJobRegistry(queue=queue)) for queue in queues)
    failed = sum(len(FailedJobRegistry(queue=queue)) for queue in queues)
    waiting = sum(len(queue) for queue in queues)
    connection.close()
    problems: List[Tuple[str, Optional[int], Optional[str]]] = []
    if (finished, failed, waiting) != (distinct, 0, 0):
        problems.append(
            (
                "job queue",
                None,
                f"{finished} finished, {failed} failed, {waiting} waiting; expected {distinct} finished",
            )
        )
    return result.returncode, result.stdout + result.stderr, problems


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 120.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the receiver exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"the receiver did not listen on port {port} within {timeout} s")


# -- the tests ------------------------------------------------------------------------------


@dataclass
class Run:
    """What happened when a block ran against its sandbox."""

    returncode: Optional[int]
    output: str
    api_errors: List[Tuple[str, str, int, Optional[str]]]  # method, path, status, message
    failed_deliveries: List[Tuple[str, Optional[int], Optional[str]]]  # event type, status, error


def run_block(block: Block, workdir: Path) -> Run:
    """Run one block, unchanged, against a fresh sandbox of its own."""
    with Sandbox() as sandbox:
        port = reserved_port()
        env = block_env(sandbox, port)
        script = write_script(workdir, block.code)
        failed_deliveries: List[Tuple[str, Optional[int], Optional[str]]] = []
        if block.mode in ("webhook-receiver", "job-queue"):
            redis = RedisServer() if block.mode == "job-queue" else None
            try:
                if redis is not None:
                    env["REDIS_URL"] = redis.url
                returncode, output, deliveries = run_receiver(
                    script, env, sandbox, port, twice=redis is not None
                )
                *verified, refused = deliveries
                failed_deliveries = [(d.event_type, d.status, d.error) for d in verified if d.status != 200]
                if refused.status != 401:
                    failed_deliveries.append(
                        ("wrong identification key", refused.status, "not refused with 401")
                    )
                if redis is not None and returncode == 0:
                    returncode, output, problems = run_worker(script, env, redis.url, len(verified) // 2)
                    failed_deliveries += problems
            finally:
                if redis is not None:
                    redis.stop()
        else:
            result = run_script(script, env)
            returncode, output = result.returncode, result.stdout + result.stderr
        api_errors = [(r.method, r.path, r.status, r.message) for r in sandbox.requests if r.status != 200]
    return Run(returncode, output, api_errors, failed_deliveries)


# Runs that have finished, by block id: the module's tests may come in several stretches
# (random order, xdist), and each stretch sets block_runs up again; a block runs only once.
_FINISHED_RUNS: Dict[str, Run] = {}


@pytest.fixture(scope="module")
def block_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Dict[str, Future[Run]]]:
    """Start every selected runnable block up front, a few at a time: most of the time is spent
    waiting for subprocesses, so the tests below only collect the results. Every block has
    ended when the module's tests do: none is left running beside other modules' tests."""
    selected = [
        item.callspec.params["block"]
        for item in request.session.items
        if isinstance(getattr(item, "callspec", None) and item.callspec.params.get("block"), Block)
    ]
    runnable = [block for block in selected if runs_here(block) and block.marker_problem() is None]
    runs: Dict[str, Future[Run]] = {}
    with ThreadPoolExecutor(max_workers=PARALLEL_BLOCKS) as pool:
        for block in runnable:
            if block.id in _FINISHED_RUNS:
                runs[block.id] = Future()
                runs[block.id].set_result(_FINISHED_RUNS[block.id])
            else:
                runs[block.id] = pool.submit(run_block, block, tmp_path_factory.mktemp("doc-block"))
        yield runs
    for block_id, future in runs.items():
        if future.exception() is None:
            _FINISHED_RUNS[block_id] = future.result()


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_doc_example(block: Block, block_runs: Dict[str, Future[Run]]) -> None:
    problem = block.marker_problem()
    assert problem is None, f"{block.id}: {problem}"
    if block.skipped:
        assert block.marker is not None
        OUTCOMES[block.id] = f"not-run: {block.marker[1]}"
        pytest.skip(f"marked not-run: {block.marker[1]}")

    if not runs_here(block):
        OUTCOMES[block.id] = "skipped: needs Python 3.10"
        pytest.skip("needs Python 3.10 or later")
    run = block_runs[block.id].result()

    check_clean_exit(block.id, run.returncode, run.output)
    assert run.failed_deliveries == [], (
        f"{block.id} did not answer 200 to every delivery and 401 to a wrong key: "
        f"{run.failed_deliveries}\n{run.output}"
    )
    if block.mode != "expect-api-errors":
        assert run.api_errors == [], (
            f"{block.id}: the sandbox answered with errors (mark the block "
            f"<!-- run: expect-api-errors --> if that is its point): {run.api_errors}\n{run.output}"
        )
    OUTCOMES[block.id] = "ran"


SEED_EXPECTATIONS = {
    # What each generated example must print and which path it must reach, run as written.
    "events_register_event_subscription": (
        "Exception when calling EventsApi->events_register_event_subscription: (400) Bad Request: "
        "INVALID_ARGUMENT (3): event_type is required",
        "/v1/open-platform/events/subscriptions",
    ),
    # target_type='target_type_example' is refused by pydantic before anything is sent.
    "events_send_event": (
        "Exception when calling EventsApi->events_send_event: "
        "1 validation error for EventsApi.events_send_event\ntarget_type\n  Input should be 'USER' or 'POST'",
        None,
    ),
}


def _seed_operation(block: Block) -> str:
    return next(name for name in SEED_EXPECTATIONS if f"api_instance.{name}(" in block.code)


@pytest.mark.skipif(not SEED_BLOCKS, reason=f"Kenar's API page is not at {SEED_PAGE}")
@pytest.mark.parametrize("index", range(len(SEED_BLOCKS) or 1))
def test_kenar_api_page_examples(index: int, sandbox: Sandbox, tmp_path: Path) -> None:
    block = SEED_BLOCKS[index]
    expected_output, expected_path = SEED_EXPECTATIONS[_seed_operation(block)]
    env = block_env(sandbox, reserved_port())
    env.update({"API_KEY": DEMO_API_KEY, "ACCESS_TOKEN": DEMO_ACCESS_TOKEN})
    production_host = 'host = "https://open-api.divar.ir"'
    assert block.code.count(production_host) == 1
    code = "import os\n" + block.code.replace(production_host, f'host = "{sandbox.url}"')

    result = run_script(write_script(tmp_path, code), env)

    check_clean_exit(block.id, result.returncode, result.stdout + result.stderr)
    assert expected_output in result.stdout
    assert [r.path for r in sandbox.requests] == ([expected_path] if expected_path else [])
    OUTCOMES[block.id] = "ran"


def test_markers_and_minimum_coverage() -> None:
    problems = [f"{block.id}: {block.marker_problem()}" for block in BLOCKS if block.marker_problem()]
    assert problems == []
    must_run = [block.id for block in BLOCKS if block.skipped and block.page in MUST_RUN_PAGES]
    assert must_run == [], f"these pages must run every example: {must_run}"
    runnable = [block for block in BLOCKS if not block.skipped]
    assert len(runnable) >= MIN_RUNNABLE_BLOCKS
    assert sum(block.page == "README.md" for block in runnable) >= 2
    webhooks = [block for block in BLOCKS if block.page == "docs/Webhooks.md"]
    if webhooks:
        assert any(block.mode == "webhook-receiver" for block in webhooks), (
            "docs/Webhooks.md: mark its complete receiver example <!-- run: webhook-receiver -->"
        )
    print(
        f"\ndocs examples: {len(runnable)} of {len(BLOCKS)} python blocks run "
        f"({len(BLOCKS) - len(runnable)} not-run), plus {len(SEED_BLOCKS)} from Kenar's API page"
    )
