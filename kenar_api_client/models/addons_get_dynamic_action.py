"""``AddonsGetDynamicAction``: an action fetched from the app when the user taps the button."""

from typing import Optional

from pydantic import Field

from kenar_api_client.models._base import JsonObject, KenarModel


class AddonsGetDynamicAction(KenarModel):
    """Ask the app for the action to run; ``data`` comes back to the app on tap."""

    data: Optional[JsonObject] = Field(
        default=None, description="Free-form data returned to the app when the user taps."
    )
