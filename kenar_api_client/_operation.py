"""Declaring an API operation once: its HTTP shape, its parameters and how they are checked."""

from __future__ import annotations

import importlib
from typing import (
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
from urllib.parse import quote

from typing_extensions import Literal, TypedDict

from kenar_api_client._http_values import query_value


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

    __slots__ = (
        "_type",
        "enum_values",
        "kind",
        "location",
        "many",
        "name",
        "quoted_name",
        "required",
        "type_name",
    )

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
        #: The name as it is written in a query string.
        self.quoted_name = quote(name, safe="")
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
    the operations whose spec security names it). What Kenar checks, the API key's
    permissions and the token's scopes, is in one generated table:
    ``kenar_api_client.security`` reads it.
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
    ) -> None:
        self.name = name
        self.method = method
        self.path = path
        self.params: Tuple[Param, ...] = tuple(params)
        self.response_types: Dict[str, Optional[str]] = dict(response_types)
        self.content_type = content_type
        self.accept = accept
        self.auth = auth
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
        validated = self._validator.model_validate(args)
        values = {p.name: getattr(validated, p.name) for p in self.params}
        from kenar_api_client.models._base import raise_unknown_fields

        for param in self.params:
            if param.kind == "model" and not isinstance(args[param.name], param.type):
                raise_unknown_fields(self.name, (param.name,), values[param.name])
        return values

    def unsendable_error(self, args: Mapping[str, Any], error: ValueError) -> Optional[Exception]:
        """The ``pydantic.ValidationError`` naming the argument (and the field in it) that could not
        be written; None if no argument explains ``error``."""
        from pydantic import ValidationError

        from kenar_api_client._serialize import unsendable_location

        culprit = self._body_param
        path: Tuple[Union[str, int], ...] = ()
        reason = str(error)
        for param in self._query_params:
            value = args[param.name]
            if isinstance(value, str) and not _encodable(value):
                culprit = param
                reason = "contains a lone surrogate, which UTF-8 cannot encode"
                break
        else:
            if culprit is not None:
                found = unsendable_location(args[culprit.name])
                if found is not None:
                    path, reason = found
        if culprit is None:
            return None
        return ValidationError.from_exception_data(
            self.name,
            [
                {
                    "type": "value_error",
                    "loc": (culprit.name, *path),
                    "input": args[culprit.name],
                    "ctx": {"error": ValueError(f"cannot be sent: {reason}")},
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

    def query_string(self, args: Mapping[str, Any]) -> str:
        """The encoded query (``name=value&...``), as ``encode_query`` writes :meth:`query`."""
        parts: List[str] = []
        for p in self._query_params:
            value = args[p.name]
            if value is None:
                continue
            for item in value if p.many else (value,):
                if item is not None:
                    text = item if type(item) is str else query_value(item)
                    parts.append(f"{p.quoted_name}={quote(text, safe='')}")
        return "&".join(parts)

    def path_values(self, args: Mapping[str, Any]) -> Optional[Dict[str, Any]]:
        """The path parameters by name, or None when the path has none."""
        if not self._path_params:
            return None
        return {p.name: args[p.name] for p in self._path_params}

    def body(self, args: Mapping[str, Any]) -> Any:
        """The request body, or None when the operation has none."""
        return None if self._body_param is None else args[self._body_param.name]


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
