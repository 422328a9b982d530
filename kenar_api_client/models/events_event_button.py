"""``EventsEventButton``: a button shown with an event, with its title and action."""

from typing import Optional

from pydantic import Field, StrictStr

from kenar_api_client.models._base import KenarModel
from kenar_api_client.models.addons_action import AddonsAction

BUTTON_TITLE_MIN_LENGTH = 5
BUTTON_TITLE_MAX_LENGTH = 50


class EventsEventButton(KenarModel):
    """A button on an event; Kenar requires its title to be 5 to 50 characters long."""

    action: Optional[AddonsAction] = None
    title: Optional[StrictStr] = Field(
        default=None,
        min_length=BUTTON_TITLE_MIN_LENGTH,
        max_length=BUTTON_TITLE_MAX_LENGTH,
        description="Button text, 5 to 50 characters.",
    )
