"""The exceptions the sandbox raises in Python (HTTP callers get ``googlerpcStatus`` bodies)."""


class SandboxError(Exception):
    """The sandbox cannot do what was asked: not running, no webhook URL, a bad setting."""


class SubscriptionRequiredError(SandboxError):
    """A ``NEW_MESSAGE`` or ``POST_UPDATE`` was triggered with no subscription to deliver it for.

    Kenar delivers these two event types only to apps subscribed to them; pass
    ``require_subscription=False`` to ``Sandbox.trigger`` to deliver anyway.
    """
