"""What the webhook test modules share: a recording handler."""

from __future__ import annotations

from typing import List

from kenar_api_client.webhooks import WebhookEvent


class Recorder:
    """The handler given to the app: records events, raises when told to."""

    def __init__(self) -> None:
        self.events: List[WebhookEvent] = []
        self.fail = False

    def __call__(self, event: WebhookEvent) -> None:
        self.events.append(event)
        if self.fail:
            raise RuntimeError("handler exploded: private-detail-7731")
