"""A local Kenar Events server for tests, docs and the ``kenar-events`` CLI.

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

from kenar_api_client.sandbox._delivery import Delivery, DeliveryAttempt
from kenar_api_client.sandbox._demo import (
    DEMO_ACCESS_TOKEN,
    DEMO_API_KEY,
    DEMO_API_KEY_PERMISSIONS,
    DEMO_IDENTIFICATION_KEY,
    DEMO_POST_TOKEN,
    DEMO_SCOPES,
    DEMO_USER_ID,
)
from kenar_api_client.sandbox._errors import SandboxError, SubscriptionRequiredError
from kenar_api_client.sandbox._events import DOCUMENTED_EVENT_TYPES
from kenar_api_client.sandbox._sandbox import Sandbox
from kenar_api_client.sandbox._state import AccessToken, RequestRecord, SentEvent, Subscription

__all__ = [
    "DEMO_ACCESS_TOKEN",
    "DEMO_API_KEY",
    "DEMO_API_KEY_PERMISSIONS",
    "DEMO_IDENTIFICATION_KEY",
    "DEMO_POST_TOKEN",
    "DEMO_SCOPES",
    "DEMO_USER_ID",
    "DOCUMENTED_EVENT_TYPES",
    "AccessToken",
    "Delivery",
    "DeliveryAttempt",
    "RequestRecord",
    "Sandbox",
    "SandboxError",
    "SentEvent",
    "Subscription",
    "SubscriptionRequiredError",
]
