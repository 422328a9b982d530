"""``ApiClient``: runs calls through the request pipeline over urllib3, in the calling thread."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, ClassVar, Dict, Mapping, Optional, Union

from kenar_api_client import _answers, _serialize, rest
from kenar_api_client._client_core import ClientCore, RequestSerialized, Result
from kenar_api_client._drive import run
from kenar_api_client._redact import SecretHeaders
from kenar_api_client._request import Request
from kenar_api_client._transport_settings import to_timeout
from kenar_api_client.api_response import ApiResponse

if TYPE_CHECKING:
    from kenar_api_client._operation import Operation
    from kenar_api_client.auth import Auth
    from kenar_api_client.configuration import Configuration

__all__ = ["ApiClient", "RequestSerialized", "encode_query"]

#: Re-exported for code written against the generated client's module layout.
encode_query = _serialize.encode_query


class ApiClient(ClientCore):
    """The client every API class uses: one connection pool, shared by all its calls and threads.

    Use it as a context manager, or call ``close()``, to release the pooled connections.
    ``auth`` (see :mod:`kenar_api_client.auth`) decides per-call credentials beyond the
    configured ones; ``transport`` shares another client's connection pool.
    """

    _default: ClassVar[Optional[ApiClient]] = None
    _default_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        configuration: Optional[Configuration] = None,
        header_name: Optional[str] = None,
        header_value: Optional[str] = None,
        cookie: Optional[str] = None,
        *,
        auth: Optional[Auth] = None,
        transport: Optional[rest.RESTClientObject] = None,
    ) -> None:
        super().__init__(
            configuration,
            header_name,
            header_value,
            cookie,
            auth=auth,
            settings=transport.settings if transport is not None else None,
        )
        #: The urllib3 transport (connection pools); shared by the clients made from this one.
        self.rest_client: rest.RESTClientObject = (
            transport if transport is not None else rest.RESTClientObject(self.configuration, self.settings)
        )

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections; the client opens new ones if used again."""
        self.rest_client.close()

    def __repr__(self) -> str:
        return f"ApiClient(host={self.configuration.host!r})"

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

    # -- calls ------------------------------------------------------------------------------

    def invoke(
        self, operation: Operation, args: Dict[str, Any], options: Mapping[str, Any], result: Result = "data"
    ) -> Any:
        """One call of ``operation``: its data, its ``ApiResponse`` or its unread answer, by ``result``."""
        request = self.build_request(operation, args, options, preload=result != "unread")
        return run(self.pipeline(request, operation.response_types, result), self.rest_client)

    # -- the generated client's lower-level surface -------------------------------------------

    def call_api(
        self,
        method: str,
        url: str,
        header_params: Optional[Dict[str, str]] = None,
        body: Union[bytes, str, None] = None,
        _request_timeout: rest.RequestTimeout = None,
        _preload_content: bool = True,
    ) -> rest.RESTResponse:
        """Send a serialized request (see ``param_serialize``) and return the answer, whatever its status."""
        if _request_timeout is None:
            timeout, pool_timeout = self.settings.timeout, self.settings.pool_timeout
        else:
            timeout, pool_timeout = to_timeout(_request_timeout, "_request_timeout")
        request = Request(
            method,
            url,
            SecretHeaders(header_params or {}),
            body,
            timeout,
            pool_timeout,
            preload=_preload_content,
            oauth=True,
        )
        answer: Any = run(self.auth.auth_flow(request, self.send_flow), self.rest_client)
        response: rest.RESTResponse = answer
        return response

    def response_deserialize(
        self,
        response_data: rest.RESTResponse,
        response_types_map: Optional[Mapping[str, Optional[str]]] = None,
    ) -> ApiResponse[Any]:
        """The ``ApiResponse`` of a 2xx answer; any other status raises its ``ApiException``."""
        response_data.read()
        return _answers.api_response(response_data, response_types_map, self.secrets)

    def deserialize(
        self,
        response_text: Union[str, bytes],
        response_type: str,
        content_type: Optional[str] = None,
    ) -> Any:
        """Parse a body as ``response_type`` (``"object"``, a model name, ``"List[...]"``...)."""
        return _answers.deserialize(response_text, response_type, content_type)

    def sanitize_for_serialization(self, obj: Any) -> Any:
        """``obj`` as JSON-ready Python data: models, enums, datetimes, lists, tuples, dicts."""
        return _serialize.sanitize(obj)
