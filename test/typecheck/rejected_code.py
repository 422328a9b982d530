"""Mistakes a type checker must catch in a user's code (type-checked by test_typing.py, not run).

Every line marked ``# rejected`` must get an error from both mypy --strict and pyright, and
no other line may get one: a mistake that type-checks is one the API's types let through.
"""

from __future__ import annotations

from kenar_api_client import (
    ApiException,
    Configuration,
    EventsApi,
    EventsRegisterEventSubscriptionRequest,
    GoogleRpcStatus,
)


def mistakes(events: EventsApi, configuration: Configuration, error: ApiException) -> None:
    events.events_send_event(message="hi", target_type="PSOT", target_resource_id="p")  # rejected
    EventsRegisterEventSubscriptionRequest(event_type="POST_UPDATES")  # rejected
    Configuration(timeout="5")  # rejected
    Configuration(retries="3")  # rejected
    configuration.timeout = "5"  # rejected
    configuration.retries = 2.5  # rejected
    print(error.status + 1)  # rejected: no answer, no status
    print(error.reason.upper())  # rejected: may be None
    print(error.data.code)  # rejected: only when the body was a google.rpc.Status
    print(GoogleRpcStatus.from_dict({"code": 7}).cod)  # rejected: a model, not Any
    print(GoogleRpcStatus.from_json("{}").cod)  # rejected: a model, not Any
