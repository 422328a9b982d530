"""The ``KENAR_*`` environment variables the SDK, the CLI and the sandbox read: each named once, here."""

from __future__ import annotations

import os
from typing import Optional

#: Where the API is (``Configuration.host``).
BASE_URL = "KENAR_BASE_URL"
#: The app's API key (``X-API-Key``).
API_KEY = "KENAR_API_KEY"
#: A user's OAuth access token (``Authorization: Bearer``).
ACCESS_TOKEN = "KENAR_ACCESS_TOKEN"  # noqa: S105 - a variable name, not a secret
#: The key Kenar sends in each webhook delivery's ``Authorization`` header.
IDENTIFICATION_KEY = "KENAR_IDENTIFICATION_KEY"
#: The app's slug, its OAuth ``client_id``.
APP_SLUG = "KENAR_APP_SLUG"
#: The app's OAuth client secret.
CLIENT_SECRET = "KENAR_CLIENT_SECRET"  # noqa: S105 - a variable name
#: The redirect URI registered for the app.
REDIRECT_URI = "KENAR_REDIRECT_URI"
#: Where the OAuth server is.
OAUTH_URL = "KENAR_OAUTH_URL"
#: The CLI's token store: a SQLite path or a store URL.
TOKEN_STORE = "KENAR_TOKEN_STORE"  # noqa: S105 - a variable name
#: A file a sandbox keeps its clock's offset in: the SDK's default clock follows it (see _clock).
CLOCK_FILE = "KENAR_CLOCK_FILE"
#: ``debug`` or ``info``: the SDK's log records on stderr.
LOG = "KENAR_LOG"


def read(name: str) -> Optional[str]:
    """The variable's value with surrounding blanks removed; None when unset or blank."""
    return os.environ.get(name, "").strip() or None
