"""``EventsRegisterEventSubscriptionRequestEventType``: the event kinds an app can subscribe to."""

from kenar_api_client.models._enum import KenarEnum


class EventsRegisterEventSubscriptionRequestEventType(KenarEnum):
    """Event kinds that need a subscription before Kenar delivers them to the webhook."""

    NEW_MESSAGE_ON_POST = "NEW_MESSAGE_ON_POST"
    POST_UPDATE = "POST_UPDATE"
