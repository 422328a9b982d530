"""Kenar's OAuth scope names, and parsing the space-separated ``scope`` of an OAuth request."""

from __future__ import annotations

from typing import FrozenSet, List, Tuple

OFFLINE_ACCESS = "offline_access"

#: The scope names of Kenar's OpenAPI document (``components.securitySchemes.OAuth``). Each
#: can be granted as ``NAME`` or for one resource as ``NAME.<resource id>``.
SCOPE_NAMES: FrozenSet[str] = frozenset(
    (
        "BUSINESS_ADDON_CREATE",
        "BUSINESS_CREATE_CUSTOMIZED_BUTTON",
        "CHAT_BOT_USER_MESSAGE_SEND",
        "CHAT_CONVERSATION_READ",
        "CHAT_MESSAGE_SEND",
        "CHAT_POST_CONVERSATIONS_MESSAGE_SEND",
        "CHAT_POST_CONVERSATIONS_READ",
        "CHAT_SUPPLIER_ALL_CONVERSATIONS_MESSAGE_SEND",
        "CHAT_SUPPLIER_ALL_CONVERSATIONS_READ",
        "CONVERSATION_SEND_MESSAGE",
        "CREATE_WALLET_PAYMENT",
        "DELETE_USER_POST",
        "EDIT_USER_POST",
        "MANAGEMENT_APPS_READ",
        "MANAGEMENT_APPS_WRITE",
        "NOTIFICATION_ACCESS_REVOCATION",
        "PAYMENT_ALL_POSTS_PRICING_READ",
        "PAYMENT_ALL_POSTS_RENEW",
        "PAYMENT_ALL_POSTS_REORDER",
        "POST_ADDON_CREATE",
        "POST_EDIT",
        "POST_ONGOING_IMAGES_GET",
        "POST_SEMANTIC_CREATE",
        "SEND_EVENT",
        "SUBMIT_USER_PAYMENT",
        "SUBMIT_USER_POST",
        "USER_ADDON_CREATE",
        "USER_ID",
        "USER_PHONE",
        "USER_POSTS_ADDON_CREATE",
        "USER_POSTS_GET",
        "USER_POSTS_STATS_READ",
        "USER_SET_CUSTOMIZED_BUTTON",
        "USER_VERIFICATION_CREATE",
    )
)

#: OpenID Connect scopes the authorization server knows; they take no resource id.
PROTOCOL_SCOPES: FrozenSet[str] = frozenset((OFFLINE_ACCESS, "openid"))


def parse_scope(text: str) -> Tuple[str, ...]:
    """The scopes of a space-separated ``scope`` value, in order, each once.

    Raises ``ValueError`` naming the first scope that is malformed or unknown, or saying
    that there is none.
    """
    scopes: List[str] = []
    for scope in text.split(" "):
        if scope and scope not in scopes:
            check_scope(scope)
            scopes.append(scope)
    if not scopes:
        raise ValueError("no scope was requested")
    return tuple(scopes)


def check_scope(scope: str) -> None:
    """Raise ``ValueError`` unless ``scope`` is ``NAME`` or ``NAME.<resource id>`` of a known name."""
    if scope in PROTOCOL_SCOPES:
        return
    name, dot, resource_id = scope.partition(".")
    if any(character.isspace() for character in scope) or (dot and not resource_id):
        raise ValueError(f"the scope {scope[:80]!r} is malformed: use NAME or NAME.<resource id>")
    if name not in SCOPE_NAMES:
        raise ValueError(f"the scope {name[:80]!r} is unknown")
