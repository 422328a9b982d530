"""The user endpoints (``finder_get_user``, ``finder_get_user2``): who consented, as far as the scopes allow.

As Kenar's docs say: with ``USER_ID`` the answer carries the user's (obfuscated) Divar id,
unique per app; with ``USER_PHONE`` their phone number. The sandbox knows no phone numbers:
it answers a made-up one, the same for the same user every time.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict

from kenar_api_client.sandbox._auth import require_scope
from kenar_api_client.sandbox._calls import Call
from kenar_api_client.sandbox._generic import check_body


def get_user(call: Call) -> Dict[str, Any]:
    """``GET`` or ``POST /v1/open-platform/users``: the authenticated user (a ``FinderUser``)."""
    check_body(call.operation, call.body)
    require_scope(call.caller, call.operation.name, {})
    grant = call.caller.user
    answer: Dict[str, Any] = {}
    if "USER_ID" in grant.scopes:
        answer["user_id"] = grant.user_id
    if "USER_PHONE" in grant.scopes:
        phone = sandbox_phone(grant.user_id)
        answer["phone_number"] = phone
        answer["phone_numbers"] = [phone]
    return answer


def sandbox_phone(user_id: str) -> str:
    """The made-up mobile number the sandbox gives ``user_id``: ``0912`` and seven digits."""
    digits = int.from_bytes(hashlib.sha256(user_id.encode("utf-8")).digest()[:8], "big") % 10**7
    return f"0912{digits:07d}"
