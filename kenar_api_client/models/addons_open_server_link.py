"""``AddonsOpenServerLink``: send the session to the app's server and follow its redirect."""

from typing import Optional

from pydantic import Field

from kenar_api_client.models._base import JsonObject, KenarModel


class AddonsOpenServerLink(KenarModel):
    """Post the full session data to the app's server, which answers with a redirect URL."""

    data: Optional[JsonObject] = Field(
        default=None, description="Free-form data returned to the app when the user taps."
    )
