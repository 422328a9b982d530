"""``RedisTokenStore``: tokens in Redis, for apps that run on several machines.

Needs the ``redis`` package: ``pip install "kenar-api-client[redis]"``. Coordination uses
Redis's own primitives: leases are ``SET NX PX`` keys that expire by themselves, and
compare-and-set, listing and the due index are Lua scripts, atomic on the server. Nothing
scans the keyspace: the store's keys are listed in a sorted set of their own, and every key
it writes starts with its prefix.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any, List, Optional, Tuple, Type

from kenar_api_client.exceptions import ApiValueError
from kenar_api_client.oauth.store import Due, DueSummary, Versioned, VolatileStoreWarning, translated

logger: logging.Logger = logging.getLogger(__name__)

# Under the prefix: "v:<key>" a hash (value, version) per stored key; "keys" a sorted set of
# every stored key (all scores 0, so ZRANGEBYLEX lists a prefix); "lease:<name>" a lease;
# "due" a sorted set of names by due time, "due:owner" and "due:requested" hashes by name.
_VALUE, _KEYS, _LEASE = "v:", "keys", "lease:"
_DUE, _DUE_OWNER, _DUE_REQUESTED = "due", "due:owner", "due:requested"

# KEYS: the value hash, the key set; ARGV: key, value, expected version ("" for none).
_PUT = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if ARGV[3] ~= '' and tonumber(ARGV[3]) ~= current then
  return false
end
redis.call('HSET', KEYS[1], 'value', ARGV[2], 'version', current + 1)
if current == 0 then
  redis.call('ZADD', KEYS[2], 0, ARGV[1])
end
return current + 1
"""
# KEYS: the value hash, the key set; ARGV: key.
_DELETE = """
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""
# KEYS[1] the lease; ARGV[1] the owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# KEYS: due, due:owner, due:requested; ARGV: name, due_at.
_SCHEDULE = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  local asked = redis.call('HGET', KEYS[3], ARGV[1])
  if not asked or tonumber(ARGV[2]) < tonumber(asked) then
    redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
  end
  return 0
end
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not current or tonumber(ARGV[2]) < tonumber(current) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
return 1
"""
# KEYS: due, due:owner; ARGV: now, claimed until, owner, limit. Returns name, due_at pairs.
_CLAIM_DUE = """
local found = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', 0, ARGV[4])
for i = 1, #found, 2 do
  redis.call('ZADD', KEYS[1], ARGV[2], found[i])
  redis.call('HSET', KEYS[2], found[i], ARGV[3])
end
return found
"""
# KEYS: due, due:owner; ARGV: name, owner, now, claimed until.
_CLAIM = """
local holder = redis.call('HGET', KEYS[2], ARGV[1])
if holder and holder ~= ARGV[2] then
  local until_ = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if until_ and tonumber(until_) > tonumber(ARGV[3]) then
    return 0
  end
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
"""
# KEYS: due, due:owner, due:requested; ARGV: name, owner, next due time ("" for none).
_RELEASE_CLAIM = """
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
local asked = redis.call('HGET', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
local following = ARGV[3]
if asked and (following == '' or tonumber(asked) < tonumber(following)) then
  following = asked
end
if following == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], following, ARGV[1])
end
return 1
"""
# KEYS: due, due:owner, due:requested; ARGV: name.
_UNSCHEDULE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""
# KEYS[1] the lease; ARGV: the owner, the new ttl in milliseconds.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


class RedisTokenStore:
    """A store in Redis: every process on every machine that uses the same server shares it.

    Pass a ``redis.Redis`` client, or a ``url`` (``redis://127.0.0.1:6379/0``). Every key
    it writes starts with ``prefix``. Secure the server as you would any store of
    credentials (ACLs, TLS, no public port): it holds refresh tokens. A server that keeps
    nothing on disk (``appendonly no`` and no ``save`` schedule) loses every token when it
    restarts: the store warns (``VolatileStoreWarning``) when it finds one, unless
    ``check_persistence=False``.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        url: Optional[str] = None,
        prefix: str = "kenar:",
        check_persistence: bool = True,
    ) -> None:
        if (client is None) == (url is None):
            raise ApiValueError("RedisTokenStore needs either a redis client or url=, not both")
        if not isinstance(prefix, str):
            raise ApiValueError(f"prefix must be a string, not {type(prefix).__name__}")
        try:
            import redis
        except ImportError:
            raise ApiValueError(
                'RedisTokenStore needs the redis package: pip install "kenar-api-client[redis]"'
            ) from None
        self.backend_errors: Tuple[Type[BaseException], ...] = (redis.RedisError,)
        if client is None:
            client = redis.Redis.from_url(str(url))
        self._redis = client
        self.prefix = prefix
        self._keys = prefix + _KEYS
        self._due = [prefix + _DUE, prefix + _DUE_OWNER, prefix + _DUE_REQUESTED]
        register = client.register_script
        self._put, self._delete, self._release = register(_PUT), register(_DELETE), register(_RELEASE)
        self._schedule, self._unschedule = register(_SCHEDULE), register(_UNSCHEDULE)
        self._claim_due, self._claim = register(_CLAIM_DUE), register(_CLAIM)
        self._release_claim, self._renew = register(_RELEASE_CLAIM), register(_RENEW)
        if check_persistence:
            self._warn_if_volatile()

    def __repr__(self) -> str:
        return f"RedisTokenStore(prefix={self.prefix!r})"

    @translated
    def get(self, key: str) -> Optional[Versioned]:
        value, version = self._redis.hmget(self.prefix + _VALUE + key, "value", "version")
        if value is None or version is None:
            return None
        return Versioned(_text(value), int(version))

    @translated
    def put(self, key: str, value: str, expected_version: Optional[int] = None) -> Optional[int]:
        expected = "" if expected_version is None else str(int(expected_version))
        version = self._put(keys=[self.prefix + _VALUE + key, self._keys], args=[key, value, expected])
        return None if version is None else int(version)

    @translated
    def delete(self, key: str) -> None:
        self._delete(keys=[self.prefix + _VALUE + key, self._keys], args=[key])

    @translated
    def keys(self, prefix: str) -> List[str]:
        # Keys are UTF-8, where no byte is 0xFF: "(" + prefix + 0xFF ends the prefix's range.
        start = b"[" + prefix.encode("utf-8")
        found = self._redis.zrangebylex(self._keys, start, b"(" + prefix.encode("utf-8") + b"\xff")
        return [_text(key) for key in found]

    @translated
    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        key = self.prefix + _LEASE + name
        if self._redis.set(key, owner, nx=True, px=max(1, int(ttl * 1000))):
            return True
        # Re-entrant for the same owner, as the other stores are.
        return _text(self._redis.get(key) or b"") == owner

    @translated
    def release_lease(self, name: str, owner: str) -> None:
        self._release(keys=[self.prefix + _LEASE + name], args=[owner])

    @translated
    def renew_lease(self, name: str, owner: str, ttl: float) -> bool:
        renewed = self._renew(keys=[self.prefix + _LEASE + name], args=[owner, max(1, int(ttl * 1000))])
        return bool(renewed)

    # -- the due index ------------------------------------------------------------------------

    @translated
    def schedule(self, name: str, due_at: float) -> None:
        self._schedule(keys=self._due, args=[name, repr(float(due_at))])

    @translated
    def unschedule(self, name: str) -> None:
        self._unschedule(keys=self._due, args=[name])

    @translated
    def claim_due(self, now: float, owner: str, ttl: float, limit: int) -> List[Due]:
        if limit <= 0:
            return []
        found = self._claim_due(
            keys=self._due[:2], args=[repr(float(now)), repr(float(now) + ttl), owner, int(limit)]
        )
        return [Due(_text(found[i]), float(found[i + 1])) for i in range(0, len(found), 2)]

    @translated
    def claim(self, name: str, owner: str, now: float, ttl: float) -> bool:
        until = float(now) + ttl
        return bool(self._claim(keys=self._due[:2], args=[name, owner, repr(float(now)), repr(until)]))

    @translated
    def release(self, name: str, owner: str, due_at: Optional[float]) -> bool:
        following = "" if due_at is None else repr(float(due_at))
        return bool(self._release_claim(keys=self._due, args=[name, owner, following]))

    @translated
    def due_summary(self, now: float) -> DueSummary:
        with self._redis.pipeline(transaction=True) as pipeline:
            pipeline.zcard(self._due[0])
            pipeline.zcount(self._due[0], "-inf", repr(float(now)))
            pipeline.zrange(self._due[0], 0, 0, withscores=True)
            scheduled, due, oldest = pipeline.execute()
        return DueSummary(int(scheduled), int(due), float(oldest[0][1]) if oldest else None)

    # -- persistence ----------------------------------------------------------------------------

    def persistence(self) -> Optional[bool]:
        """Whether the server keeps data on disk (AOF or an RDB ``save`` schedule); None if unknown.

        Read with ``CONFIG GET``, else ``INFO persistence`` (managed services often refuse
        ``CONFIG``); None when neither answers or the server cannot be reached.
        """
        try:
            return _persists(self._redis)
        except self.backend_errors as error:
            logger.debug("could not read the persistence settings of Redis: %s", error)
            return None

    def _warn_if_volatile(self) -> None:
        if self.persistence() is False:
            message = (
                f"{self!r}: the Redis server keeps nothing on disk (appendonly is no and save is empty): "
                "a restart loses every user's tokens and kept subscriptions, and users must consent "
                "again. Turn on appendonly yes (or a save schedule) for a token store."
            )
            logger.warning("%s", message)
            warnings.warn(message, VolatileStoreWarning, stacklevel=3)


def _persists(client: Any) -> Optional[bool]:
    import redis

    try:
        settings = client.config_get("appendonly")
        settings.update(client.config_get("save"))
    except redis.ResponseError:  # CONFIG refused (ACL, renamed command): ask INFO instead
        info = client.info("persistence")
        if int(info.get("aof_enabled", 0)):
            return True
        return None  # INFO does not tell whether an RDB save schedule is set
    found = {_text(name): _text(value).strip() for name, value in settings.items()}
    if "appendonly" not in found or "save" not in found:
        return None
    return found["appendonly"].lower() == "yes" or bool(found["save"])


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
