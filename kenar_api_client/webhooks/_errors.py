"""The exceptions a webhook delivery can be rejected with, each carrying its HTTP status."""

from __future__ import annotations

from typing import ClassVar


class WebhookError(Exception):
    """Base of every reason to reject a webhook delivery.

    ``http_status`` is the status a receiver should answer with, so a framework integration
    can map any of these errors in one line. Messages never contain the identification key
    or the ``Authorization`` value that was received.
    """

    http_status: ClassVar[int] = 400


class WebhookVerificationError(WebhookError):
    """The ``Authorization`` header is missing or does not match the identification key."""

    http_status: ClassVar[int] = 401


class WebhookPayloadTooLarge(WebhookError):
    """The body is larger than the receiver accepts."""

    http_status: ClassVar[int] = 413


class WebhookPayloadError(WebhookError):
    """The body is not a JSON object, or does not fit the event type it names."""

    http_status: ClassVar[int] = 400


class DeliveryLogError(WebhookError):
    """The delivery log could not be read or written; the backend's error is the ``__cause__``.

    A receiver answers such a delivery 503 without calling the handler, so the sender
    delivers it again rather than it being handled twice.
    """

    http_status: ClassVar[int] = 503


def too_large(limit: int) -> WebhookPayloadTooLarge:
    """The error for a body over ``limit`` bytes."""
    return WebhookPayloadTooLarge(f"webhook body is larger than {limit} bytes")
