"""``SendEventRequestTargetType``: whom an event sent with ``events_send_event`` is for."""

from kenar_api_client.models._enum import KenarEnum


class SendEventRequestTargetType(KenarEnum):
    """Target of a sent event: one Divar user, or one post owned by the authenticated user."""

    USER = "USER"
    POST = "POST"
