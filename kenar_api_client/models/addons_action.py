"""``AddonsAction``: what happens when the user taps an event's button."""

from typing import Optional

from pydantic import Field, StrictStr

from kenar_api_client.models._base import KenarModel
from kenar_api_client.models.addons_get_dynamic_action import AddonsGetDynamicAction
from kenar_api_client.models.addons_open_post_manage_page import AddonsOpenPostManagePage
from kenar_api_client.models.addons_open_post_page import AddonsOpenPostPage
from kenar_api_client.models.addons_open_server_link import AddonsOpenServerLink


class AddonsAction(KenarModel):
    """One action a button runs; set exactly one of the fields."""

    get_dynamic_action: Optional[AddonsGetDynamicAction] = None
    open_direct_link: Optional[StrictStr] = Field(
        default=None,
        description="Send the user straight to this URL of the app.",
        examples=["https://your-site.com/some-path"],
    )
    open_post_manage_page: Optional[AddonsOpenPostManagePage] = None
    open_post_page: Optional[AddonsOpenPostPage] = None
    open_server_link: Optional[AddonsOpenServerLink] = None
