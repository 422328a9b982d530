"""``RedisDeliveryLog``: the delivery log in Redis, shared by receivers on any number of machines.

Needs the ``redis`` package: ``pip install "kenar-api-client[redis]"``. Each key is one Redis
string that expires by itself (``PX``): ``claimed:<token>`` for the lease, then ``handled``
for the ttl. Claiming and releasing are Lua scripts, atomic on the server.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Optional, TypeVar

from kenar_api_client.webhooks._errors import DeliveryLogError
from kenar_api_client.webhooks.deliveries import (
    DEFAULT_CLAIM_LEASE,
    DEFAULT_DELIVERY_TTL,
    BaseDeliveryLog,
    Claim,
)

__all__ = ["RedisDeliveryLog"]

# KEYS[1] the delivery; ARGV: the claim's token, the lease in ms. Returns {state, ms left}.
_CLAIM = """
local value = redis.call('GET', KEYS[1])
if not value then
  redis.call('SET', KEYS[1], 'claimed:' .. ARGV[1], 'PX', ARGV[2])
  return {'claimed', 0}
end
if value == 'handled' then
  return {'handled', 0}
end
return {'busy', redis.call('PTTL', KEYS[1])}
"""
# KEYS[1] the delivery; ARGV[1] the claim's token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == 'claimed:' .. ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
_SOCKET_TIMEOUT = 5.0  # seconds, for a client built from url=: a hung server must not hang deliveries

_Result = TypeVar("_Result")


class RedisDeliveryLog(BaseDeliveryLog):
    """A delivery log in Redis: every receiver that uses the same server and prefix shares it.

    Pass a ``redis.Redis`` client, or a ``url`` (``redis://127.0.0.1:6379/0``; the client
    then gives up on an unresponsive server after 5 seconds). Keys are ``prefix`` followed
    by the delivery key. What was handled lasts as long as the server keeps its data: use
    persistence (AOF or RDB) if it must survive a Redis restart.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        url: Optional[str] = None,
        prefix: str = "kenar:deliveries:",
        ttl: float = DEFAULT_DELIVERY_TTL,
        lease: float = DEFAULT_CLAIM_LEASE,
    ) -> None:
        if (client is None) == (url is None):
            raise ValueError("RedisDeliveryLog needs either a redis client or url=, not both")
        try:
            import redis
        except ImportError:
            raise ValueError(
                'RedisDeliveryLog needs the redis package: pip install "kenar-api-client[redis]"'
            ) from None
        super().__init__(ttl, lease)
        self._errors = (redis.RedisError,)
        if client is None:
            client = redis.Redis.from_url(
                str(url), socket_timeout=_SOCKET_TIMEOUT, socket_connect_timeout=_SOCKET_TIMEOUT
            )
        self._redis = client
        self.prefix: str = prefix
        self._claim = client.register_script(_CLAIM)
        self._release = client.register_script(_RELEASE)

    def _describe(self) -> str:
        return f"prefix={self.prefix!r}, "  # never the URL: it may carry a password

    def claim(self, key: str) -> Claim:
        """Take ``key`` if no receiver handled or holds it (within their time)."""
        token = secrets.token_hex(16)
        state, left_ms = self._run(
            lambda: self._claim(keys=[self.prefix + key], args=[token, _milliseconds(self._lease)])
        )
        state = state.decode("ascii") if isinstance(state, bytes) else str(state)
        if state == "claimed":
            return Claim(key, "claimed", token)
        if state == "handled":
            return Claim(key, "handled")
        return Claim(key, "busy", retry_after=max(0, int(left_ms)) / 1000)

    def mark_handled(self, claim: Claim) -> None:
        """Remember ``claim.key`` as handled for ``ttl`` seconds."""
        self._run(lambda: self._redis.set(self.prefix + claim.key, "handled", px=_milliseconds(self._ttl)))

    def release(self, claim: Claim) -> None:
        """Free ``claim.key`` if this claim still holds it."""
        self._run(lambda: self._release(keys=[self.prefix + claim.key], args=[claim.token]))

    def _run(self, action: Callable[[], _Result]) -> _Result:
        try:
            return action()
        except self._errors as exc:
            raise DeliveryLogError(f"the delivery log {self!r} failed: {type(exc).__name__}: {exc}") from exc


def _milliseconds(seconds: float) -> int:
    return max(1, int(seconds * 1000))
