"""The token store a command names (``--store``, ``$KENAR_TOKEN_STORE``): a SQLite file or a Redis URL.

Opened with one-line errors: a URL of an unknown scheme (``rdis://``) is refused instead of
becoming a local file, a read (``token show``, ``subscriptions list``) never creates a file
or a directory, a file that is no token store or a Redis server that is down is reported
in one line, and a Redis password is never printed.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, Tuple, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kenar_api_client import _env
from kenar_api_client.cli.output import CommandError, Output, UsageError

if TYPE_CHECKING:
    from kenar_api_client.oauth import TokenStore

ENV_TOKEN_STORE = _env.TOKEN_STORE
#: The URL schemes of a Redis store (redis-py's ``Redis.from_url``).
REDIS_SCHEMES = ("redis", "rediss", "unix")
#: The URL schemes of a PostgreSQL store (libpq's connection URIs).
POSTGRES_SCHEMES = ("postgresql", "postgres")
# A scheme, as in "rdis://": what a path never starts with (a Windows drive is one letter).
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://")
_SECRET_QUERY_NAMES = ("password", "username")

Command = TypeVar("Command", bound=Callable[..., int])


def default_store_path() -> Path:
    """``$XDG_CONFIG_HOME/kenar-events/tokens.sqlite3`` (``~/.config`` by default)."""
    base = os.environ.get("XDG_CONFIG_HOME", "").strip() or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "kenar-events" / "tokens.sqlite3"


def open_store(spec: Optional[str], out: Output, *, create: bool) -> Tuple[TokenStore, str]:
    """The store ``spec`` names (default: the environment, else the default file), and how to
    show it. ``create``: a command that writes may create the SQLite file and its folder."""
    spec = spec or os.environ.get(ENV_TOKEN_STORE, "").strip() or None
    scheme = _SCHEME.match(spec) if spec is not None else None
    if spec is not None and scheme is not None:
        if scheme.group(1).lower() in POSTGRES_SCHEMES:
            return _postgres_store(spec, out)
        return _redis_store(spec, scheme.group(1).lower(), out)
    return _sqlite_store(Path(spec) if spec else default_store_path(), create)


def _redis_store(url: str, scheme: str, out: Output) -> Tuple[TokenStore, str]:
    from kenar_api_client.exceptions import ApiValueError
    from kenar_api_client.oauth import RedisTokenStore

    if scheme not in REDIS_SCHEMES:
        raise UsageError(
            f"the token store URL scheme {scheme!r} is unknown: give a SQLite file path, "
            f"or a {', '.join(s + '://' for s in REDIS_SCHEMES + POSTGRES_SCHEMES)} URL"
        )
    out.hide(*redis_secrets(url))
    where = shown_url(url)
    try:
        return RedisTokenStore(url=url), where
    except ApiValueError as exc:  # redis is not installed
        raise UsageError(str(exc)) from exc
    except ValueError as exc:  # a URL redis-py cannot read
        raise UsageError(f"the token store URL {where} is malformed: {exc}") from exc


def _postgres_store(url: str, out: Output) -> Tuple[TokenStore, str]:
    from kenar_api_client.exceptions import ApiValueError
    from kenar_api_client.oauth import PostgresTokenStore

    out.hide(*redis_secrets(url))  # the same user info and ?password= as a Redis URL's
    where = shown_url(url)
    try:
        return PostgresTokenStore(url), where
    except ApiValueError as exc:  # psycopg is not installed, or the URL is malformed
        raise UsageError(str(exc)) from exc


def _sqlite_store(path: Path, create: bool) -> Tuple[TokenStore, str]:
    import sqlite3

    from kenar_api_client.oauth import SQLiteTokenStore, TokenStoreError

    where = str(path)
    if path.is_dir():
        raise UsageError(
            f"the token store {where} is a directory: name a file, e.g. {path / 'tokens.sqlite3'}"
        )
    if not path.exists():
        if not create:
            raise CommandError(f"there is no token store at {where}: run kenar-events login first")
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise CommandError(f"cannot create the token store {where}: {exc.strerror or exc}") from exc
    try:
        return SQLiteTokenStore(path), where
    except (sqlite3.Error, OSError, TokenStoreError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise CommandError(
            f"cannot open the token store {where}: {reason} (is it a kenar-events token store?)"
        ) from exc


def redis_secrets(url: str) -> List[str]:
    """The password (and user name) a Redis or PostgreSQL URL carries, in its user info or its query."""
    parts = urlsplit(url)
    secrets = [value for value in (parts.password, parts.username) if value]
    secrets += [
        value for name, value in parse_qsl(parts.query) if name.lower() in _SECRET_QUERY_NAMES and value
    ]
    return secrets


def shown_url(url: str) -> str:
    """``url`` without its user info and without a password in its query: safe to print."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = [(n, v) for n, v in parse_qsl(parts.query) if n.lower() not in _SECRET_QUERY_NAMES]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


def store_failures(command: Command) -> Command:
    """Report a token store that fails during ``command`` (Redis down, a locked file) in one line."""

    @functools.wraps(command)
    def run(*args: object, **kwargs: object) -> int:
        from kenar_api_client.oauth import TokenStoreError

        try:
            status: int = command(*args, **kwargs)
        except TokenStoreError as exc:
            raise CommandError(str(exc)) from exc
        return status

    return run  # type: ignore[return-value]
