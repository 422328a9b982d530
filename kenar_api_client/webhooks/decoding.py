"""Decoding a verified delivery body into its typed event: in one pass where it can be.

A body of a documented type is parsed and validated by pydantic-core straight from its
bytes (no ``json.loads``, no Python dict on the way). Anything that pass refuses, and every
body that might nest too deeply, takes the general path: ``json.loads``, the exact nesting
check, then :func:`~kenar_api_client.webhooks.events.event_from_dict`, whose errors are the
ones the receiver reports. Both paths give the same event for the same body.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional, Union

from pydantic import Field, TypeAdapter, ValidationError
from typing_extensions import Annotated

from kenar_api_client.webhooks._errors import WebhookPayloadError
from kenar_api_client.webhooks.events import (
    EVENT_CLASSES,
    MAX_NESTING_DEPTH,
    TOO_DEEP_MESSAGE,
    WebhookEvent,
    event_from_dict,
)

__all__ = ["event_from_body"]

# Built on first use, so importing the package does not build the union's validator.
_documented: Optional[TypeAdapter[WebhookEvent]] = None


def _documented_events() -> TypeAdapter[WebhookEvent]:
    global _documented
    if _documented is None:
        union: Any = Annotated[Union[tuple(EVENT_CLASSES.values())], Field(discriminator="type")]
        _documented = TypeAdapter(union)
    return _documented


def event_from_body(body: bytes) -> WebhookEvent:
    """The typed event of a delivery body that is verified and within its size limit.

    Raises :class:`~kenar_api_client.webhooks.WebhookPayloadError` for a body that is not
    UTF-8 JSON, not an object, nested deeper than ``MAX_NESTING_DEPTH`` levels, or does not
    fit its event class.
    """
    event = _documented_event(body)
    return event if event is not None else event_from_dict(decode_object(body))


def _documented_event(body: bytes) -> Optional[WebhookEvent]:
    """The event if ``body`` is a valid event of a documented type, else ``None``."""
    # Nesting deeper than the limit takes more opening brackets than the limit: a body with
    # fewer (every body Kenar documents) cannot be too deep, so the exact check is skipped.
    if body.count(b"{") + body.count(b"[") > MAX_NESTING_DEPTH:
        return None
    try:
        # pydantic-core's validator itself: TypeAdapter.validate_json adds a Python layer.
        event: WebhookEvent = _documented_events().validator.validate_json(body)
        return event
    except ValidationError:
        return None  # the general path says what is wrong, or builds an UnknownEvent


def decode_object(body: bytes) -> Mapping[str, Any]:
    """``body`` as a JSON object; a :class:`WebhookPayloadError` if it is not one."""
    try:
        document = json.loads(body.decode("utf-8"))
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise WebhookPayloadError("webhook body is not valid UTF-8 JSON") from exc
    except RecursionError as exc:
        raise WebhookPayloadError(TOO_DEEP_MESSAGE) from exc
    if not isinstance(document, dict):
        raise WebhookPayloadError("webhook body is not a JSON object")
    return document
