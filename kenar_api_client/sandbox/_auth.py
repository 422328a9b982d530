"""Who may call an operation: the API key and its permissions, the access token and its scopes.

What each operation needs is read from ``kenar_api_client._operation_security``, the table
generated from the spec, so every operation is checked as the spec declares it. A scope
bound to a resource (``POST_EDIT.post_token``) is checked, and named in a refusal, with the
id of the resource the call is about (``POST_EDIT.wZ3kT9pQ``).
"""

from __future__ import annotations

from email.message import Message
from typing import Collection, List, Mapping, Optional

from kenar_api_client._operation_security import OPERATION_SECURITY
from kenar_api_client.sandbox._rpc import Code, RpcError
from kenar_api_client.sandbox._state import SandboxState
from kenar_api_client.sandbox._tokens import AccessToken


class Caller:
    """Who made an authenticated call: their API key and, where the operation needs one,
    their access token and what it stands for."""

    __slots__ = ("api_key", "grant", "token")

    def __init__(
        self, api_key: str, token: Optional[str] = None, grant: Optional[AccessToken] = None
    ) -> None:
        self.api_key = api_key
        self.token = token
        self.grant = grant

    @property
    def user(self) -> AccessToken:
        """What the access token stands for (only for operations that need a token)."""
        if self.grant is None:
            raise RpcError(Code.INTERNAL, "internal sandbox error: the operation was called without a token")
        return self.grant


def permissions(operation: str) -> Collection[str]:
    """The API key permissions ``operation`` needs, as the spec declares them."""
    return OPERATION_SECURITY[operation][0]


def authenticate(state: SandboxState, headers: Message, operation: str) -> Caller:
    """Check the API key and the permissions ``operation`` needs, then, if it needs a scope,
    the bearer token; raise ``RpcError`` (401 or 403) naming what is wrong."""
    api_key = single_header(headers, "X-API-Key", "API key")
    if api_key is None:
        raise RpcError(Code.UNAUTHENTICATED, "missing API key: send it in the X-API-Key header")
    granted = state.permissions(api_key)
    if granted is None:
        raise RpcError(Code.UNAUTHENTICATED, "the API key is not valid")
    missing = [permission for permission in permissions(operation) if permission not in granted]
    if missing:
        raise RpcError(Code.PERMISSION_DENIED, f"the API key lacks permission {' and '.join(missing)}")
    if not OPERATION_SECURITY[operation][1]:
        return Caller(api_key)
    token = bearer_token(headers)
    status = state.tokens.status(token)
    if status.grant is None:
        raise RpcError(Code.UNAUTHENTICATED, status.problem or "the access token is not valid")
    return Caller(api_key, token, status.grant)


def resource_names(operation: str) -> List[str]:
    """The resources the scopes of ``operation`` are bound to (``post_token``...), in order."""
    return [template.partition(".")[2] for template in OPERATION_SECURITY[operation][1] if "." in template]


def scope_choices(
    operation: str, resources: Mapping[str, str], names: Optional[Collection[str]] = None
) -> List[str]:
    """The scopes of which a token needs one for ``operation``, each bound to its resource.

    ``resources`` maps a resource name of the spec (``post_token``) to the id the call is
    about; a resource scope whose id is unknown (or empty) cannot be met and is left out.
    ``names`` keeps only the scopes with these names (what one kind of request needs).
    """
    choices: List[str] = []
    for template in OPERATION_SECURITY[operation][1]:
        name, _, resource = template.partition(".")
        if names is not None and name not in names:
            continue
        if not resource:
            choices.append(name)
        elif resources.get(resource):
            choices.append(f"{name}.{resources[resource]}")
    return choices


def require_scope(
    caller: Caller,
    operation: str,
    resources: Mapping[str, str],
    *,
    names: Optional[Collection[str]] = None,
    purpose: str = "",
) -> None:
    """Raise 403 naming the scopes (for the actual resources) unless the token holds one."""
    choices = scope_choices(operation, resources, names)
    if caller.user.scopes.isdisjoint(choices):
        needed = " or ".join(choices) or " or ".join(OPERATION_SECURITY[operation][1])
        suffix = f" (needed {purpose})" if purpose else ""
        raise RpcError(Code.PERMISSION_DENIED, f"the access token lacks scope {needed}{suffix}")


def single_header(headers: Message, name: str, what: str) -> Optional[str]:
    """The value of header ``name`` (None if absent or blank); sent twice is a 401."""
    values = headers.get_all(name) or []
    if len(values) > 1:
        raise RpcError(Code.UNAUTHENTICATED, f"more than one {name} header: send the {what} once")
    value = values[0].strip() if values else ""
    return value or None


def bearer_token(headers: Message) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; else a 401."""
    authorization = single_header(headers, "Authorization", "access token")
    if authorization is None:
        raise RpcError(
            Code.UNAUTHENTICATED,
            "missing access token: send it in the Authorization header as 'Bearer <access token>'",
        )
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RpcError(Code.UNAUTHENTICATED, "the Authorization header must be 'Bearer <access token>'")
    return token.strip()
