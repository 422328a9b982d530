"""``Configuration``: where to connect, how to authenticate, and how the transport behaves."""

from __future__ import annotations

import copy
import logging
import os
import platform
import sys
import threading
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from kenar_api_client._env import (
    ACCESS_TOKEN as ENV_ACCESS_TOKEN,
    API_KEY as ENV_API_KEY,
    BASE_URL as ENV_BASE_URL,
)
from kenar_api_client._log import LOG_FORMAT, PACKAGE_LOGGER, has_real_handler
from kenar_api_client._redact import REDACTED, RedactedDict
from kenar_api_client._version import __version__
from kenar_api_client.exceptions import ApiTypeError, ApiValueError

if TYPE_CHECKING:
    from urllib3.util import Retry, Timeout

DEFAULT_HOST = "https://open-api.divar.ir"
API_VERSION = "1.0"


#: Connect and read timeouts in seconds. Connecting to Kenar takes well under a second,
#: so 10 s only trips on a dead route; 60 s of silence from a server that answers ``{}``
#: means it is stuck. Both are per socket operation, as in urllib3: they bound each wait,
#: not the call in total.
DEFAULT_TIMEOUT = (10.0, 60.0)

#: The largest answer body (after decompression) the SDK reads: Kenar's answers are tiny,
#: so this only stops a broken or hostile server (or a gzip bomb) from filling the memory.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 2**20

#: Seconds for both (an int is fine), a (connect, read) pair, or a ``urllib3.Timeout``.
TimeoutValue = Union[float, Tuple[float, float], "Timeout"]
#: None (the default policy), a number of retries, or a ``urllib3.Retry``.
RetriesValue = Union[int, "Retry", None]


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name, "").strip()
    return value or None


def normalize_host(host: str, source: str = "host") -> str:
    """``host`` as an http(s) base URL without a trailing slash, or ``ApiValueError``.

    It is parsed here by urllib3's own parser, the one the transport uses, so that what is
    accepted here is exactly where requests go: a bad port or a line break in the host is
    refused now, not found out on the first call.
    """
    if not isinstance(host, str):
        raise ApiValueError(f"{source} must be a string URL, not {type(host).__name__}")
    scheme, sep, rest = host.partition("://")
    if "@" in rest.split("/", 1)[0]:
        # Checked first, and the value never quoted: it holds a password.
        raise ApiValueError(f"{source} must not contain credentials; use api_key/access_token")
    if not sep or scheme.lower() not in ("http", "https") or not rest or rest[0] in "/?#":
        raise ApiValueError(
            f"{source} must be an http:// or https:// URL such as {DEFAULT_HOST!r}, got {host!r}"
        )
    if any(character.isspace() or not character.isprintable() for character in host):
        # Checked here, not left to urllib3: its parser lets a line break through before 2.8.
        raise ApiValueError(f"{source} must not contain spaces or control characters, got {host!r}")
    try:
        parsed = parse_url(host)
    except LocationParseError:
        raise ApiValueError(f"{source} has an invalid host or port (0-65535): {host!r}") from None
    if not parsed.host:
        raise ApiValueError(f"{source} has no host name: {host!r}")
    if parsed.query is not None or parsed.fragment is not None:
        raise ApiValueError(f"{source} must not contain a query or fragment, got {host!r}")
    return parsed.url.rstrip("/")


def _checked_credential(value: Any, name: str) -> str:
    """``value`` if it can be sent as a credential header, else an error naming ``name``.

    The value itself is never quoted: it is a secret.
    """
    if not isinstance(value, str):
        raise ApiTypeError(f"{name} must be a str, not {type(value).__name__}")
    if "\r" in value or "\n" in value:
        raise ApiValueError(f"{name} contains a line break (CR or LF), which could inject headers")
    return value


class Configuration:
    """Settings shared by every request an ``ApiClient`` makes.

    Credentials left out are read from the environment: ``KENAR_API_KEY``,
    ``KENAR_ACCESS_TOKEN`` and ``KENAR_BASE_URL`` (for ``host``). Values passed here or set
    later always win. Transport settings (TLS, proxy, pool size, retries, timeout) are read
    when an ``ApiClient`` is created from this configuration.
    """

    _default: ClassVar[Optional[Configuration]] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        host: Optional[str] = None,
        api_key: Optional[Dict[str, str]] = None,
        api_key_prefix: Optional[Dict[str, str]] = None,
        access_token: Optional[str] = None,
        ssl_ca_cert: Optional[str] = None,
        retries: RetriesValue = None,
        ca_cert_data: Union[str, bytes, None] = None,
        *,
        debug: Optional[bool] = None,
        timeout: Optional[TimeoutValue] = None,
    ) -> None:
        env_host = _env(ENV_BASE_URL)
        if host is not None:
            self.host = host
        elif env_host is not None:
            self._host = normalize_host(env_host, ENV_BASE_URL)
        else:
            self._host = DEFAULT_HOST

        if api_key is None:
            env_key = _env(ENV_API_KEY)
            api_key = {"APIKey": env_key} if env_key else {}
        self.api_key = api_key
        self.api_key_prefix: Dict[str, str] = dict(api_key_prefix or {})
        self.access_token = access_token if access_token is not None else _env(ENV_ACCESS_TOKEN)

        #: Verify the server's TLS certificate. Turning this off warns once per client.
        self.verify_ssl = True
        #: A CA bundle file to verify the server with, instead of the system's.
        self.ssl_ca_cert = ssl_ca_cert
        #: The same as PEM text or DER bytes.
        self.ca_cert_data = ca_cert_data
        #: Client certificate and key files, for mutual TLS.
        self.cert_file: Optional[str] = None
        self.key_file: Optional[str] = None
        #: Hostname to match the certificate against (False: do not check the name).
        self.assert_hostname: Union[bool, str, None] = None
        #: Server name to send in the TLS handshake (SNI).
        self.tls_server_name: Optional[str] = None
        #: Proxy URL (``http://proxy:3128``) and extra headers for it.
        self.proxy: Optional[str] = None
        self.proxy_headers: Optional[Dict[str, str]] = None
        #: Connections kept per host; calls beyond it wait for a free one.
        self.connection_pool_maxsize: int = max(10, (os.cpu_count() or 1) * 5)
        #: None (the default policy), a number of retries, or a ``urllib3.Retry``.
        self.retries: RetriesValue = retries
        #: Longest ``Retry-After`` the SDK sleeps through before retrying; see retry.py.
        self.retry_after_max: float = 60.0
        #: The largest answer body, in bytes after decompression, that a call reads; a
        #: larger one raises ``ApiException``. None: no limit.
        self.max_response_bytes: Optional[int] = DEFAULT_MAX_RESPONSE_BYTES
        #: Seconds: one number for both, (connect, read), or a ``urllib3.Timeout``.
        self.timeout: TimeoutValue = DEFAULT_TIMEOUT if timeout is None else timeout
        #: Options set on every new socket, e.g. ``[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]``.
        self.socket_options: Optional[List[Tuple[int, int, Any]]] = None
        #: Check arguments before sending (types, enum values). Turn off to send values
        #: this SDK version does not know yet.
        self.client_side_validation = True

        self.logger: Dict[str, logging.Logger] = {
            "package_logger": logging.getLogger(PACKAGE_LOGGER),
            "urllib3_logger": logging.getLogger("urllib3"),
        }
        self.logger_format = LOG_FORMAT
        self.logger_stream_handler: Optional[logging.Handler] = None
        self.logger_file_handler: Optional[logging.FileHandler] = None
        self._logger_file: Optional[str] = None
        self._debug = False
        self._levels_before_debug: Dict[str, int] = {}
        if debug is not None:
            self.debug = debug

    # -- host and credentials -------------------------------------------------------------

    @property
    def host(self) -> str:
        """Base URL of the API, without a trailing slash."""
        return self._host

    @host.setter
    def host(self, value: str) -> None:
        self._host = normalize_host(value)

    @property
    def api_key(self) -> Dict[str, str]:
        """API keys by security scheme name; Kenar's is ``'APIKey'`` (header ``X-API-Key``)."""
        return self._api_key

    @api_key.setter
    def api_key(self, value: Mapping[str, str]) -> None:
        if not isinstance(value, Mapping):
            raise ApiTypeError(
                f"api_key must be a dict such as {{'APIKey': '...'}}, not {type(value).__name__}"
            )
        self._api_key = RedactedDict(
            {name: _checked_credential(key, f"api_key[{name!r}]") for name, key in value.items()}
        )

    @property
    def access_token(self) -> Optional[str]:
        """The user's OAuth access token, sent as ``Authorization: Bearer <token>``; or None."""
        return self._access_token

    @access_token.setter
    def access_token(self, value: Optional[str]) -> None:
        self._access_token = None if value is None else _checked_credential(value, "access_token")

    def get_api_key_with_prefix(self, identifier: str, alias: Optional[str] = None) -> Optional[str]:
        """The API key for ``identifier`` with its prefix (``'Bearer abc'``), or None."""
        key = self.api_key.get(identifier)
        if key is None and alias is not None:
            key = self.api_key.get(alias)
        if key is None:
            return None
        prefix = self.api_key_prefix.get(identifier)
        return f"{prefix} {key}" if prefix else key

    def auth_settings(self) -> Dict[str, Dict[str, Any]]:
        """The authentication headers to send, keyed by security scheme; only configured ones."""
        settings: Dict[str, Dict[str, Any]] = {}
        api_key = self.get_api_key_with_prefix("APIKey")
        if api_key is not None:
            settings["APIKey"] = {
                "type": "api_key",
                "in": "header",
                "key": "X-API-Key",
                "value": api_key,
            }
        if self.access_token is not None:
            settings["OAuth"] = {
                "type": "oauth2",
                "in": "header",
                "key": "Authorization",
                "value": f"Bearer {self.access_token}",
            }
        return settings

    def auth_headers(self, schemes: Sequence[str]) -> List[Tuple[str, str]]:
        """The ``(header, value)`` pairs of the configured credentials of these security schemes.

        What every call sends, worked out without building :meth:`auth_settings`' dicts
        (unless a subclass overrides that method: then its settings are the ones sent).
        """
        if type(self).auth_settings is not Configuration.auth_settings:
            settings = self.auth_settings()
            pairs = []
            for name in schemes:
                setting = settings.get(name)
                if setting is not None:
                    if setting.get("in") != "header":
                        raise ApiValueError("Kenar's auth settings go in headers; got one that does not")
                    pairs.append((setting["key"], setting["value"]))
            return pairs
        pairs = []
        if "APIKey" in schemes:
            key = self._api_key.get("APIKey")
            if key is not None:
                prefix = self.api_key_prefix.get("APIKey")
                pairs.append(("X-API-Key", f"{prefix} {key}" if prefix else key))
        if "OAuth" in schemes and self._access_token is not None:
            pairs.append(("Authorization", f"Bearer {self._access_token}"))
        return pairs

    # -- logging ----------------------------------------------------------------------------

    @property
    def debug(self) -> bool:
        """Log every request and answer at DEBUG, with credentials redacted."""
        return self._debug

    @debug.setter
    def debug(self, value: bool) -> None:
        value = bool(value)
        if value == self._debug:
            return
        self._debug = value
        if value:
            self._levels_before_debug = {n: lg.level for n, lg in self.logger.items()}
            for logger in self.logger.values():
                logger.setLevel(logging.DEBUG)
            if not self._has_handler():
                # With no handler anywhere, logging drops DEBUG records: show them on stderr.
                self.logger_stream_handler = logging.StreamHandler()
                self._attach(self.logger_stream_handler)
            return
        for name, logger in self.logger.items():
            logger.setLevel(self._levels_before_debug.get(name, logging.NOTSET))
        if self.logger_stream_handler is not None:
            self._detach(self.logger_stream_handler)
            self.logger_stream_handler = None

    @property
    def logger_file(self) -> Optional[str]:
        """A file to append the SDK's (and urllib3's) log records to."""
        return self._logger_file

    @logger_file.setter
    def logger_file(self, value: Optional[str]) -> None:
        # Only the handler this configuration opened is closed: a copy never owns one.
        if self.logger_file_handler is not None:
            self._detach(self.logger_file_handler)
            self.logger_file_handler.close()
            self.logger_file_handler = None
        self._logger_file = value
        if value:
            self.logger_file_handler = logging.FileHandler(value)
            self._attach(self.logger_file_handler)

    def _has_handler(self) -> bool:
        package_logger = self.logger["package_logger"]
        return has_real_handler(package_logger) or bool(logging.getLogger().handlers)

    def _attach(self, handler: logging.Handler) -> None:
        handler.setFormatter(logging.Formatter(self.logger_format))
        for logger in self.logger.values():
            logger.addHandler(handler)

    def _detach(self, handler: logging.Handler) -> None:
        for logger in self.logger.values():
            logger.removeHandler(handler)

    # -- defaults, copies, reports --------------------------------------------------------

    @classmethod
    def set_default(cls, default: Optional[Configuration]) -> None:
        """Make ``default`` the configuration used when none is given."""
        cls._default = default

    @classmethod
    def get_default(cls) -> Configuration:
        """The configuration used when none is given (created on first use, once)."""
        default = cls._default
        if default is None:
            with cls._default_lock:
                if cls._default is None:
                    cls._default = cls()
                default = cls._default
        return default

    @classmethod
    def get_default_copy(cls) -> Configuration:
        """A copy of the default configuration, to change without affecting it."""
        return copy.deepcopy(cls.get_default())

    def __deepcopy__(self, memo: Dict[int, Any]) -> Configuration:
        clone = copy.copy(self)
        memo[id(self)] = clone
        for name, value in vars(self).items():
            # Loggers are process-wide objects: share them, copy the rest.
            if name not in ("logger", "logger_stream_handler", "logger_file_handler"):
                setattr(clone, name, copy.deepcopy(value, memo))
        # The handlers stay attached (the loggers are shared) but belong to the original:
        # the copy must not detach or close them when its own debug or logger_file changes.
        clone.logger_stream_handler = None
        clone.logger_file_handler = None
        return clone

    def to_debug_report(self) -> str:
        """Versions and settings useful in a bug report; credentials shown only as set/unset."""
        import pydantic
        import urllib3

        api_key = self.api_key.get("APIKey")
        lines = [
            "Python SDK Debug Report:",
            f"OS: {platform.system()} {platform.release()}",
            f"Python Version: {sys.version.split()[0]}",
            f"Version of the API: {API_VERSION}",
            f"SDK Package Version: {__version__}",
            f"urllib3: {urllib3.__version__}, pydantic: {pydantic.VERSION}",  # type: ignore[attr-defined]
            f"Host: {self.host}",
            f"API key (X-API-Key): {REDACTED if api_key else 'not set'}",
            f"Access token (OAuth): {REDACTED if self.access_token else 'not set'}",
            f"Timeout: {self.timeout!r}, retries: {self.retries!r}",
            f"Proxy: {'set' if self.proxy else 'none'}, verify_ssl: {self.verify_ssl}",
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        fields: Iterable[Tuple[str, Any]] = (
            ("host", self.host),
            ("api_key", self.api_key),
            ("access_token", REDACTED if self.access_token else None),
            ("timeout", self.timeout),
            ("retries", self.retries),
            ("verify_ssl", self.verify_ssl),
        )
        return "Configuration(" + ", ".join(f"{k}={v!r}" for k, v in fields) + ")"
