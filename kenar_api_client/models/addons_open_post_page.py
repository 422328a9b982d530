"""``AddonsOpenPostPage``: open a post's page in the Divar app."""

from pydantic import Field, StrictStr

from kenar_api_client.models._base import KenarModel


class AddonsOpenPostPage(KenarModel):
    """Open the page of the post with this token."""

    post_token: StrictStr = Field(description="Token of the post to open.")
