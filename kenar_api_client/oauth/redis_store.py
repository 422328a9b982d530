"""``RedisTokenStore``: tokens in Redis, for apps that run on several machines.

Needs the ``redis`` package: ``pip install "kenar-api-client[redis]"``. Coordination uses
Redis's own primitives: leases are ``SET NX PX`` keys that expire by themselves, and
compare-and-set and lease release are Lua scripts, atomic on the server.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple, Type

from kenar_api_client.exceptions import ApiValueError
from kenar_api_client.oauth.store import Versioned, translated

# KEYS[1] the hash; ARGV: value, expected version ("" for none). Returns the new version or nil.
_PUT = """
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= current then
  return false
end
redis.call('HSET', KEYS[1], 'value', ARGV[1], 'version', current + 1)
return current + 1
"""
# KEYS[1] the lease; ARGV[1] the owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
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

    Pass a ``redis.Redis`` client, or a ``url`` (``redis://127.0.0.1:6379/0``). Keys are
    prefixed with ``prefix``. Secure the server as you would any store of credentials
    (ACLs, TLS, no public port): it holds refresh tokens.
    """

    def __init__(self, client: Any = None, *, url: Optional[str] = None, prefix: str = "kenar:") -> None:
        if (client is None) == (url is None):
            raise ApiValueError("RedisTokenStore needs either a redis client or url=, not both")
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
        self._put = client.register_script(_PUT)
        self._release = client.register_script(_RELEASE)
        self._renew = client.register_script(_RENEW)

    def __repr__(self) -> str:
        return f"RedisTokenStore(prefix={self.prefix!r})"

    @translated
    def get(self, key: str) -> Optional[Versioned]:
        value, version = self._redis.hmget(self.prefix + key, "value", "version")
        if value is None or version is None:
            return None
        return Versioned(_text(value), int(version))

    @translated
    def put(self, key: str, value: str, expected_version: Optional[int] = None) -> Optional[int]:
        expected = "" if expected_version is None else str(int(expected_version))
        version = self._put(keys=[self.prefix + key], args=[value, expected])
        return None if version is None else int(version)

    @translated
    def delete(self, key: str) -> None:
        self._redis.delete(self.prefix + key)

    @translated
    def keys(self, prefix: str) -> List[str]:
        pattern = _glob_escape(self.prefix + prefix) + "*"
        start = len(self.prefix)
        found = (_text(key)[start:] for key in self._redis.scan_iter(match=pattern, count=500))
        return sorted(key for key in found if not key.startswith(_LEASE_PREFIX))

    @translated
    def acquire_lease(self, name: str, owner: str, ttl: float) -> bool:
        key = self.prefix + _LEASE_PREFIX + name
        if self._redis.set(key, owner, nx=True, px=max(1, int(ttl * 1000))):
            return True
        # Re-entrant for the same owner, as the other stores are.
        return _text(self._redis.get(key) or b"") == owner

    @translated
    def release_lease(self, name: str, owner: str) -> None:
        self._release(keys=[self.prefix + _LEASE_PREFIX + name], args=[owner])

    @translated
    def renew_lease(self, name: str, owner: str, ttl: float) -> bool:
        renewed = self._renew(
            keys=[self.prefix + _LEASE_PREFIX + name], args=[owner, max(1, int(ttl * 1000))]
        )
        return bool(renewed)


_LEASE_PREFIX = "lease:"


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
