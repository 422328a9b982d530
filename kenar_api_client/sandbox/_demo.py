"""The public demo credentials and ids a sandbox serves when nothing else is configured."""

from typing import Tuple

from kenar_api_client._operation_security import OPERATION_SECURITY

# These are published, documented values for local use only: they are not secrets and
# they mean nothing to the real Kenar.
DEMO_API_KEY = "kenar-sandbox-demo-key"
#: Every API key permission the spec names: the demo app may call every operation.
DEMO_API_KEY_PERMISSIONS: Tuple[str, ...] = tuple(
    sorted({permission for permissions, _ in OPERATION_SECURITY.values() for permission in permissions})
)
DEMO_ACCESS_TOKEN = "kenar-sandbox-demo-token"  # noqa: S105 - a public demo value
DEMO_USER_ID = "demo-user-7f3a"
DEMO_POST_TOKEN = "wZ3kT9pQ"  # noqa: S105 - a post token, not a credential
DEMO_SCOPES: Tuple[str, ...] = (
    "SEND_EVENT",
    "USER_POSTS_GET",
    f"CHAT_POST_CONVERSATIONS_READ.{DEMO_POST_TOKEN}",
    # A chatbot answers the buyers who write on the demo post (docs/Webhooks.md's recipes).
    f"CHAT_POST_CONVERSATIONS_MESSAGE_SEND.{DEMO_POST_TOKEN}",
    "NOTIFICATION_ACCESS_REVOCATION",
    "USER_ID",
)
DEMO_IDENTIFICATION_KEY = "kenar-sandbox-demo-identification-key"

# The OAuth client every sandbox registers unless given ``oauth_clients``. A loopback
# redirect URI matches any port (RFC 8252, section 7.3), so a local callback server on a
# free port can use it.
DEMO_CLIENT_ID = "kenar-sandbox-demo-app"
DEMO_CLIENT_SECRET = "kenar-sandbox-demo-client-secret"  # noqa: S105 - a public demo value
DEMO_REDIRECT_URI = "http://127.0.0.1/kenar/callback"
