"""``EventsEventButtonList``: the buttons of one event."""

from typing import List, Optional

from kenar_api_client.models._base import KenarModel
from kenar_api_client.models.events_event_button import EventsEventButton


class EventsEventButtonList(KenarModel):
    """An ordered list of event buttons."""

    items: Optional[List[EventsEventButton]] = None
