"""Receiving Kenar webhook deliveries: verify, parse into typed events, serve over WSGI or ASGI.

Importing this package loads pydantic and the standard library only, never the HTTP
client, so a receiver stays light (``make_server``, a threaded WSGI server to run
``make_wsgi_app`` on, is loaded on first use)::

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
    WebhookError,
    WebhookPayloadError,
    WebhookPayloadTooLarge,
    WebhookVerificationError,
)
from kenar_api_client.webhooks.asgi import make_asgi_app
from kenar_api_client.webhooks.events import *  # noqa: F403 - the event classes, as listed in events.__all__
from kenar_api_client.webhooks.sources import KENAR_WEBHOOK_NETWORKS, is_kenar_source
from kenar_api_client.webhooks.verify import DEFAULT_MAX_BODY_BYTES, WebhookVerifier, parse_event
from kenar_api_client.webhooks.wsgi import make_wsgi_app

# The server loads http.server and wsgiref: only on first use, as receivers under gunicorn
# or a framework never need it.
_SERVER_EXPORTS = {name: ".server" for name in ("DEFAULT_READ_TIMEOUT", "WebhookServer", "make_server")}

if TYPE_CHECKING:
    from kenar_api_client.webhooks.server import (
        DEFAULT_READ_TIMEOUT as DEFAULT_READ_TIMEOUT,
        WebhookServer as WebhookServer,
        make_server as make_server,
    )
else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _SERVER_EXPORTS)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_READ_TIMEOUT",
    "KENAR_WEBHOOK_NETWORKS",
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
