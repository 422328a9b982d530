"""Names as OpenAPI Generator 7.13 (python) derives them, quirks included, so ours match its."""

from __future__ import annotations

import keyword
import re

_UPPER_RUN = re.compile(r"([A-Z]+)([A-Z][a-z][a-z]+)")
_LOWER_UPPER = re.compile(r"([a-z\d])([A-Z])")
_NON_WORD = re.compile(r"[^A-Za-z0-9_]")

#: Field names the generator prefixes with ``var_`` (kept on the wire through an alias).
RESERVED_FIELD_NAMES = frozenset(
    {"date", "schema", "float", "int", "str", "bool", "bytes", "dict", "list", "object", "property"}
)


def camelize(name: str) -> str:
    """``open_platformpostPostState`` -> ``OpenPlatformpostPostState`` (class names)."""
    parts = _NON_WORD.sub("_", name).split("_")
    return "".join(part[:1].upper() + part[1:] for part in parts if part)


def underscore(name: str) -> str:
    """``FinderGetUserIDByPhone`` -> ``finder_get_user_idby_phone`` (module and method names)."""
    name = _UPPER_RUN.sub(r"\1_\2", name)
    name = _LOWER_UPPER.sub(r"\1_\2", name)
    return name.replace("-", "_").lower()


def class_name(schema_name: str) -> str:
    """The model class of a schema."""
    return camelize(schema_name)


def module_name(class_or_tag: str) -> str:
    """The module holding a model class (``ChatapiMessage`` -> ``chatapi_message``)."""
    return underscore(class_or_tag)


def method_name(operation_id: str) -> str:
    """The method of an operation (``Assets_GetOAuthScopes`` -> ``assets_get_o_auth_scopes``)."""
    return underscore(camelize(operation_id))


def api_class_name(tag: str) -> str:
    """The API class of a tag (``ChatAPI`` -> ``ChatAPIApi``)."""
    return camelize(tag) + "Api"


def api_module_name(tag: str) -> str:
    """The module of a tag's API class (``PaymentTicket`` -> ``payment_ticket_api``)."""
    return underscore(camelize(tag)) + "_api"


def field_name(property_name: str) -> str:
    """The Python attribute of a schema property (``@type`` -> ``type``, ``date`` -> ``var_date``)."""
    name = _NON_WORD.sub("", property_name)
    name = underscore(name)
    if keyword.iskeyword(name) or name in RESERVED_FIELD_NAMES:
        name = "var_" + name
    return name
