"""What the spec does not say but the generator must know: Kenar's documented rules, hand-written models."""

from __future__ import annotations

from typing import Dict, Tuple

#: Length rules Kenar documents outside the OpenAPI file, by (schema, property).
FIELD_RULES: Dict[Tuple[str, str], Dict[str, int]] = {
    # Kenar's Events docs: a button's title is 5 to 50 characters long.
    ("eventsEventButton", "title"): {"min_length": 5, "max_length": 50},
}

#: Schemas whose model is hand-written (extra behaviour), by schema name: the class to use.
HAND_WRITTEN_MODELS: Dict[str, str] = {
    "googlerpcStatus": "GooglerpcStatus",
    "protobufAny": "ProtobufAny",
}

#: Public names of the hand-written model modules, exported from ``kenar_api_client.models``.
HAND_WRITTEN_EXPORTS: Dict[str, str] = {
    "ApiEnum": "._enum",
    "ApiModel": "._api_model",
    "GoogleRpcStatus": ".google_rpc_status",
    "GooglerpcStatus": ".google_rpc_status",
    "KenarEnum": "._enum",
    "KenarModel": "._base",
    "ProtobufAny": ".protobuf_any",
}

#: API classes whose docs page is hand-written (the generator leaves it alone).
HAND_WRITTEN_API_DOCS = frozenset({"EventsApi"})

#: LimitedApi: the official client's stale copy (from its 0.83.0) of nine Payment operations.
#: Every one sends the API key only. ``payment_submit_user_payment`` took the request's fields
#: as query parameters (``services`` repeated) and sent no body.
LIMITED_API_OPERATIONS = (
    "Payment_CommitWalletTransaction",
    "Payment_CreateWalletPayment",
    "Payment_GetBalance",
    "Payment_GetPostPricing",
    "Payment_GetTransaction",
    "Payment_ListTransactions",
    "Payment_ReorderPost",
    "Payment_RetrieveWalletTransaction",
    "Payment_SubmitUserPayment",
)
LIMITED_API_QUERY_BODY = "Payment_SubmitUserPayment"
#: Its query parameters, in that client's order (fields of paymentSubmitUserPaymentRequest).
LIMITED_API_QUERY_PARAMS = ("amount_rials", "profit_rials", "services", "reference_id")

#: Docstrings written by hand for operations whose spec text says less than the SDK knows.
_REGISTER_DOC = """Subscribe to an event kind; Kenar then delivers those events to the app's webhook.

        ``POST /v1/open-platform/events/subscriptions``. Needs the API key permission
        ``EVENTS_REGISTER_SUBSCRIPTION`` and the OAuth scope
        ``CHAT_POST_CONVERSATIONS_READ.<post_token>`` or
        ``CHAT_SUPPLIER_ALL_CONVERSATIONS_READ`` for ``NEW_MESSAGE_ON_POST``, or
        ``USER_POSTS_GET`` for ``POST_UPDATE``. A subscription lives as long as the access
        token it was made with. Returns the answer's JSON object (``{}``).

        Raises ``pydantic.ValidationError`` for an invalid request (nothing is sent), an
        ``ApiException`` subclass for an error answer or a transport failure.
        """
_SEND_DOC = """Send an event to a Divar user, shown to them in the Divar app.

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
DOCSTRING_OVERRIDES: Dict[str, str] = {
    "events_register_event_subscription": _REGISTER_DOC,
    "events_send_event": _SEND_DOC,
}
