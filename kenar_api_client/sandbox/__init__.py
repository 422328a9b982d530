"""A local Kenar Events and OAuth server for tests, docs and the ``kenar-events`` CLI.

::

    import kenar_api_client
    from kenar_api_client.sandbox import DEMO_ACCESS_TOKEN, DEMO_API_KEY, Sandbox

    with Sandbox() as sandbox:
        configuration = kenar_api_client.Configuration(
            host=sandbox.url, api_key={"APIKey": DEMO_API_KEY}, access_token=DEMO_ACCESS_TOKEN
        )
        ...
        print(sandbox.sent_events)

Depends on the standard library only; nothing in the SDK core imports it.
"""

from kenar_api_client import _log  # noqa: F401 - silent loggers unless the app configures logging
from kenar_api_client.sandbox._browser import consent
from kenar_api_client.sandbox._chat_book import Conversation, SentMessage
from kenar_api_client.sandbox._clients import RegisteredClient
from kenar_api_client.sandbox._clock import SandboxClock
from kenar_api_client.sandbox._delivery import Delivery, DeliveryAttempt
from kenar_api_client.sandbox._demo import (
    DEMO_ACCESS_TOKEN,
    DEMO_API_KEY,
    DEMO_API_KEY_PERMISSIONS,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_IDENTIFICATION_KEY,
    DEMO_POST_TOKEN,
    DEMO_REDIRECT_URI,
    DEMO_SCOPES,
    DEMO_USER_ID,
)
from kenar_api_client.sandbox._errors import SandboxError, SubscriptionRequiredError
from kenar_api_client.sandbox._events import DOCUMENTED_EVENT_TYPES
from kenar_api_client.sandbox._faults import FAULTS, FaultRule, InjectedFault
from kenar_api_client.sandbox._sandbox import Sandbox
from kenar_api_client.sandbox._state import RequestRecord, SentEvent, Subscription, TokenRequestRecord
from kenar_api_client.sandbox._tokens import (
    ACCESS_TOKEN_LIFETIME,
    CODE_LIFETIME,
    REFRESH_TOKEN_LIFETIME,
    ROTATION_GRACE,
    AccessToken,
)

__all__ = [
    "ACCESS_TOKEN_LIFETIME",
    "CODE_LIFETIME",
    "DEMO_ACCESS_TOKEN",
    "DEMO_API_KEY",
    "DEMO_API_KEY_PERMISSIONS",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_IDENTIFICATION_KEY",
    "DEMO_POST_TOKEN",
    "DEMO_REDIRECT_URI",
    "DEMO_SCOPES",
    "DEMO_USER_ID",
    "DOCUMENTED_EVENT_TYPES",
    "FAULTS",
    "REFRESH_TOKEN_LIFETIME",
    "ROTATION_GRACE",
    "AccessToken",
    "Conversation",
    "Delivery",
    "DeliveryAttempt",
    "FaultRule",
    "InjectedFault",
    "RegisteredClient",
    "RequestRecord",
    "Sandbox",
    "SandboxClock",
    "SandboxError",
    "SentEvent",
    "SentMessage",
    "Subscription",
    "SubscriptionRequiredError",
    "TokenRequestRecord",
    "consent",
]
