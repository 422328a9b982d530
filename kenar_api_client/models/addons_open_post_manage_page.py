"""``AddonsOpenPostManagePage``: open a post's management page in the Divar app."""

from pydantic import Field, StrictStr

from kenar_api_client.models._base import KenarModel


class AddonsOpenPostManagePage(KenarModel):
    """Open the management page of the post with this token."""

    post_token: StrictStr = Field(description="Token of the post whose management page to open.")
