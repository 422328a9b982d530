"""``AsyncSubscriptionKeeper``: the subscription keeper for asyncio apps, its rounds off the event loop.

A round is store and network work done by the keeper itself: here it runs in a worker
thread, so the app's event loop never waits on it (with the keeper's ``transport=`` set,
that thread runs the round on an event loop of its own), and the periodic rounds are a task
an app starts in its lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, AsyncGenerator, Optional

if TYPE_CHECKING:
    from types import TracebackType
    from typing import Type

    from kenar_api_client.oauth.keeper import RenewalReport, SubscriptionKeeper

logger: logging.Logger = logging.getLogger(__name__)

#: Seconds between two rounds by default: the same as the sync keeper's thread.
DEFAULT_INTERVAL = 60.0


class AsyncSubscriptionKeeper:
    """Runs ``keeper``'s rounds from async code: ``await renew_due()``, or ``start()`` a task.

    ::

        keeper = AsyncSubscriptionKeeper(SubscriptionKeeper(tokens, api_client))
        async with keeper.running_every(60):  # in a FastAPI lifespan, for example
            ...
    """

    def __init__(self, keeper: SubscriptionKeeper) -> None:
        self.keeper = keeper
        self._task: Optional[asyncio.Task[None]] = None

    def __repr__(self) -> str:
        return f"AsyncSubscriptionKeeper({self.keeper!r}, running={self.running})"

    async def renew_due(self) -> RenewalReport:
        """One round (``SubscriptionKeeper.renew_due``), in a worker thread."""
        return await asyncio.to_thread(self.keeper.renew_due)

    async def renew_user(self, user_key: str, *, wait: float = 0.0) -> RenewalReport:
        """Renew one user's subscriptions now (``SubscriptionKeeper.renew_user``), in a worker thread.

        The report's ``busy`` lists the user if another keeper was renewing it (see ``wait``).
        """
        return await asyncio.to_thread(self.keeper.renew_user, user_key, wait=wait)

    @property
    def running(self) -> bool:
        """Whether the periodic task is running."""
        return self._task is not None and not self._task.done()

    def start(self, interval: float = DEFAULT_INTERVAL) -> asyncio.Task[None]:
        """Run a round now and then every ``interval`` seconds, as a task of the running loop."""
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or not 0 < interval < 86400:
            from kenar_api_client.exceptions import ApiValueError

            raise ApiValueError(f"interval must be a number of seconds from 0 to 86400, got {interval!r}")
        if self.running:
            assert self._task is not None  # noqa: S101 - running says so
            return self._task
        self._task = asyncio.get_running_loop().create_task(self._run(float(interval)))
        return self._task

    async def stop(self) -> None:
        """Stop the periodic task; a round under way finishes in its thread, unawaited."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    @contextlib.asynccontextmanager
    async def running_every(
        self, interval: float = DEFAULT_INTERVAL
    ) -> AsyncGenerator[AsyncSubscriptionKeeper, None]:
        """``start(interval)`` on entry, ``stop()`` on exit: for an app's lifespan."""
        self.start(interval)
        try:
            yield self
        finally:
            await self.stop()

    async def __aenter__(self) -> AsyncSubscriptionKeeper:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        await self.stop()

    async def _run(self, interval: float) -> None:
        while True:
            try:
                report = await self.renew_due()
            except Exception:  # one failed round must not end the task: the next one retries
                logger.exception("a subscription renewal round failed; the next one runs in %.0f s", interval)
            else:
                if not report.ok:
                    logger.warning("subscription renewal round: %s", report)
            await asyncio.sleep(interval)
