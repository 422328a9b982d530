"""``ApiClient``: calls into HTTP requests (serialization, auth headers), answers into data or exceptions."""

from __future__ import annotations

import datetime
import functools
import json
import re
import threading
from enum import Enum
from typing import Any, ClassVar, Dict, Iterable, Mapping, Optional, Sequence, Tuple, Type, Union
from urllib.parse import quote

from kenar_api_client import rest
from kenar_api_client._http_values import checked_header, checked_header_names, merge_headers, query_value
from kenar_api_client._redact import scrub, scrub_data, scrub_headers
from kenar_api_client._version import __version__
from kenar_api_client.api_response import ApiResponse
from kenar_api_client.configuration import Configuration
from kenar_api_client.exceptions import (
    ApiException,
    ApiTypeError,
    ApiValueError,
    TooManyRequestsException,
    exception_class_for_status,
)
from kenar_api_client.retry import parse_retry_after

RequestSerialized = Tuple[str, str, Dict[str, str], Union[bytes, str, None]]

_LIST_TYPE = re.compile(r"^List\[(.+)\]$")
_DICT_TYPE = re.compile(r"^Dict\[str,\s*(.+)\]$")


class ApiClient:
    """The client every API class uses: one connection pool, shared by all its calls and threads.

    Use it as a context manager, or call ``close()``, to release the pooled connections.
    """

    _default: ClassVar[Optional[ApiClient]] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        configuration: Optional[Configuration] = None,
        header_name: Optional[str] = None,
        header_value: Optional[str] = None,
        cookie: Optional[str] = None,
    ) -> None:
        self.configuration: Configuration = (
            configuration if configuration is not None else Configuration.get_default()
        )
        self.rest_client: rest.RESTClientObject = rest.RESTClientObject(self.configuration)
        self.default_headers: Dict[str, str] = {}
        if header_name is not None:
            self.set_default_header(header_name, header_value)
        self.cookie = cookie
        self.user_agent = f"kenar-api-client/{__version__}/python"

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections; the client opens new ones if used again."""
        self.rest_client.close()

    def __repr__(self) -> str:
        return f"ApiClient(host={self.configuration.host!r})"

    @property
    def user_agent(self) -> str:
        """The User-Agent header sent with every request."""
        return self.default_headers["User-Agent"]

    @user_agent.setter
    def user_agent(self, value: str) -> None:
        self.set_default_header("User-Agent", value)

    def set_default_header(self, header_name: str, header_value: Any) -> None:
        """Send this header with every request of this client."""
        name, value = checked_header(header_name, header_value)
        self.default_headers = merge_headers(self.default_headers, {name: value})

    @classmethod
    def get_default(cls) -> ApiClient:
        """The client API classes use when given none (created on first use, once)."""
        default = cls._default
        if default is None:
            with cls._default_lock:
                if cls._default is None:
                    cls._default = cls()
                default = cls._default
        return default

    @classmethod
    def set_default(cls, default: Optional[ApiClient]) -> None:
        """Make ``default`` the client API classes use when given none."""
        cls._default = default

    # -- requests -----------------------------------------------------------------------

    def param_serialize(
        self,
        method: str,
        resource_path: str,
        path_params: Optional[Mapping[str, Any]] = None,
        query_params: Union[Sequence[Tuple[str, Any]], Mapping[str, Any], None] = None,
        header_params: Optional[Mapping[str, Any]] = None,
        body: Any = None,
        auth_settings: Optional[Sequence[str]] = None,
        _host: Optional[str] = None,
        _request_auth: Optional[Mapping[str, Any]] = None,
    ) -> RequestSerialized:
        """Build the method, URL, headers and body of a request, auth headers included.

        Header values are checked here: one with a line break (CR/LF) could smuggle extra
        headers into the request, so it is refused with ``ApiValueError`` before anything
        is sent.
        """
        headers = dict(self.default_headers)
        if header_params:
            headers.update(header_params)
        if self.cookie:
            headers["Cookie"] = self.cookie
        self._add_auth(headers, auth_settings, _request_auth)
        for name, value in headers.items():
            if (
                name not in checked_header_names
                or type(value) is not str
                or "\r" in value
                or "\n" in value
                or not value.isascii()
            ):
                headers[name] = checked_header(name, value)[1]

        if path_params:
            for name, value in path_params.items():
                resource_path = resource_path.replace("{" + name + "}", quote(query_value(value), safe=""))
        url = (_host or self.configuration.host) + resource_path
        if query_params:
            url += "?" + encode_query(
                query_params.items() if isinstance(query_params, Mapping) else query_params
            )
        return method, url, headers, self._serialize_body(body)

    def _add_auth(
        self,
        headers: Dict[str, Any],
        auth_settings: Optional[Sequence[str]],
        request_auth: Optional[Mapping[str, Any]],
    ) -> None:
        if request_auth is not None:
            settings: Sequence[Mapping[str, Any]] = (request_auth,)
        elif auth_settings:
            configured = self.configuration.auth_settings()
            settings = [configured[name] for name in auth_settings if name in configured]
        else:
            return
        for setting in settings:
            if setting.get("in") != "header":
                raise ApiValueError("Kenar's auth settings go in headers; got one that does not")
            headers[setting["key"]] = setting["value"]

    def _serialize_body(self, body: Any) -> Union[bytes, str, None]:
        if body is None or isinstance(body, (bytes, str)):
            return body
        serializer = getattr(body, "__pydantic_serializer__", None)
        if serializer is not None:
            # Straight to UTF-8 JSON bytes: no intermediate dict, no \\u escapes. Without None
            # values, as the official client sends its to_dict(): a None field is not sent.
            return serializer.to_json(body, by_alias=True, exclude_none=True)  # type: ignore[no-any-return]
        # allow_nan=False: NaN and Infinity are not JSON, and a server would refuse the body.
        return json.dumps(
            self.sanitize_for_serialization(body), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Optional[Dict[str, str]] = None,
        body: Union[bytes, str, None] = None,
        _request_timeout: rest.RequestTimeout = None,
        _preload_content: bool = True,
    ) -> rest.RESTResponse:
        """Send a serialized request and return the answer, whatever its status."""
        return self.rest_client.request(
            method,
            url,
            headers=header_params,
            body=body,
            _request_timeout=_request_timeout,
            _preload_content=_preload_content,
        )

    # -- answers ------------------------------------------------------------------------

    def response_deserialize(
        self,
        response_data: rest.RESTResponse,
        response_types_map: Optional[Mapping[str, Optional[str]]] = None,
    ) -> ApiResponse[Any]:
        """The ``ApiResponse`` of a 2xx answer; any other status raises its ``ApiException``."""
        try:
            raw = response_data.read()
        except rest._TRANSPORT_ERRORS as error:
            raise rest.transport_exception(error, "reading", "the response body") from error
        status = response_data.status
        if not 200 <= status <= 299:
            raise self._error_for(response_data, raw)

        response_type = None
        if response_types_map:
            response_type = response_types_map.get(str(status), response_types_map.get("2XX"))
        if response_type is None or response_type == "bytearray":
            data: Any = raw if response_type else None
        else:
            content_type = response_data.getheader("Content-Type") if response_type == "str" else None
            try:
                data = self.deserialize(raw, response_type, content_type)
            except (ValueError, TypeError, AttributeError, RecursionError) as error:  # not the expected shape
                secrets = self.rest_client.secrets(response_data.request_headers)
                reason = f"{response_data.reason}, but the body is not valid JSON ({error})"
                raise ApiException(
                    status=status,
                    reason=scrub(reason, secrets),
                    body=scrub(raw.decode("utf-8", "replace"), secrets),
                    headers=scrub_headers(response_data.getheaders(), secrets),
                ) from error
        return ApiResponse(status_code=status, headers=response_data.getheaders(), data=data, raw_data=raw)

    def _error_for(self, response: rest.RESTResponse, raw: bytes) -> ApiException:
        # Scrubbed of the credentials this request was sent with: a server may echo them in
        # the reason, the body or a header, and they need not be the configured ones (a
        # per-call _request_auth or _headers, a token replaced since).
        secrets = self.rest_client.secrets(response.request_headers)
        body = scrub(raw.decode("utf-8", "replace"), secrets)
        status_model = None
        try:
            document = scrub_data(json.loads(body), secrets)
        except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
            document = None
        if isinstance(document, dict) and ("code" in document or "message" in document):
            from pydantic import ValidationError

            from kenar_api_client.models.google_rpc_status import GoogleRpcStatus

            try:
                status_model = GoogleRpcStatus.from_dict(document)
            except (ValidationError, RecursionError):
                status_model = None
        exception_class = exception_class_for_status(response.status)
        kwargs: Dict[str, Any] = {}
        if exception_class is TooManyRequestsException:
            kwargs["retry_after"] = parse_retry_after(response.getheader("Retry-After"))
        return exception_class(
            status=response.status,
            reason=scrub(response.reason or "", secrets),
            body=body,
            data=status_model,
            headers=scrub_headers(response.getheaders(), secrets),
            **kwargs,
        )

    def deserialize(
        self,
        response_text: Union[str, bytes],
        response_type: str,
        content_type: Optional[str] = None,
    ) -> Any:
        """Parse a body as ``response_type`` (``"object"``, a model name, ``"List[...]"``...)."""
        if response_type == "str" and not _is_json(content_type):
            return response_text.decode("utf-8") if isinstance(response_text, bytes) else response_text
        if not response_text.strip():
            return None
        return self._deserialize_value(json.loads(response_text), response_type)

    def _deserialize_value(self, data: Any, klass: Union[str, Type[Any]]) -> Any:
        if data is None or klass == "object":
            return data
        if isinstance(klass, str):
            list_match = _LIST_TYPE.match(klass)
            if list_match:
                return [self._deserialize_value(item, list_match.group(1)) for item in data]
            dict_match = _DICT_TYPE.match(klass)
            if dict_match:
                return {k: self._deserialize_value(v, dict_match.group(1)) for k, v in data.items()}
            primitive = _PRIMITIVES.get(klass)
            if primitive is not None:
                return primitive(data)
            import kenar_api_client.models

            klass = getattr(kenar_api_client.models, klass)
        model_class: Any = klass
        from_dict = getattr(model_class, "from_dict", None)
        return from_dict(data) if from_dict is not None else model_class(data)

    def sanitize_for_serialization(self, obj: Any) -> Any:
        """``obj`` as JSON-ready Python data: models, enums, datetimes, lists, tuples, dicts."""
        if obj is None or isinstance(obj, (str, int, float, bool)):
            return obj.value if isinstance(obj, Enum) else obj
        if isinstance(obj, Enum):
            return self.sanitize_for_serialization(obj.value)
        if isinstance(obj, (datetime.datetime, datetime.date)):
            return obj.isoformat()
        if isinstance(obj, (list, tuple)):
            return [self.sanitize_for_serialization(item) for item in obj]
        if isinstance(obj, dict):
            return {str(k): self.sanitize_for_serialization(v) for k, v in obj.items()}
        to_dict = getattr(obj, "to_dict", None)
        if callable(to_dict):
            return self.sanitize_for_serialization(to_dict())
        raise ApiTypeError(f"cannot serialize a {type(obj).__name__} to JSON")


@functools.lru_cache(maxsize=256)
def _quote_name(name: str) -> str:
    return quote(name, safe="")


def encode_query(items: Iterable[Tuple[str, Any]]) -> str:
    """``name=value&...`` percent-encoding every reserved character and all non-ASCII as UTF-8.

    ``+`` and ``&`` in a value stay data (``%2B``, ``%26``): servers read ``+`` as a space.
    """
    parts = []
    for name, value in items:
        if value is None:
            continue
        if type(value) is not str:
            value = query_value(value)
        parts.append(f"{_quote_name(name)}={quote(value, safe='')}")
    return "&".join(parts)


def _is_json(content_type: Optional[str]) -> bool:
    return content_type is None or "json" in content_type.lower()


def _parse_datetime(value: str) -> datetime.datetime:
    from dateutil.parser import isoparse

    return isoparse(value)


def _parse_date(value: str) -> datetime.date:
    return _parse_datetime(value).date()


_PRIMITIVES: Dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "datetime": _parse_datetime,
    "date": _parse_date,
}
