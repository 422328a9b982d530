"""A user's code against the public API, as test_typing.py type-checks it (it is not run).

``assert_type`` states what mypy and pyright must infer: each one fails the check if its
checker infers anything else, ``Any`` included.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import urllib3
from typing_extensions import assert_type

import kenar_api_client
from kenar_api_client import (
    ApiException,
    ApiResponse,
    Configuration,
    EventsApi,
    EventsRegisterEventSubscriptionRequest,
    EventsRegisterEventSubscriptionRequestEventType,
    ForbiddenException,
    GoogleRpcStatus,
    SendEventRequestTargetType,
    TooManyRequestsException,
)
from kenar_api_client.webhooks import NewMessageEvent, WebhookEvent, parse_event


def configure() -> Configuration:
    configuration = Configuration(timeout=5, retries=3)
    configuration.timeout = (3.05, 27)
    configuration.timeout = urllib3.Timeout(connect=2.0, read=10.0)
    configuration.retries = urllib3.Retry(total=1)
    configuration.retries = None
    assert_type(configuration.host, str)
    assert_type(configuration.api_key, Dict[str, str])
    assert_type(configuration.access_token, Optional[str])
    return configuration


def send(events: EventsApi) -> None:
    events.events_send_event(message="hi", target_type="POST", target_resource_id="wZ3kT9pQ")
    events.events_send_event(
        message="hi", target_type=SendEventRequestTargetType.USER, target_resource_id="u-1"
    )
    response = events.events_send_event_with_http_info(
        message="hi", target_type="USER", target_resource_id="u-1", _request_timeout=(2, 10)
    )
    assert_type(response, ApiResponse[object])
    assert_type(response.status_code, int)
    assert_type(response.raw_data, bytes)
    raw = events.events_send_event_without_preload_content(message="hi", target_type=None)
    assert_type(raw, urllib3.BaseHTTPResponse)


def subscribe(events: EventsApi) -> None:
    events.events_register_event_subscription(
        EventsRegisterEventSubscriptionRequest(
            event_type="NEW_MESSAGE_ON_POST", event_resource_id="wZ3kT9pQ", metadata={"shop": "42"}
        )
    )
    request = EventsRegisterEventSubscriptionRequest(
        event_type=EventsRegisterEventSubscriptionRequestEventType.POST_UPDATE
    )
    request.event_type = "POST_UPDATE"
    events.events_register_event_subscription(request)
    events.events_register_event_subscription({"event_type": "POST_UPDATE"})


def explain(events: EventsApi) -> Optional[str]:
    try:
        send(events)
    except TooManyRequestsException as e:
        assert_type(e.retry_after, Optional[float])
    except ForbiddenException as e:
        assert_type(e.status, Optional[int])
        assert_type(e.reason, Optional[str])
        assert_type(e.body, Optional[str])
        assert_type(e.headers, Optional[Mapping[str, str]])
        assert_type(e.data, Optional[GoogleRpcStatus])
        if e.data is not None:
            assert_type(e.data.code_name, Optional[str])
            return e.data.message
    except ApiException as e:
        return str(e)
    return None


def parse_models() -> None:
    status = GoogleRpcStatus.from_dict({"code": 7, "message": "access token lacks scope SEND_EVENT"})
    assert_type(status, GoogleRpcStatus)
    assert_type(GoogleRpcStatus.from_dict(None), None)
    assert_type(GoogleRpcStatus.from_json('{"code": 7}'), Optional[GoogleRpcStatus])
    assert_type(status.to_dict(), Dict[str, Any])
    assert_type(SendEventRequestTargetType.from_json('"USER"'), SendEventRequestTargetType)


def receive(body: bytes, headers: Dict[str, str], key: str) -> Optional[str]:
    event = parse_event(body, headers, key)
    assert_type(event, WebhookEvent)
    if isinstance(event, NewMessageEvent):
        return event.new_message.text
    return None


def main() -> None:
    assert_type(kenar_api_client.__version__, str)
    with kenar_api_client.ApiClient(configure()) as api_client:
        events = kenar_api_client.EventsApi(api_client)
        subscribe(events)
        print(explain(events))
