"""The API's models; each is imported on first use so ``import kenar_api_client`` stays fast."""

from typing import TYPE_CHECKING

from kenar_api_client._lazy import lazy_exports

_EXPORTS = {
    "AddonsAction": ".addons_action",
    "AddonsGetDynamicAction": ".addons_get_dynamic_action",
    "AddonsOpenPostManagePage": ".addons_open_post_manage_page",
    "AddonsOpenPostPage": ".addons_open_post_page",
    "AddonsOpenServerLink": ".addons_open_server_link",
    "EventsEventButton": ".events_event_button",
    "EventsEventButtonList": ".events_event_button_list",
    "EventsRegisterEventSubscriptionRequest": ".events_register_event_subscription_request",
    "EventsRegisterEventSubscriptionRequestEventType": (
        ".events_register_event_subscription_request_event_type"
    ),
    "GoogleRpcStatus": ".google_rpc_status",
    "GooglerpcStatus": ".google_rpc_status",
    "KenarEnum": "._enum",
    "KenarModel": "._base",
    "ProtobufAny": ".protobuf_any",
    "SendEventRequestTargetType": ".send_event_request_target_type",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from kenar_api_client.models._base import (
        KenarModel as KenarModel,
    )
    from kenar_api_client.models._enum import (
        KenarEnum as KenarEnum,
    )
    from kenar_api_client.models.addons_action import (
        AddonsAction as AddonsAction,
    )
    from kenar_api_client.models.addons_get_dynamic_action import (
        AddonsGetDynamicAction as AddonsGetDynamicAction,
    )
    from kenar_api_client.models.addons_open_post_manage_page import (
        AddonsOpenPostManagePage as AddonsOpenPostManagePage,
    )
    from kenar_api_client.models.addons_open_post_page import (
        AddonsOpenPostPage as AddonsOpenPostPage,
    )
    from kenar_api_client.models.addons_open_server_link import (
        AddonsOpenServerLink as AddonsOpenServerLink,
    )
    from kenar_api_client.models.events_event_button import (
        EventsEventButton as EventsEventButton,
    )
    from kenar_api_client.models.events_event_button_list import (
        EventsEventButtonList as EventsEventButtonList,
    )
    from kenar_api_client.models.events_register_event_subscription_request import (
        EventsRegisterEventSubscriptionRequest as EventsRegisterEventSubscriptionRequest,
    )
    from kenar_api_client.models.events_register_event_subscription_request_event_type import (
        EventsRegisterEventSubscriptionRequestEventType as EventsRegisterEventSubscriptionRequestEventType,
    )
    from kenar_api_client.models.google_rpc_status import (
        GoogleRpcStatus as GoogleRpcStatus,
        GooglerpcStatus as GooglerpcStatus,
    )
    from kenar_api_client.models.protobuf_any import (
        ProtobufAny as ProtobufAny,
    )
    from kenar_api_client.models.send_event_request_target_type import (
        SendEventRequestTargetType as SendEventRequestTargetType,
    )
else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
