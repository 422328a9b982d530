"""Declaring an API operation once: its HTTP shape, its parameters and how they are checked."""

from __future__ import annotations

import importlib
from typing import (
    TYPE_CHECKING,
    Any,
    Dict,
    FrozenSet,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from typing_extensions import Literal, TypedDict

from kenar_api_client._http_values import merge_headers
from kenar_api_client.exceptions import ApiTypeError, ApiValueError

if TYPE_CHECKING:
    import urllib3

    from kenar_api_client.api_client import ApiClient
    from kenar_api_client.api_response import ApiResponse
    from kenar_api_client.rest import RESTResponse


class RequestOptions(TypedDict, total=False):
    """Per-call options every API method accepts, as in the generated clients."""

    #: Seconds: one number, or a (connect, read) pair. Default: ``Configuration.timeout``.
    _request_timeout: Union[float, Tuple[float, float], None]
    #: Use this one auth setting instead of the configured ones, e.g.
    #: ``{"in": "header", "type": "api_key", "key": "X-API-Key", "value": "..."}``.
    _request_auth: Optional[Dict[str, Any]]
    #: Override the request's Content-Type.
    _content_type: Optional[str]
    #: Extra request headers.
    _headers: Optional[Dict[str, Any]]
    #: Index of the server to use; Kenar has one, so only 0.
    _host_index: int


OPTION_NAMES = frozenset(RequestOptions.__annotations__)

ParamKind = Literal["str", "int", "enum", "model", "dict"]
_SCALAR_TYPES = {"str": str, "int": int, "dict": dict}


class Param:
    """One operation parameter: where it travels and what it must be.

    ``many`` makes it a list, sent in a query as the name repeated once per item.
    """

    __slots__ = ("_type", "enum_values", "kind", "location", "many", "name", "required", "type_name")

    def __init__(
        self,
        name: str,
        kind: ParamKind,
        location: Literal["path", "query", "body"],
        *,
        type_name: Optional[str] = None,
        required: bool = False,
        many: bool = False,
        enum_values: Tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.kind = kind
        self.location = location
        self.type_name = type_name
        self.required = required
        self.many = many
        self._type: Any = _SCALAR_TYPES.get(kind)
        # An enum's values, so that checking a string needs no model import.
        self.enum_values: FrozenSet[str] = frozenset(enum_values)

    @property
    def type(self) -> Any:
        """The Python type of one value; an enum or model class is imported on first use."""
        if self._type is None:
            models = importlib.import_module("kenar_api_client.models")
            self._type = getattr(models, str(self.type_name))
        return self._type

    def accepts(self, value: Any) -> bool:
        """A quick check that ``value`` is valid as it is; False sends it to pydantic."""
        if value is None:
            return not self.required
        if self.many:
            return type(value) is list and all(self._accepts_one(item) for item in value)
        return self._accepts_one(value)

    def _accepts_one(self, value: Any) -> bool:
        if self.kind in _SCALAR_TYPES:
            return type(value) is self._type
        if self.kind == "enum":
            return isinstance(value, str) and value in self.enum_values
        return isinstance(value, self.type)

    def annotation(self) -> Any:
        """The pydantic annotation that explains why a value was refused."""
        from pydantic import StrictInt, StrictStr

        base: Any = {"str": StrictStr, "int": StrictInt, "dict": Dict[str, Any]}.get(self.kind) or self.type
        if self.many:
            base = List[base]
        return base if self.required else Optional[base]


class Operation:
    """An API operation: method, path, parameters, accepted answers and security.

    ``auth`` names the configured credentials the call sends (``APIKey``, and ``OAuth`` for
    the operations whose spec security names it); ``permissions`` (of the API key) and
    ``scopes`` (of the OAuth token, any of them) document what Kenar checks.
    """

    def __init__(
        self,
        name: str,
        method: str,
        path: str,
        params: Sequence[Param],
        response_types: Mapping[str, Optional[str]],
        *,
        content_type: Optional[str] = None,
        accept: str = "application/json",
        auth: Tuple[str, ...] = ("APIKey",),
        permissions: Tuple[str, ...] = (),
        scopes: Tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.method = method
        self.path = path
        self.params: Tuple[Param, ...] = tuple(params)
        self.response_types: Dict[str, Optional[str]] = dict(response_types)
        self.content_type = content_type
        self.accept = accept
        self.auth = auth
        self.permissions = permissions
        self.scopes = scopes
        self._path_params = tuple(p for p in self.params if p.location == "path")
        self._query_params = tuple(p for p in self.params if p.location == "query")
        body = [p for p in self.params if p.location == "body"]
        self._body_param = body[0] if body else None
        self._validator: Any = None

    def validate(self, args: Dict[str, Any]) -> Dict[str, Any]:
        """``args``, checked; values pydantic can convert (a dict for a model) are converted.

        A dict given for a model must use only the model's keys, nested dicts included: Kenar
        ignores keys it does not know, so a misspelt one would be dropped silently (a
        misspelt ``event_resource_id`` subscribes to every post). Raises
        ``pydantic.ValidationError`` naming each wrong argument.
        """
        for param in self.params:
            if not param.accepts(args[param.name]):
                break
        else:
            return args
        if self._validator is None:
            from pydantic import create_model

            fields: Dict[str, Any] = {
                p.name: (p.annotation(), ... if p.required else None) for p in self.params
            }
            self._validator = create_model(self.name, **fields)
        from pydantic import ValidationError

        from kenar_api_client._call_title import retitled
        from kenar_api_client.models._base import raise_unknown_fields

        try:
            validated = self._validator.model_validate(args)
            values = {p.name: getattr(validated, p.name) for p in self.params}
            for param in self.params:
                if param.kind == "model" and not isinstance(args[param.name], param.type):
                    raise_unknown_fields(self.name, (param.name,), values[param.name])
        except ValidationError as error:  # titled as the official client's: FinderApi.finder_get_user
            raise retitled(error, self.name) from None
        return values

    def _unsendable(self, args: Mapping[str, Any], error: ValueError) -> Optional[Exception]:
        """The ``pydantic.ValidationError`` naming the argument that could not be encoded."""
        from pydantic import ValidationError

        culprit = self._body_param
        for param in self._query_params:
            value = args[param.name]
            if isinstance(value, str) and not _encodable(value):
                culprit = param
                break
        if culprit is None:
            return None
        from kenar_api_client._call_title import call_title

        return ValidationError.from_exception_data(
            call_title(self.name),
            [
                {
                    "type": "value_error",
                    "loc": (culprit.name,),
                    "input": args[culprit.name],
                    "ctx": {"error": ValueError(f"cannot be sent: {error}")},
                }
            ],
        )

    def query(self, args: Mapping[str, Any]) -> List[Tuple[str, Any]]:
        """The query parameters that have a value, in declaration order; a list repeats its name."""
        pairs: List[Tuple[str, Any]] = []
        for p in self._query_params:
            value = args[p.name]
            if value is None:
                continue
            if p.many:
                pairs.extend((p.name, item) for item in value)
            else:
                pairs.append((p.name, value))
        return pairs

    def path_values(self, args: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
        """The path parameters by name, or None when the path has none."""
        if not self._path_params:
            return None
        return {p.name: args[p.name] for p in self._path_params}

    def body(self, args: Mapping[str, Any]) -> Any:
        """The request body, or None when the operation has none."""
        return None if self._body_param is None else args[self._body_param.name]

    def invoke(
        self,
        api_client: ApiClient,
        args: Dict[str, Any],
        options: Mapping[str, Any],
        *,
        preload_content: bool = True,
    ) -> RESTResponse:
        """Check, serialize and send one call; the answer is not yet interpreted."""
        if options and not options.keys() <= OPTION_NAMES:
            unknown = ", ".join(sorted(options.keys() - OPTION_NAMES))
            raise ApiTypeError(f"{self.name}() got unexpected keyword arguments: {unknown}")
        if options.get("_host_index", 0) != 0:
            raise ApiValueError(
                f"_host_index must be 0: Kenar has one server, got {options['_host_index']!r}"
            )
        if api_client.configuration.client_side_validation:
            args = self.validate(args)

        headers: Dict[str, Any] = {"Accept": self.accept}
        content_type = options.get("_content_type") or self.content_type
        if content_type:
            headers["Content-Type"] = content_type
        extra_headers = options.get("_headers")
        if extra_headers:
            headers = merge_headers(headers, extra_headers)

        try:
            method, url, headers, body = api_client.param_serialize(
                self.method,
                self.path,
                path_params=self.path_values(args),
                query_params=self.query(args),
                header_params=headers,
                body=self.body(args),
                auth_settings=self.auth,
                _request_auth=options.get("_request_auth"),
            )
        except ValueError as error:
            if isinstance(error, ApiValueError):
                raise
            # A lone surrogate in a string (UnicodeEncodeError), or a body value that cannot
            # be written as JSON (PydanticSerializationError): name the argument.
            unsendable = self._unsendable(args, error)
            if unsendable is None:
                raise
            raise unsendable from error
        return api_client.call_api(
            method,
            url,
            headers,
            body,
            _request_timeout=options.get("_request_timeout"),
            _preload_content=preload_content,
        )

    def call_with_http_info(
        self, api_client: ApiClient, args: Dict[str, Any], options: Mapping[str, Any]
    ) -> ApiResponse[Any]:
        """Send one call and interpret the answer: an ``ApiResponse``, or the error it raises."""
        return api_client.response_deserialize(self.invoke(api_client, args, options), self.response_types)

    def call(self, api_client: ApiClient, args: Dict[str, Any], options: Mapping[str, Any]) -> Any:
        """Send one call and return the answer's data."""
        return self.call_with_http_info(api_client, args, options).data

    def call_without_preload_content(
        self, api_client: ApiClient, args: Dict[str, Any], options: Mapping[str, Any]
    ) -> urllib3.BaseHTTPResponse:
        """Send one call and return the unread urllib3 response, status unchecked."""
        return self.invoke(api_client, args, options, preload_content=False).response


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
