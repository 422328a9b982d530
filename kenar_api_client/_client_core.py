"""What the sync and the async client share: settings, default headers, building a request, the pipeline.

No I/O happens here. A call is built into a ``Request`` (arguments checked, values
serialized, configured credentials set), then runs through one pipeline, a generator
that the client's driver performs: the ``Auth`` (which may add a per-call token and send
again after a 401) → sending with the retry policy (``_retrying``) → what the answer
means (``_answers``). ``ApiClient`` drives it with urllib3 in the calling thread,
``AsyncApiClient`` with httpx on the event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

from typing_extensions import Literal

from kenar_api_client import _retrying
from kenar_api_client._answers import api_response
from kenar_api_client._http_values import checked_header, checked_header_names, merge_headers
from kenar_api_client._operation import OPTION_NAMES
from kenar_api_client._redact import SecretHeaders, call_secrets
from kenar_api_client._request import Request
from kenar_api_client._serialize import body_bytes, encode_query, path_segment
from kenar_api_client._transport_settings import TransportSettings, to_timeout
from kenar_api_client._version import __version__
from kenar_api_client.auth import Auth
from kenar_api_client.configuration import Configuration
from kenar_api_client.exceptions import ApiTypeError, ApiValueError

if TYPE_CHECKING:
    from kenar_api_client._operation import Operation
    from kenar_api_client._steps import Flow
    from kenar_api_client._transport import Answer

#: What a call returns: the answer's data, the whole ``ApiResponse``, or the transport's
#: answer unread (the ``*_without_preload_content`` methods).
Result = Literal["data", "http_info", "unread"]

RequestSerialized = Tuple[str, str, Dict[str, str], Union[bytes, str, None]]


class ClientCore:
    """Configuration, default headers and auth of a client, and the pipeline its calls run through."""

    #: Whether debug lines show bodies.
    log_bodies = True

    def __init__(
        self,
        configuration: Optional[Configuration] = None,
        header_name: Optional[str] = None,
        header_value: Optional[str] = None,
        cookie: Optional[str] = None,
        *,
        auth: Optional[Auth] = None,
        settings: Optional[TransportSettings] = None,
    ) -> None:
        self.configuration: Configuration = (
            configuration if configuration is not None else Configuration.get_default()
        )
        #: The transport settings, checked once (a bad one fails here, naming itself).
        self.settings: TransportSettings = (
            settings if settings is not None else TransportSettings(self.configuration)
        )
        self.retry_policy = _retrying.RetryPolicy(self.settings.retry)
        #: Decides the credentials of each call beyond the configured ones.
        self.auth: Auth = auth if auth is not None else Auth()
        self.default_headers: Dict[str, str] = {}
        if header_name is not None:
            self.set_default_header(header_name, header_value)
        self.cookie = cookie
        self.user_agent = f"kenar-api-client/{__version__}/python"

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

    def secrets(self, request_headers: Optional[Mapping[str, Any]]) -> List[str]:
        """What no exception or log line of a call with these headers may show."""
        return call_secrets(self.configuration, self.settings.proxy_secrets, request_headers)

    # -- building a request (no I/O) --------------------------------------------------------

    def build_request(
        self, operation: Operation, args: Dict[str, Any], options: Mapping[str, Any], *, preload: bool = True
    ) -> Request:
        """The request for one call of ``operation``: checked, serialized, configured credentials set.

        Raises ``pydantic.ValidationError`` for an invalid argument and ``ApiValueError`` /
        ``ApiTypeError`` for an invalid option or header, before anything is sent.
        """
        if options:
            if not options.keys() <= OPTION_NAMES:
                unknown = ", ".join(sorted(options.keys() - OPTION_NAMES))
                raise ApiTypeError(f"{operation.name}() got unexpected keyword arguments: {unknown}")
            if options.get("_host_index", 0) != 0:
                raise ApiValueError(
                    f"_host_index must be 0: Kenar has one server, got {options['_host_index']!r}"
                )
        if self.configuration.client_side_validation:
            args = operation.validate(args)

        headers: Dict[str, Any] = {"Accept": operation.accept}
        content_type = options.get("_content_type") or operation.content_type
        if content_type:
            headers["Content-Type"] = content_type
        extra_headers = options.get("_headers")
        if extra_headers:
            headers = merge_headers(headers, extra_headers)
        request_auth = options.get("_request_auth")
        try:
            method, url, sent_headers, body = self.param_serialize(
                operation.method,
                operation.path,
                path_params=operation.path_values(args),
                query_params=operation.query_string(args),
                header_params=headers,
                body=operation.body(args),
                auth_settings=operation.auth,
                _request_auth=request_auth,
            )
        except ValueError as error:
            if isinstance(error, ApiValueError):
                raise
            # A lone surrogate in a string (UnicodeEncodeError), or a body value that cannot
            # be written as JSON (PydanticSerializationError): name the argument and the field.
            unsendable = operation.unsendable_error(args, error)
            if unsendable is None:
                raise
            raise unsendable from error

        timeout_option = options.get("_request_timeout")
        if timeout_option is None:
            timeout, pool_timeout = self.settings.timeout, self.settings.pool_timeout
        else:
            timeout, pool_timeout = to_timeout(timeout_option, "_request_timeout")
        oauth = request_auth is None and "OAuth" in operation.auth
        return Request(method, url, sent_headers, body, timeout, pool_timeout, preload, oauth)

    def param_serialize(
        self,
        method: str,
        resource_path: str,
        path_params: Optional[Mapping[str, Any]] = None,
        query_params: Union[Sequence[Tuple[str, Any]], Mapping[str, Any], str, None] = None,
        header_params: Optional[Mapping[str, Any]] = None,
        body: Any = None,
        auth_settings: Optional[Sequence[str]] = None,
        _host: Optional[str] = None,
        _request_auth: Optional[Mapping[str, Any]] = None,
    ) -> RequestSerialized:
        """Build the method, URL, headers and body of a request, auth headers included.

        ``query_params`` are ``(name, value)`` pairs or a mapping, encoded here, or a query
        string already encoded (what the generated operations pass).

        Header values are checked here: one with a line break (CR/LF) could smuggle extra
        headers into the request, so it is refused with ``ApiValueError`` before anything
        is sent. A path parameter that would not stay one segment (empty, ``.``, ``..``)
        is refused the same way, naming it.
        """
        headers = SecretHeaders(self.default_headers)
        if header_params:
            headers.update(header_params)
        if self.cookie:
            headers["Cookie"] = self.cookie
        if _request_auth is not None:
            if _request_auth.get("in") != "header":
                raise ApiValueError("Kenar's auth settings go in headers; got one that does not")
            headers[_request_auth["key"]] = _request_auth["value"]
        elif auth_settings:
            for name, value in self.configuration.auth_headers(auth_settings):
                headers[name] = value
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
                resource_path = resource_path.replace("{" + name + "}", path_segment(name, value))
        url = (_host or self.configuration.host) + resource_path
        if query_params:
            if isinstance(query_params, str):
                url += "?" + query_params
            else:
                url += "?" + encode_query(
                    query_params.items() if isinstance(query_params, Mapping) else query_params
                )
        return method, url, headers, body_bytes(body)

    # -- the pipeline (no I/O: it yields steps its driver performs) ----------------------------

    def pipeline(
        self, request: Request, response_types: Optional[Mapping[str, Optional[str]]], result: Result
    ) -> Flow[Any]:
        """Auth → send with retries → what the answer means: the call's result, or its exception."""
        auth = self.auth
        if type(auth) is Auth:  # nothing to decide per call: send as built
            answer = yield from _retrying.send(request, self.retry_policy, self.secrets, self.log_bodies)
        else:
            answer = yield from auth.auth_flow(request, self.send_flow)
        if result == "unread":
            return answer.response
        response = api_response(answer, response_types, self.secrets)
        return response.data if result == "data" else response

    def send_flow(self, request: Request) -> Flow[Answer]:
        """Send ``request`` as the retry policy allows; ends with the final answer."""
        return _retrying.send(request, self.retry_policy, self.secrets, self.log_bodies)
