"""``SubscriptionKeeper``: keeps each user's Events subscriptions registered across token refreshes.

A Kenar subscription lives only as long as the access token it was registered with. The
keeper remembers the subscriptions the app wants for each user (in the token store) and
registers each again whenever that user's token changed, so deliveries never stop. The
store's due index says which users are due; a round claims them in batches and renews
them concurrently on a bounded pool of threads (the decisions are in ``renewal``).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import queue
import socket
import threading
import time
import uuid
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Callable, Dict, Generator, List, Mapping, Optional, Set, Tuple, Union

from typing_extensions import Literal

from kenar_api_client._async_libraries import EXTRA_OF, AsyncLibrary
from kenar_api_client.api_client import ApiClient
from kenar_api_client.exceptions import ApiValueError
from kenar_api_client.oauth.kept import (
    CONSENT_REQUIRED,
    FAILED,
    PENDING,
    REGISTERED,
    STATES,
    SUBSCRIPTIONS_KEY_PREFIX,
    KeptSubscription,
    RenewalReport,
    apply,
    declaration,
    decode,
    encode,
    logger,
    one_line,
)
from kenar_api_client.oauth.manager import TokenManager
from kenar_api_client.oauth.renewal import (
    ClaimLost,
    ReadSubscriptions,
    ReadToken,
    Record,
    RefreshToken,
    Register,
    RenewalPolicy,
    Step,
    UserRound,
    drive,
    drive_async,
    user_round,
)
from kenar_api_client.oauth.schedule import RENEW_LEASE_PREFIX, due_index
from kenar_api_client.oauth.store import DueIndex, DueSummary
from kenar_api_client.oauth.token import OAuthToken
from kenar_api_client.oauth.user_keys import check_user_key

if TYPE_CHECKING:
    from kenar_api_client.async_api_client import AsyncApiClient

__all__ = [
    "CONSENT_REQUIRED",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_INTERVAL",
    "FAILED",
    "PENDING",
    "REGISTERED",
    "RENEW_LEASE_PREFIX",
    "ROUNDS_KEY",
    "SUBSCRIPTIONS_KEY_PREFIX",
    "KeeperStatus",
    "KeptSubscription",
    "RenewalReport",
    "SubscriptionKeeper",
]

DEFAULT_INTERVAL = 60.0
#: Users renewed at once by one process: their requests share the API client's pool.
DEFAULT_CONCURRENCY = 16
#: The same on an event loop (``transport=``): a user waiting on the network costs no thread.
DEFAULT_LOOP_CONCURRENCY = 64
#: How long a claimed user stays with its keeper without news (extended as it goes).
DEFAULT_CLAIM_TTL = 120.0
#: Where rounds leave their figures for ``kenar-events subscriptions status``.
ROUNDS_KEY = "keeper:rounds"
_ROUNDS_KEPT_FOR = 3600.0
#: An idle round is recorded at most this often (a busy one always): "alive, nothing due".
_IDLE_RECORD_EVERY = 600.0

RoundListener = Callable[[RenewalReport], None]
#: The keeper and user whose round runs in this thread or task: its own refreshes are not news.
_RENEWING: contextvars.ContextVar[Optional[Tuple[int, str]]] = contextvars.ContextVar(
    "kenar_keeper_renewing", default=None
)


class KeeperStatus:
    """Where every kept subscription stands, for operators (``kenar-events subscriptions status``).

    ``users``: users with kept subscriptions; ``states``: subscriptions per state;
    ``due``: users due now; ``lag``: how overdue the most overdue of them is (seconds, 0
    if none); ``rounds``: the latest round of each keeper process in the last hour, by
    process (``host:pid``), as :meth:`RenewalReport.counts` plus ``at`` (when it ended).
    """

    def __init__(
        self, users: int, states: Dict[str, int], due: int, lag: float, rounds: Dict[str, Dict[str, Any]]
    ) -> None:
        self.users = users
        self.states = states
        self.due = due
        self.lag = lag
        self.rounds = rounds

    def __repr__(self) -> str:
        return f"KeeperStatus(users={self.users}, states={self.states!r}, due={self.due}, lag={self.lag:.1f})"


class SubscriptionKeeper:
    """Registers the subscriptions an app wants for each user, and again after every token refresh.

    Declare what you want with :meth:`keep`; then either call :meth:`renew_due` from cron
    (every minute) or :meth:`start` a background thread. Any number of processes and
    machines may run keepers on the same store: each round claims the due users in the
    store, so each user's work is done by one of them. ``api_client`` carries the API key
    and host (its access token is not used); give its configuration a
    ``connection_pool_maxsize`` of at least ``concurrency``.

    ``concurrency``: users renewed at once (default 16 threads; 1 renews them one by one).
    ``transport``: how rounds send. ``"aiohttp"`` (or ``"httpx"``) runs each round on an
    event loop in a thread of its own: every token refresh and registration sent through that
    library, 64 users at once by default, for a third of the CPU per user of threads
    (docs/Subscriptions.md, "Many users"). ``"threads"`` (or None) renews on a pool of threads
    over urllib3. ``"auto"``, the default: aiohttp when it is installed (the ``aiohttp``
    extra), else threads.
    ``claim_ttl``: seconds a claimed user stays with this keeper without news; a keeper
    that dies leaves its users to the others after this. ``jitter``, ``retry_delay`` and
    ``revisit``: see :class:`~kenar_api_client.oauth.renewal.RenewalPolicy`. ``on_round``
    is called with each round's :class:`RenewalReport` (also logged, with its figures as
    ``kenar_*`` fields of the log record).
    """

    def __init__(
        self,
        tokens: TokenManager,
        api_client: Optional[ApiClient] = None,
        *,
        concurrency: Optional[int] = None,
        transport: Union[AsyncLibrary, Literal["auto", "threads"], None] = "auto",
        claim_ttl: float = DEFAULT_CLAIM_TTL,
        jitter: float = 0.1,
        retry_delay: float = 30.0,
        revisit: float = 900.0,
        on_round: Optional[RoundListener] = None,
    ) -> None:
        if not isinstance(tokens, TokenManager):
            raise ApiValueError(f"tokens must be a TokenManager, not {type(tokens).__name__}")
        library = _loop_library(transport)
        if concurrency is None:
            concurrency = DEFAULT_CONCURRENCY if library is None else DEFAULT_LOOP_CONCURRENCY
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not 1 <= concurrency <= 1024:
            raise ApiValueError(f"concurrency must be a whole number from 1 to 1024, got {concurrency!r}")
        if (
            isinstance(claim_ttl, bool)
            or not isinstance(claim_ttl, (int, float))
            or not 1 <= claim_ttl <= 3600
        ):
            raise ApiValueError(f"claim_ttl must be a number of seconds from 1 to 3600, got {claim_ttl!r}")
        if on_round is not None and not callable(on_round):
            raise ApiValueError("on_round must be a function taking the round's RenewalReport")
        self.tokens = tokens
        self.api_client: ApiClient = api_client if api_client is not None else ApiClient.get_default()
        self.concurrency: int = concurrency
        #: The library rounds are sent with on an event loop; None: on threads.
        self.transport: Optional[AsyncLibrary] = library
        self.claim_ttl: float = float(claim_ttl)
        self.policy: RenewalPolicy = RenewalPolicy(
            leeway=tokens.leeway, jitter=jitter, retry_delay=retry_delay, revisit=revisit
        )
        self.on_round: Optional[RoundListener] = on_round
        self._indexed = isinstance(tokens.store, DueIndex)
        pool = getattr(getattr(self.api_client, "configuration", None), "connection_pool_maxsize", None)
        if library is None and isinstance(pool, int) and pool < concurrency:
            logger.warning(
                "the API client's pool holds %d connections: at most %d of the keeper's %d renewals "
                "send at once (raise Configuration.connection_pool_maxsize to %d)",
                pool,
                pool,
                concurrency,
                concurrency,
            )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._recorded_at: Optional[float] = None  # monotonic time of the last round recorded
        _listen_for_refreshes(tokens, self)

    def __repr__(self) -> str:
        running = "running" if self.running else "stopped"
        on = f", transport={self.transport!r}" if self.transport is not None else ""
        return f"SubscriptionKeeper({running}, tokens={self.tokens!r}, concurrency={self.concurrency}{on})"

    # -- what to keep ---------------------------------------------------------------------

    def keep(self, user_key: str, request: Union[Mapping[str, Any], Any]) -> KeptSubscription:
        """Keep ``request`` (an ``EventsRegisterEventSubscriptionRequest`` or its dict) registered.

        Declaring the same event type and resource again replaces the metadata. It is
        registered at the next round (at once when the background thread runs).
        """
        wanted = declaration(user_key, request)

        def change(subscriptions: Dict[str, KeptSubscription]) -> None:
            current = subscriptions.get(wanted.key)
            if current is None or current.metadata != wanted.metadata or current.state == FAILED:
                subscriptions[wanted.key] = wanted

        # Due first, then declared: a crash in between leaves a due user with nothing to do.
        self._index().schedule(user_key, self.tokens.clock())
        kept = self._update(user_key, change)[wanted.key]
        self._wake.set()
        return kept

    def drop(self, user_key: str, event_type: str, event_resource_id: str = "") -> None:
        """Stop keeping a subscription; Kenar's lapses when the token it was made with expires."""
        check_user_key(user_key)
        self._update(
            user_key, lambda subscriptions: subscriptions.pop(f"{event_type}|{event_resource_id}", None)
        )

    def status(self, user_key: Optional[str] = None) -> List[KeptSubscription]:
        """The kept subscriptions of ``user_key`` (default: of every user) and their states."""
        users = [check_user_key(user_key)] if user_key is not None else self.users()
        return [s for user in users for s in self._load(user)[0].values()]

    def users(self) -> List[str]:
        """Every user with kept subscriptions."""
        prefix = SUBSCRIPTIONS_KEY_PREFIX
        return sorted(key[len(prefix) :] for key in self.tokens.store.keys(prefix))

    def summary(self) -> KeeperStatus:
        """Where everything stands: users, subscriptions per state, what is due and how late, rounds.

        Reads every user's subscriptions (a pass over the store): for operators, not for rounds.
        """
        kept = self.status()
        now = self.tokens.clock()
        due: DueSummary = self._index().due_summary(now)
        lag = max(0.0, now - due.oldest_due_at) if due.oldest_due_at is not None else 0.0
        states = {state: sum(1 for s in kept if s.state == state) for state in STATES}
        return KeeperStatus(len({s.user_key for s in kept}), states, due.due, lag, self._rounds()[0])

    def forget_user(self, user_key: str) -> None:
        """Forget ``user_key``'s tokens and subscriptions (they revoked the app's access)."""
        self.tokens.forget(user_key)
        self.tokens.store.delete(SUBSCRIPTIONS_KEY_PREFIX + user_key)
        self._index().unschedule(user_key)
        logger.info("forgot the tokens and subscriptions of user %r", user_key)

    def handle_event(self, event: Any) -> List[str]:
        """Act on a webhook event: ``USER_ACCESS_REVOCATION`` forgets that user.

        The user is found by key (when Divar user ids are the keys) or by the
        ``divar_user_id`` saved with their token. Returns the user keys forgotten; other
        event types are ignored.
        """
        if getattr(event, "type", None) != "USER_ACCESS_REVOCATION":
            return []
        revocation = getattr(event, "user_access_revocation", None)
        divar_user_id = getattr(revocation, "user_id", None)
        if not isinstance(divar_user_id, str) or not divar_user_id:
            return []
        known = set(self.users()) | set(self.tokens.users())
        forgotten = sorted(
            key for key in known if key == divar_user_id or self.tokens.divar_user_id(key) == divar_user_id
        )
        for user_key in forgotten:
            self.forget_user(user_key)
        return forgotten

    def reindex(self) -> int:
        """Make every user with kept subscriptions due now; returns how many.

        For subscriptions declared before the store had a due index, or written into the
        store by other means. Reads every key once.
        """
        index, now = self._index(), self.tokens.clock()
        users = self.users()
        for user_key in users:
            index.schedule(user_key, now)
        return len(users)

    # -- renewing ---------------------------------------------------------------------------

    def renew_due(self) -> RenewalReport:
        """One round: renew every user due now, ``concurrency`` at a time; for cron or the thread.

        Users are claimed from the store in batches as threads free up, so keepers in other
        processes take the others. A user's failure (even an unexpected exception) is
        recorded and retried later; it never stops the round.
        """
        return self._round(threading.Event())

    def _round(self, stop: threading.Event) -> RenewalReport:
        """A round that claims no more users once ``stop`` is set."""
        started, owner = time.monotonic(), _owner()
        now = self.tokens.clock()
        index = self._index()
        report = RenewalReport()
        if self.transport is not None:
            first = index.claim_due(now, owner, self.claim_ttl, self.concurrency)
            if first:  # an idle round makes no client (their TLS contexts cost milliseconds)
                try:
                    clients = self._loop_clients(self.transport)
                except Exception:  # a broken library: the users go back as they were, still due
                    for due in first:
                        with contextlib.suppress(Exception):
                            index.release(due.name, owner, due.due_at)
                    raise
                _run_on_own_loop(
                    lambda: self._round_on_loop(stop, index, owner, now, first, report, clients), stop
                )
        else:
            self._round_on_threads(stop, index, owner, now, report)
        report.duration = time.monotonic() - started
        self._round_done(report, owner)
        return report

    def _round_on_threads(
        self, stop: threading.Event, index: DueIndex, owner: str, now: float, report: RenewalReport
    ) -> None:
        pool: Optional[ThreadPoolExecutor] = None
        finished: queue.SimpleQueue[UserRound] = queue.SimpleQueue()
        running = 0
        more = True
        try:
            while True:
                free = self.concurrency - running
                # Claim in batches of at least half the threads: fewer store round trips.
                if more and not stop.is_set() and (free * 2 >= self.concurrency or not running):
                    claimed = index.claim_due(now, owner, self.claim_ttl, free)
                    more = len(claimed) == free
                    taken_up = self.tokens.clock()
                    for due in claimed:
                        report.lag = max(report.lag, taken_up - due.due_at)
                        if self.concurrency == 1:  # in this thread, one after another
                            self._file(report, self._renew_claimed(index, due.name, owner))
                            continue
                        if pool is None:
                            pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="kenar-keeper")
                        pool.submit(self._renew_into, finished, index, due.name, owner)
                        running += 1
                if not running:
                    if more and self.concurrency == 1 and not stop.is_set():
                        continue
                    break
                self._file(report, finished.get())
                running -= 1
        finally:
            if pool is not None:
                pool.shutdown(wait=True)

    async def _round_on_loop(
        self,
        stop: threading.Event,
        index: DueIndex,
        owner: str,
        now: float,
        claimed: List[Any],
        report: RenewalReport,
        clients: Tuple[AsyncApiClient, AsyncApiClient],
    ) -> None:
        """The round on an event loop: a task per claimed user, ``concurrency`` at once."""
        import asyncio

        loop = asyncio.get_running_loop()
        finished: asyncio.Queue[UserRound] = asyncio.Queue()

        async def renew(user_key: str) -> None:
            try:
                result = await self._renew_claimed_async(index, user_key, owner, clients)
            except Exception as error:  # never lose the count: the round waits for every user
                result = UserRound(user_key, error=one_line(f"{type(error).__name__}: {error}"))
            finished.put_nowait(result)

        tasks: Set[asyncio.Task[None]] = set()  # held until done: the loop keeps only weak references
        running = 0  # users whose result is not in yet
        more = len(claimed) == self.concurrency
        failure: Optional[Exception] = None
        try:
            while True:
                taken_up = self.tokens.clock()
                for due in claimed:
                    report.lag = max(report.lag, taken_up - due.due_at)
                    task = loop.create_task(renew(due.name))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                    running += 1
                claimed = []
                if not running:
                    break
                self._file(report, await finished.get())
                running -= 1
                free = self.concurrency - running
                # Claim in batches of at least half the concurrency: fewer store round trips.
                if more and not stop.is_set() and free * 2 >= self.concurrency:
                    try:
                        claimed = index.claim_due(now, owner, self.claim_ttl, free)
                    except Exception as error:  # as on threads: the users under way finish first
                        failure, more = error, False
                    else:
                        more = len(claimed) == free
        finally:
            if tasks:  # cut short (cancelled, a bug): as on threads, the users under way finish first
                await asyncio.gather(*tasks, return_exceptions=True)
            for client in clients:
                await client.close()
        if failure is not None:
            raise failure

    def _loop_clients(self, library: AsyncLibrary) -> Tuple[AsyncApiClient, AsyncApiClient]:
        """A round's two async clients: Kenar's API (the API client's settings), the token endpoint
        (the OAuth client's TLS, proxy and answer cap)."""
        from kenar_api_client.async_api_client import AsyncApiClient

        limit = self.concurrency * 2
        api = AsyncApiClient(self.api_client.configuration, transport=library, max_connections=limit)
        api.default_headers = dict(self.api_client.default_headers)
        api.cookie = self.api_client.cookie
        oauth = AsyncApiClient(
            self.tokens.oauth.async_configuration(), transport=library, max_connections=limit
        )
        return api, oauth

    def _renew_into(
        self, finished: queue.SimpleQueue[UserRound], index: DueIndex, user_key: str, owner: str
    ) -> None:
        """``_renew_claimed`` on a pool thread, its result handed back through ``finished``."""
        try:
            result = self._renew_claimed(index, user_key, owner)
        except BaseException as error:  # never lose the count: the round waits for every user
            result = UserRound(user_key, error=one_line(f"{type(error).__name__}: {error}"))
        finished.put(result)

    def renew_user(self, user_key: str, *, wait: float = 0.0) -> RenewalReport:
        """Renew ``user_key`` now, due or not; a report of what was done.

        If another keeper (this process's background thread, or another process) is
        renewing the user at this moment, nothing is done and the report's ``busy`` lists
        the user, unless ``wait`` (seconds) lets this call wait for that keeper to finish
        first; it then renews what is still due (often nothing: the other keeper did it).
        """
        if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 <= wait <= 3600:
            raise ApiValueError(f"wait must be a number of seconds from 0 to 3600, got {wait!r}")
        check_user_key(user_key)
        started, owner = time.monotonic(), _owner()
        index = self._index()
        report = RenewalReport()
        pause = 0.01
        while not index.claim(user_key, owner, self.tokens.clock(), self.claim_ttl):
            if time.monotonic() + pause > started + wait:
                report.busy.append(user_key)
                logger.info("user %r is being renewed by another keeper; not renewing it now", user_key)
                return report
            time.sleep(pause)
            pause = min(0.25, pause * 2)
        self._file(report, self._renew_claimed(index, user_key, owner))
        report.duration = time.monotonic() - started
        return report

    def _renew_claimed(self, index: DueIndex, user_key: str, owner: str) -> UserRound:
        """Renew a user this keeper claimed, then release it with its next due time."""
        now = self.tokens.clock()
        run = _UserRun(self, index, user_key, owner, now)
        return drive(self._claimed_round(index, user_key, owner, now), run.perform)

    async def _renew_claimed_async(
        self, index: DueIndex, user_key: str, owner: str, clients: Tuple[AsyncApiClient, AsyncApiClient]
    ) -> UserRound:
        """``_renew_claimed`` on the event loop, its requests sent through ``clients`` (API, OAuth)."""
        now = self.tokens.clock()
        run = _UserRun(self, index, user_key, owner, now, clients)
        return await drive_async(self._claimed_round(index, user_key, owner, now), run.perform_async)

    def _claimed_round(
        self, index: DueIndex, user_key: str, owner: str, now: float
    ) -> Generator[Step, Any, UserRound]:
        """A claimed user's round (``user_round``), its failure caught, then the claim released."""
        renewing = _RENEWING.set((id(self), user_key))
        try:
            result = yield from user_round(user_key, self.policy, now)
        except ClaimLost:
            logger.warning(
                "lost the claim on user %r to another keeper mid-round; leaving it to them", user_key
            )
            return UserRound(user_key, busy=True)
        except Exception as error:  # one user's trouble never stops the round
            logger.exception("renewing the subscriptions of user %r failed; retrying later", user_key)
            error_text = one_line(f"{type(error).__name__}: {error}")
            result = UserRound(user_key, next_due=self.policy.retry_at(now, 1), error=error_text)
        except GeneratorExit:  # cut off (cancelled, interrupted): the user is due for whoever comes next
            with contextlib.suppress(Exception):
                index.release(user_key, owner, self.tokens.clock())
            raise
        finally:
            _RENEWING.reset(renewing)
        try:
            index.release(user_key, owner, result.next_due)
        except Exception:  # the claim runs out by itself; the user is retried after it
            logger.exception("could not release the claim on user %r", user_key)
        return result

    @staticmethod
    def _file(report: RenewalReport, result: UserRound) -> None:
        if result.busy:
            report.busy.append(result.user_key)
            return
        report.users += 1
        if result.error is not None:
            report.errors[result.user_key] = result.error
        for subscription in result.outcomes:
            report.add(subscription)

    def _round_done(self, report: RenewalReport, owner: str) -> None:
        """Tell operators: a log record with the figures, the listener, the store's round record."""
        figures = report.counts()
        busy = bool(report.users or report.busy or report.errors)
        if busy:
            log = logger.info if report.ok else logger.warning
            log(
                "subscription round: %d users, %s; lag %.1f s, %.2f s",
                report.users,
                report,
                report.lag,
                report.duration,
                extra={f"kenar_{name}": value for name, value in figures.items()},
            )
        recorded_at = self._recorded_at
        if busy or recorded_at is None or time.monotonic() - recorded_at >= _IDLE_RECORD_EVERY:
            try:
                self._record_round(owner.rsplit(":", 1)[0], figures)
                self._recorded_at = time.monotonic()
            except Exception:
                logger.exception("could not record the round's figures in the store")
        if self.on_round is not None:
            try:
                self.on_round(report)
            except Exception:
                logger.exception("the on_round listener failed")

    def _record_round(self, process: str, figures: Dict[str, Any]) -> None:
        now = time.time()
        for _ in range(10):
            rounds, version = self._rounds()
            rounds = {name: r for name, r in rounds.items() if now - float(r.get("at", 0)) < _ROUNDS_KEPT_FOR}
            rounds[process] = {**figures, "at": now}
            if self.tokens.store.put(ROUNDS_KEY, json.dumps(rounds), version) is not None:
                return

    def _rounds(self) -> Tuple[Dict[str, Dict[str, Any]], int]:
        stored = self.tokens.store.get(ROUNDS_KEY)
        if stored is None:
            return {}, 0
        try:
            rounds = json.loads(stored.value)
        except ValueError:
            return {}, stored.version
        return (rounds if isinstance(rounds, dict) else {}), stored.version

    def _index(self) -> DueIndex:
        store = self.tokens.store
        if self._indexed:
            return store  # type: ignore[return-value]  # checked once in __init__
        return due_index(store, self.users)

    def _token_changed(self, user_key: str) -> None:
        """A token was stored in this process (a refresh or a login): the user is due now."""
        if _RENEWING.get() == (id(self), user_key):
            return  # this keeper's own refresh, inside the user's round
        try:
            self._index().schedule(user_key, self.tokens.clock())
        except Exception:
            logger.exception("could not mark user %r due after a token change", user_key)
        self._wake.set()

    # -- in the background ------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the background thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, interval: float = DEFAULT_INTERVAL) -> SubscriptionKeeper:
        """Run :meth:`renew_due` every ``interval`` seconds in a daemon thread, and at once
        after a token refresh in this process. ``interval`` must be shorter than both the
        token manager's leeway and the two-minute rotation grace, so a refresh made by
        another process is noticed before the old subscriptions lapse.
        """
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
            raise ApiValueError(f"interval must be a positive number of seconds, got {interval!r}")
        if interval >= min(self.tokens.leeway, 110.0):
            raise ApiValueError(
                f"interval must be shorter than the token manager's leeway ({self.tokens.leeway:g} s) "
                f"and than the rotation grace (120 s), got {interval:g}"
            )
        if self.running:
            raise ApiValueError(
                "the keeper is already running" if not self._stop.is_set() else "the keeper is still stopping"
            )
        self._stop = threading.Event()  # a fresh one: a thread still stopping keeps its own
        self._thread = threading.Thread(
            target=self._run,
            args=(float(interval), self._stop),
            name="kenar-subscription-keeper",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: Optional[float] = None) -> bool:
        """Stop the background thread and wait (up to ``timeout``) for its current round to end.

        The round claims no more users once asked to stop. Returns whether the thread has
        ended; if not, :meth:`start` refuses to run a second one until it has.
        """
        thread = self._thread
        if thread is None:
            return True
        self._stop.set()
        self._wake.set()
        thread.join(timeout)
        if thread.is_alive():
            logger.warning("the keeper's thread is still finishing its round after %s s", timeout)
            return False
        self._thread = None
        return True

    def __enter__(self) -> SubscriptionKeeper:
        return self if self.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, interval: float, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                self._round(stop)
            except Exception:
                logger.exception("subscription renewal failed; retrying in %g s", interval)
            self._wake.wait(interval)

    # -- the stored document ----------------------------------------------------------------

    def _load(self, user_key: str) -> Tuple[Dict[str, KeptSubscription], int]:
        stored = self.tokens.store.get(SUBSCRIPTIONS_KEY_PREFIX + user_key)
        if stored is None:
            return {}, 0
        return decode(user_key, stored.value), stored.version

    def _update(
        self, user_key: str, change: Callable[[Dict[str, KeptSubscription]], Any]
    ) -> Dict[str, KeptSubscription]:
        """Apply ``change`` to the user's subscriptions with compare-and-set, retrying on a race."""
        return self._update_from(user_key, change, None)[0]

    def _update_from(
        self,
        user_key: str,
        change: Callable[[Dict[str, KeptSubscription]], Any],
        known: Optional[Tuple[Dict[str, KeptSubscription], int]],
    ) -> Tuple[Dict[str, KeptSubscription], int]:
        """``_update`` starting from ``known`` (what was last read or written) if given; the new version."""
        key = SUBSCRIPTIONS_KEY_PREFIX + user_key
        for _ in range(20):
            subscriptions, version = known if known is not None else self._load(user_key)
            known = None
            subscriptions = dict(subscriptions)
            change(subscriptions)
            if not subscriptions:
                self.tokens.store.delete(key)
                return subscriptions, 0
            written = self.tokens.store.put(key, encode(subscriptions), version)
            if written is not None:
                return subscriptions, written
        raise ApiValueError(f"the kept subscriptions of user {user_key!r} keep changing under us; try again")


class _UserRun:
    """Performs one claimed user's round steps: the store, the token manager, the API."""

    def __init__(
        self,
        keeper: SubscriptionKeeper,
        index: DueIndex,
        user_key: str,
        owner: str,
        now: float,
        clients: Optional[Tuple[AsyncApiClient, AsyncApiClient]] = None,
    ) -> None:
        self.keeper = keeper
        self.clients = clients  # on an event loop: (Kenar's API, the token endpoint)
        self.index = index
        self.user_key = user_key
        self.owner = owner
        self.claimed_until = now + keeper.claim_ttl
        self.document: Optional[Tuple[Dict[str, KeptSubscription], int]] = None
        self.client: Any = None

    def perform(self, step: Step) -> Any:
        keeper = self.keeper
        if isinstance(step, ReadSubscriptions):
            self.document = keeper._load(step.user_key)
            return self.document[0]
        if isinstance(step, ReadToken):
            token = keeper.tokens.stored(step.user_key)
            # None: no usable token; token() raises ConsentRequiredError saying why.
            return token if token is not None else keeper.tokens.token(step.user_key, reload=True)
        if isinstance(step, RefreshToken):
            return self._refresh(step)
        if isinstance(step, Register):
            return self._register(step.subscription, step.token)
        if isinstance(step, Record):
            return self._record(step.outcomes)
        raise ApiValueError(f"unknown renewal step {step!r}")

    async def perform_async(self, step: Step) -> Any:
        """``perform`` on the event loop: the refresh and the registrations awaited, the store here."""
        assert self.clients is not None  # noqa: S101 - made with them by the loop's round
        api, oauth = self.clients
        if type(step) is RefreshToken:
            self._keep_claim()
            return await self.keeper.tokens.refresh_async(
                step.user_key, stale=step.stale, transport=oauth.transport
            )
        if type(step) is Register:
            from kenar_api_client.api.events_api import AsyncEventsApi

            self._keep_claim()
            if self.client is None:
                self.client = self.keeper.tokens.api_client_for(self.user_key, api)
            await AsyncEventsApi(self.client).events_register_event_subscription(step.subscription.request())
            used: OAuthToken = self.client.last_token or step.token
            return used
        return self.perform(step)

    def _refresh(self, step: RefreshToken) -> OAuthToken:
        self._keep_claim()
        return self.keeper.tokens.refresh(step.user_key, stale=step.stale)

    def _register(self, subscription: KeptSubscription, token: OAuthToken) -> OAuthToken:
        from kenar_api_client.api.events_api import EventsApi

        self._keep_claim()
        if self.client is None:
            self.client = self.keeper.tokens.api_client_for(self.user_key, self.keeper.api_client)
        EventsApi(self.client).events_register_event_subscription(subscription.request())
        used: OAuthToken = self.client.last_token or token
        return used

    def _record(self, outcomes: Dict[str, KeptSubscription]) -> None:
        # What was last read or written is the compare-and-set's starting point: no reread
        # unless someone changed the document meanwhile (keep() in another process).
        self.document = self.keeper._update_from(
            self.user_key, lambda current: apply(current, outcomes), self.document
        )

    def _keep_claim(self) -> None:
        """Extend the claim when half of it has run; raise ClaimLost if another keeper took it."""
        now = self.keeper.tokens.clock()
        if self.claimed_until - now > self.keeper.claim_ttl / 2:
            return
        if not self.index.claim(self.user_key, self.owner, now, self.keeper.claim_ttl):
            raise ClaimLost(self.user_key)
        self.claimed_until = now + self.keeper.claim_ttl


class _RefreshDispatcher:
    """The one refresh listener a token manager gets, telling every live keeper over it.

    Keepers are held weakly: a keeper that is gone stops being called, and however many
    keepers come and go, the manager holds one listener.
    """

    def __init__(self) -> None:
        self.keepers: weakref.WeakSet[SubscriptionKeeper] = weakref.WeakSet()

    def __call__(self, user_key: str, token: OAuthToken) -> None:
        for keeper in list(self.keepers):
            keeper._token_changed(user_key)


_dispatchers: weakref.WeakKeyDictionary[TokenManager, _RefreshDispatcher] = weakref.WeakKeyDictionary()
_dispatchers_lock = threading.Lock()


def _listen_for_refreshes(tokens: TokenManager, keeper: SubscriptionKeeper) -> None:
    with _dispatchers_lock:
        dispatcher = _dispatchers.get(tokens)
        if dispatcher is None:
            dispatcher = _dispatchers[tokens] = _RefreshDispatcher()
            tokens.on_refresh(dispatcher)
        dispatcher.keepers.add(keeper)


def _loop_library(transport: object) -> Optional[AsyncLibrary]:
    """The library a keeper's ``transport=`` names (None: threads), or a clear error before any round."""
    import importlib.util

    if transport is None or transport == "threads":
        return None
    if transport == "auto":
        return "aiohttp" if importlib.util.find_spec("aiohttp") is not None else None
    if transport == "aiohttp" or transport == "httpx":
        if importlib.util.find_spec(transport) is None:
            extra = EXTRA_OF[transport]
            raise ApiValueError(
                f'transport={transport!r} needs {transport}: pip install "kenar-api-client[{extra}]"'
            )
        return transport
    raise ApiValueError(f"transport must be 'auto', 'threads', 'aiohttp' or 'httpx', got {transport!r}")


def _run_on_own_loop(round_: Callable[[], Any], stop: threading.Event) -> None:
    """Run the coroutine ``round_()`` makes on a new event loop in a thread of its own, and wait.

    Not in the calling thread: ``asyncio.run`` there would take over its current loop and its
    Ctrl-C handling, and fail where a loop already runs (async code). Interrupted while
    waiting, it sets ``stop``: the round claims no one more and finishes the users under way.
    """
    import asyncio
    from concurrent import futures

    worker = ThreadPoolExecutor(1, thread_name_prefix="kenar-keeper-loop")
    try:
        running = worker.submit(lambda: asyncio.run(round_()))
        try:
            # Short waits, not one long one: a Ctrl-C is handled within half a second on every
            # Python (a long wait on a lock is not interrupted by it everywhere).
            while not running.done():
                futures.wait([running], timeout=0.5)
            running.result()
        except BaseException:
            if not running.done():
                stop.set()
            raise
    finally:
        worker.shutdown(wait=False)


def _owner() -> str:
    """A name for one round's claims: the host and process, and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
