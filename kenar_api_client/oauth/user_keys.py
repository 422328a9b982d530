"""The one rule for an app's user keys (``"user-42"``), checked wherever one enters."""

from __future__ import annotations

from typing import Any

from kenar_api_client.exceptions import ApiValueError

MAX_USER_KEY_LENGTH = 200


def check_user_key(user_key: Any) -> str:
    """``user_key`` if it is a non-empty printable string of at most 200 characters; else ApiValueError.

    Printable excludes line breaks, control characters and lone surrogates, which no store
    (nor a log line) could keep as they are.
    """
    if (
        not isinstance(user_key, str)
        or not user_key
        or not user_key.isprintable()
        or len(user_key) > MAX_USER_KEY_LENGTH
    ):
        raise ApiValueError(
            f"user_key must be a non-empty printable string of at most {MAX_USER_KEY_LENGTH} characters"
        )
    return user_key
