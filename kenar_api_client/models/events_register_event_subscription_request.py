"""``EventsRegisterEventSubscriptionRequest``: the body of ``events_register_event_subscription``."""

from typing import Optional

from pydantic import Field, StrictStr

from kenar_api_client.models._base import JsonObject, KenarModel
from kenar_api_client.models.events_register_event_subscription_request_event_type import (
    EventsRegisterEventSubscriptionRequestEventType,
)


class EventsRegisterEventSubscriptionRequest(KenarModel):
    """What to subscribe to: an event kind, optionally one resource, and metadata to echo back."""

    event_resource_id: Optional[StrictStr] = Field(
        default=None,
        description="The resource the events are about (e.g. a post token); empty means all.",
    )
    event_type: Optional[EventsRegisterEventSubscriptionRequestEventType] = None
    metadata: Optional[JsonObject] = Field(
        default=None, description="Free-form data echoed back in every delivery."
    )
