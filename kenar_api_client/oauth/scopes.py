"""OAuth scopes: every scope name Kenar's spec lists, and scopes bound to one resource."""

from __future__ import annotations

import re
from enum import Enum
from typing import FrozenSet, Iterable, List, Optional, Union

from kenar_api_client.exceptions import ApiValueError

# NAME or NAME.<resource id>: a name, then printable ASCII without spaces.
_WELL_FORMED = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[\x21-\x7e]+)?")


class Scope(str, Enum):
    """The OAuth scope names of Kenar's spec; each member compares equal to its wire name.

    Some scopes are granted for one resource only (``CHAT_POST_CONVERSATIONS_READ`` for
    one post): build those with :meth:`on`, e.g.
    ``Scope.CHAT_POST_CONVERSATIONS_READ.on(post_token)``.
    """

    BUSINESS_ADDON_CREATE = "BUSINESS_ADDON_CREATE"
    BUSINESS_CREATE_CUSTOMIZED_BUTTON = "BUSINESS_CREATE_CUSTOMIZED_BUTTON"
    CHAT_BOT_USER_MESSAGE_SEND = "CHAT_BOT_USER_MESSAGE_SEND"
    CHAT_CONVERSATION_READ = "CHAT_CONVERSATION_READ"
    CHAT_MESSAGE_SEND = "CHAT_MESSAGE_SEND"
    CHAT_POST_CONVERSATIONS_MESSAGE_SEND = "CHAT_POST_CONVERSATIONS_MESSAGE_SEND"
    CHAT_POST_CONVERSATIONS_READ = "CHAT_POST_CONVERSATIONS_READ"
    CHAT_SUPPLIER_ALL_CONVERSATIONS_MESSAGE_SEND = "CHAT_SUPPLIER_ALL_CONVERSATIONS_MESSAGE_SEND"
    CHAT_SUPPLIER_ALL_CONVERSATIONS_READ = "CHAT_SUPPLIER_ALL_CONVERSATIONS_READ"
    CONVERSATION_SEND_MESSAGE = "CONVERSATION_SEND_MESSAGE"
    CREATE_WALLET_PAYMENT = "CREATE_WALLET_PAYMENT"
    DELETE_USER_POST = "DELETE_USER_POST"
    EDIT_USER_POST = "EDIT_USER_POST"
    MANAGEMENT_APPS_READ = "MANAGEMENT_APPS_READ"
    MANAGEMENT_APPS_WRITE = "MANAGEMENT_APPS_WRITE"
    NOTIFICATION_ACCESS_REVOCATION = "NOTIFICATION_ACCESS_REVOCATION"
    PAYMENT_ALL_POSTS_PRICING_READ = "PAYMENT_ALL_POSTS_PRICING_READ"
    PAYMENT_ALL_POSTS_RENEW = "PAYMENT_ALL_POSTS_RENEW"
    PAYMENT_ALL_POSTS_REORDER = "PAYMENT_ALL_POSTS_REORDER"
    POST_ADDON_CREATE = "POST_ADDON_CREATE"
    POST_EDIT = "POST_EDIT"
    POST_ONGOING_IMAGES_GET = "POST_ONGOING_IMAGES_GET"
    POST_SEMANTIC_CREATE = "POST_SEMANTIC_CREATE"
    SEND_EVENT = "SEND_EVENT"
    SUBMIT_USER_PAYMENT = "SUBMIT_USER_PAYMENT"
    SUBMIT_USER_POST = "SUBMIT_USER_POST"
    USER_ADDON_CREATE = "USER_ADDON_CREATE"
    USER_ID = "USER_ID"
    USER_PHONE = "USER_PHONE"
    USER_POSTS_ADDON_CREATE = "USER_POSTS_ADDON_CREATE"
    USER_POSTS_GET = "USER_POSTS_GET"
    USER_POSTS_STATS_READ = "USER_POSTS_STATS_READ"
    USER_SET_CUSTOMIZED_BUTTON = "USER_SET_CUSTOMIZED_BUTTON"
    USER_VERIFICATION_CREATE = "USER_VERIFICATION_CREATE"
    #: Grants a refresh token: without it the user must consent again every hour.
    OFFLINE_ACCESS = "offline_access"
    OPENID = "openid"

    def __str__(self) -> str:
        return str(self.value)

    @property
    def needs_resource(self) -> bool:
        """Whether this scope is only granted for one resource (``NAME.<resource id>``)."""
        return self in RESOURCE_SCOPES

    def on(self, resource_id: str) -> str:
        """This scope for one resource: ``CHAT_POST_CONVERSATIONS_READ.<post_token>``."""
        return scope(self, resource_id)


#: The scopes the spec lists as ``NAME.resource_id``: granted for one resource at a time.
RESOURCE_SCOPES: FrozenSet[Scope] = frozenset(
    {
        Scope.BUSINESS_ADDON_CREATE,
        Scope.BUSINESS_CREATE_CUSTOMIZED_BUTTON,
        Scope.CHAT_CONVERSATION_READ,
        Scope.CHAT_MESSAGE_SEND,
        Scope.CHAT_POST_CONVERSATIONS_MESSAGE_SEND,
        Scope.CHAT_POST_CONVERSATIONS_READ,
        Scope.CONVERSATION_SEND_MESSAGE,
        Scope.MANAGEMENT_APPS_READ,
        Scope.MANAGEMENT_APPS_WRITE,
        Scope.POST_ADDON_CREATE,
        Scope.POST_EDIT,
        Scope.POST_ONGOING_IMAGES_GET,
        Scope.POST_SEMANTIC_CREATE,
    }
)

_BY_NAME = {member.value: member for member in Scope}


def scope(name: Union[Scope, str], resource_id: Optional[str] = None) -> str:
    """The scope ``name``, or ``name.<resource_id>`` when a resource is given.

    Raises ``ApiValueError`` for a malformed name or resource id, and when a known scope
    that is granted per resource (see :data:`RESOURCE_SCOPES`) gets none, or a known plain
    scope gets one.
    """
    text = str(name.value if isinstance(name, Scope) else name)
    if resource_id is not None:
        if not isinstance(resource_id, str) or not resource_id:
            raise ApiValueError(f"the resource id of scope {text} must be a non-empty string")
        text = f"{text}.{resource_id}"
    return check_scope(text)


def check_scope(value: Union[Scope, str]) -> str:
    """``value`` as a scope string, checked to be well formed (see :func:`scope`)."""
    if isinstance(value, Scope):
        value = value.value
    if not isinstance(value, str):
        raise ApiValueError(f"a scope must be a string or a Scope, not {type(value).__name__}")
    if not _WELL_FORMED.fullmatch(value):
        raise ApiValueError(
            f"malformed scope {value[:80]!r}: expected NAME or NAME.<resource id>, "
            "letters, digits and underscores, no spaces"
        )
    name, _, resource = value.partition(".")
    known = _BY_NAME.get(name)
    if known is not None and known.needs_resource and not resource:
        raise ApiValueError(
            f"scope {name} is granted for one resource: use Scope.{name}.on(<resource id>), "
            f"e.g. {name}.<post_token>"
        )
    if known is not None and not known.needs_resource and resource:
        raise ApiValueError(f"scope {name} takes no resource id, got {value[:80]!r}")
    return value


def scope_list(scopes: Iterable[Union[Scope, str]]) -> List[str]:
    """Each scope checked, duplicates dropped, in the order given; at least one."""
    if isinstance(scopes, (str, Scope)):
        scopes = [scopes]
    checked: List[str] = []
    for value in scopes:
        text = check_scope(value)
        if text not in checked:
            checked.append(text)
    if not checked:
        raise ApiValueError("at least one scope is needed")
    return checked


def subscription_scopes(event_type: str, event_resource_id: str = "") -> List[str]:
    """The scopes a token needs to register an Events subscription (either one suffices).

    ``NEW_MESSAGE_ON_POST`` for one post needs ``CHAT_POST_CONVERSATIONS_READ.<post>``
    (or ``CHAT_SUPPLIER_ALL_CONVERSATIONS_READ``); for all posts the latter;
    ``POST_UPDATE`` needs ``USER_POSTS_GET``.
    """
    if event_type == "POST_UPDATE":
        return [Scope.USER_POSTS_GET.value]
    if event_type == "NEW_MESSAGE_ON_POST":
        if event_resource_id:
            return [
                Scope.CHAT_POST_CONVERSATIONS_READ.on(event_resource_id),
                Scope.CHAT_SUPPLIER_ALL_CONVERSATIONS_READ.value,
            ]
        return [Scope.CHAT_SUPPLIER_ALL_CONVERSATIONS_READ.value]
    raise ApiValueError(f"unknown subscription event type {event_type!r}")
