"""``EventsApi``: subscribe to Kenar events and send events to Divar users."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional, Union

from typing_extensions import Unpack

from kenar_api_client._operation import Operation, Param, RequestOptions
from kenar_api_client.api_client import ApiClient
from kenar_api_client.api_response import ApiResponse

if TYPE_CHECKING:
    import urllib3

    from kenar_api_client.models import (
        EventsRegisterEventSubscriptionRequest,
        SendEventRequestTargetType,
    )

REGISTER_EVENT_SUBSCRIPTION = Operation(
    name="events_register_event_subscription",
    method="POST",
    path="/v1/open-platform/events/subscriptions",
    params=[
        Param(
            "events_register_event_subscription_request",
            "model",
            "body",
            type_name="EventsRegisterEventSubscriptionRequest",
            required=True,
        )
    ],
    response_types={"200": "object"},
    content_type="application/json",
)

SEND_EVENT = Operation(
    name="events_send_event",
    method="POST",
    path="/experimental/open-platform/events/send",
    params=[
        Param("message", "str", "query"),
        Param("target_type", "enum", "query", type_name="SendEventRequestTargetType"),
        Param("target_resource_id", "str", "query"),
    ],
    response_types={"200": "object"},
)


class EventsApi:
    """The Events operations of Kenar. Both need an API key and a user's access token.

    Each operation comes in three forms: ``x`` returns the answer's data,
    ``x_with_http_info`` an ``ApiResponse`` (status, headers, data, raw body), and
    ``x_without_preload_content`` the raw ``urllib3`` response, body unread and status
    unchecked.
    """

    def __init__(self, api_client: Optional[ApiClient] = None) -> None:
        self.api_client = api_client if api_client is not None else ApiClient.get_default()

    def __repr__(self) -> str:
        return f"EventsApi(api_client={self.api_client!r})"

    # -- events_register_event_subscription ---------------------------------------------

    def events_register_event_subscription(
        self,
        events_register_event_subscription_request: Union[
            EventsRegisterEventSubscriptionRequest, Dict[str, Any]
        ],
        **options: Unpack[RequestOptions],
    ) -> object:
        """Subscribe to an event kind; Kenar then delivers those events to the app's webhook.

        ``POST /v1/open-platform/events/subscriptions``. Needs the API key permission
        ``EVENTS_REGISTER_SUBSCRIPTION`` and the OAuth scope
        ``CHAT_POST_CONVERSATIONS_READ.<post_token>`` or
        ``CHAT_SUPPLIER_ALL_CONVERSATIONS_READ`` for ``NEW_MESSAGE_ON_POST``, or
        ``USER_POSTS_GET`` for ``POST_UPDATE``. A subscription lives as long as the access
        token it was made with. Returns the answer's JSON object (``{}``).

        Raises ``pydantic.ValidationError`` for an invalid request (nothing is sent), an
        ``ApiException`` subclass for an error answer or a transport failure.
        """
        return self.events_register_event_subscription_with_http_info(
            events_register_event_subscription_request, **options
        ).data

    def events_register_event_subscription_with_http_info(
        self,
        events_register_event_subscription_request: Union[
            EventsRegisterEventSubscriptionRequest, Dict[str, Any]
        ],
        **options: Unpack[RequestOptions],
    ) -> ApiResponse[object]:
        """Like ``events_register_event_subscription``, returning the whole ``ApiResponse``."""
        response = REGISTER_EVENT_SUBSCRIPTION.invoke(
            self.api_client,
            {"events_register_event_subscription_request": events_register_event_subscription_request},
            options,
        )
        return self.api_client.response_deserialize(response, REGISTER_EVENT_SUBSCRIPTION.response_types)

    def events_register_event_subscription_without_preload_content(
        self,
        events_register_event_subscription_request: Union[
            EventsRegisterEventSubscriptionRequest, Dict[str, Any]
        ],
        **options: Unpack[RequestOptions],
    ) -> urllib3.BaseHTTPResponse:
        """Like ``events_register_event_subscription``, returning the unread urllib3 response."""
        return REGISTER_EVENT_SUBSCRIPTION.invoke(
            self.api_client,
            {"events_register_event_subscription_request": events_register_event_subscription_request},
            options,
            preload_content=False,
        ).response

    # -- events_send_event --------------------------------------------------------------

    def events_send_event(
        self,
        message: Optional[str] = None,
        target_type: Union[SendEventRequestTargetType, str, None] = None,
        target_resource_id: Optional[str] = None,
        **options: Unpack[RequestOptions],
    ) -> object:
        """Send an event to a Divar user, shown to them in the Divar app.

        ``POST /experimental/open-platform/events/send`` with the three values as query
        parameters and no body. ``target_type`` is ``USER`` (then ``target_resource_id`` is
        the authenticated user's obfuscated Divar user id) or ``POST`` (then it is the token
        of a post the authenticated user owns); a ``SendEventRequestTargetType`` or its
        string value. Needs the API key permission ``EVENTS_SEND`` and the OAuth scope
        ``SEND_EVENT``. Returns the answer's JSON object (``{}``).

        Not retried on a lost answer: a second send would notify the user twice.
        Raises ``pydantic.ValidationError`` for an invalid argument (nothing is sent), an
        ``ApiException`` subclass for an error answer or a transport failure.
        """
        return self.events_send_event_with_http_info(message, target_type, target_resource_id, **options).data

    def events_send_event_with_http_info(
        self,
        message: Optional[str] = None,
        target_type: Union[SendEventRequestTargetType, str, None] = None,
        target_resource_id: Optional[str] = None,
        **options: Unpack[RequestOptions],
    ) -> ApiResponse[object]:
        """Like ``events_send_event``, returning the whole ``ApiResponse``."""
        response = SEND_EVENT.invoke(
            self.api_client,
            {
                "message": message,
                "target_type": target_type,
                "target_resource_id": target_resource_id,
            },
            options,
        )
        return self.api_client.response_deserialize(response, SEND_EVENT.response_types)

    def events_send_event_without_preload_content(
        self,
        message: Optional[str] = None,
        target_type: Union[SendEventRequestTargetType, str, None] = None,
        target_resource_id: Optional[str] = None,
        **options: Unpack[RequestOptions],
    ) -> urllib3.BaseHTTPResponse:
        """Like ``events_send_event``, returning the unread urllib3 response."""
        return SEND_EVENT.invoke(
            self.api_client,
            {
                "message": message,
                "target_type": target_type,
                "target_resource_id": target_resource_id,
            },
            options,
            preload_content=False,
        ).response
