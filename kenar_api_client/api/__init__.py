"""The API classes, one per tag of the Kenar OpenAPI document."""

from kenar_api_client.api.events_api import EventsApi

__all__ = ["EventsApi"]
