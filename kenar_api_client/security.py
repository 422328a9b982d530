"""What operations need: the app's API key permissions and the user's OAuth scopes, from the spec.

Use it to ask the user for the right consent: ``oauth_scopes_for`` gives the scopes to request
in the authorization URL for the operations an app calls, with resource-bound scopes
(``POST_EDIT.<post_token>``) filled in.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from kenar_api_client._operation_security import OPERATION_SECURITY
from kenar_api_client.exceptions import ApiValueError

OperationRef = Union[str, Callable[..., Any]]
_VARIANT_SUFFIXES = ("_with_http_info", "_without_preload_content")


def _name(operation: OperationRef) -> str:
    name = operation if isinstance(operation, str) else getattr(operation, "__name__", "")
    for suffix in _VARIANT_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    if name not in OPERATION_SECURITY:
        raise ApiValueError(f"unknown operation {operation!r}: name an API method, e.g. 'finder_get_user2'")
    return name


def permissions_for(*operations: OperationRef) -> List[str]:
    """The API key permissions the operations need, sorted and without repeats."""
    return sorted({p for op in operations for p in OPERATION_SECURITY[_name(op)][0]})


def scope_choices(operation: OperationRef) -> Tuple[str, ...]:
    """The OAuth scopes of which the operation needs any one (empty: no access token needed)."""
    return OPERATION_SECURITY[_name(operation)][1]


def oauth_scopes_for(
    *operations: OperationRef, resource_ids: Optional[Mapping[str, str]] = None
) -> List[str]:
    """One scope per operation that needs one (its first choice), to request from the user.

    A scope bound to a resource (``POST_EDIT.post_token``) is written with the id given in
    ``resource_ids`` (``{"post_token": "wZ3kT9pQ"}`` gives ``POST_EDIT.wZ3kT9pQ``);
    a missing id raises ``ApiValueError`` (a ``ValueError``) naming it.
    """
    ids: Dict[str, str] = dict(resource_ids or {})
    chosen: List[str] = []
    for operation in operations:
        choices = scope_choices(operation)
        if not choices:
            continue
        base, _, resource = choices[0].partition(".")
        if resource and resource not in ids:
            raise ApiValueError(
                f"{_name(operation)} needs the scope {choices[0]}: pass resource_ids={{{resource!r}: ...}}"
            )
        scope = f"{base}.{ids[resource]}" if resource else base
        if scope not in chosen:
            chosen.append(scope)
    return chosen
