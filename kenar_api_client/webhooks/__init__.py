"""Receiving Kenar webhook deliveries: verify, parse into typed events, serve over WSGI or ASGI.

Importing this package loads pydantic and the standard library only, never the HTTP
client, so a receiver stays light (``make_server``, a threaded WSGI server to run
``make_wsgi_app`` on, and the SQLite and Redis delivery logs are loaded on first use)::

    from kenar_api_client.webhooks import parse_event, NewMessageEvent

    event = parse_event(body, headers, identification_key)
    if isinstance(event, NewMessageEvent):
        print(event.new_message.text)
"""

from typing import TYPE_CHECKING

from kenar_api_client import _log  # noqa: F401 - silent loggers unless the app configures logging
from kenar_api_client._lazy import lazy_exports
from kenar_api_client.webhooks import events as _events
from kenar_api_client.webhooks._errors import (
    DeliveryLogError,
    WebhookError,
    WebhookPayloadError,
    WebhookPayloadTooLarge,
    WebhookVerificationError,
)
from kenar_api_client.webhooks.asgi import make_asgi_app
from kenar_api_client.webhooks.deliveries import (
    DEFAULT_CLAIM_LEASE,
    DEFAULT_DELIVERY_TTL,
    Claim,
    ClaimState,
    DeliveryLog,
    MemoryDeliveryLog,
)
from kenar_api_client.webhooks.events import *  # noqa: F403 - the event classes, as listed in events.__all__
from kenar_api_client.webhooks.sources import KENAR_WEBHOOK_NETWORKS, is_kenar_source
from kenar_api_client.webhooks.verify import DEFAULT_MAX_BODY_BYTES, WebhookVerifier, parse_event
from kenar_api_client.webhooks.wsgi import make_wsgi_app

# The server loads http.server and wsgiref, the persistent logs sqlite3 and redis: only on
# first use, as receivers under gunicorn or a framework never need the server.
_LAZY_EXPORTS = {
    **{
        name: ".server"
        for name in ("DEFAULT_READ_TIMEOUT", "DEFAULT_WORKERS", "WebhookServer", "make_server")
    },
    "SQLiteDeliveryLog": ".sqlite_deliveries",
    "RedisDeliveryLog": ".redis_deliveries",
}

if TYPE_CHECKING:
    from kenar_api_client.webhooks.redis_deliveries import RedisDeliveryLog as RedisDeliveryLog
    from kenar_api_client.webhooks.server import (
        DEFAULT_READ_TIMEOUT as DEFAULT_READ_TIMEOUT,
        DEFAULT_WORKERS as DEFAULT_WORKERS,
        WebhookServer as WebhookServer,
        make_server as make_server,
    )
    from kenar_api_client.webhooks.sqlite_deliveries import SQLiteDeliveryLog as SQLiteDeliveryLog
else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY_EXPORTS)

__all__ = [
    "DEFAULT_CLAIM_LEASE",
    "DEFAULT_DELIVERY_TTL",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_WORKERS",
    "KENAR_WEBHOOK_NETWORKS",
    "Claim",
    "ClaimState",
    "DeliveryLog",
    "DeliveryLogError",
    "MemoryDeliveryLog",
    "RedisDeliveryLog",
    "SQLiteDeliveryLog",
    "WebhookError",
    "WebhookPayloadError",
    "WebhookPayloadTooLarge",
    "WebhookVerificationError",
    "WebhookServer",
    "WebhookVerifier",
    "is_kenar_source",
    "make_server",
    "make_asgi_app",
    "make_wsgi_app",
    "parse_event",
    *_events.__all__,
]
