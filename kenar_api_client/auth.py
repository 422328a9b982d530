"""``Auth``: the seam where a call's credentials are decided, for the sync and the async client alike.

The configured credentials (``Configuration.api_key``, ``access_token``, or a per-call
``_request_auth``) are set on the request when it is built. An ``Auth`` given to the client
may do more, as httpx's ``Auth.auth_flow`` does: set a header per call, send, look at the
answer, send again. It is written as a generator, so one ``auth_flow`` serves both clients:

* ``answer = yield from send(request)`` sends a request (with the retry policy) and gives
  the answer back;
* ``value = yield Blocking(function, *args)`` calls something that may block (a token
  store, the OAuth server): the sync client calls it in place, the async one in a thread;
* ``yield Release(answer)`` lets go of an answer that will not be returned;
* the flow returns the answer the caller gets.

The OAuth package's ``TokenAuth`` (what ``TokenManager.api_client_for`` uses) is one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from kenar_api_client._steps import Blocking, Flow, Release

if TYPE_CHECKING:
    from kenar_api_client._request import Request
    from kenar_api_client._transport import Answer

__all__ = ["Auth", "Blocking", "Release", "SendFlow"]

#: ``send(request)``: the sub-flow that sends a request and ends with its answer.
SendFlow = Callable[["Request"], Flow["Answer"]]


class Auth:
    """Sends each request as built; subclasses add per-call credentials in :meth:`auth_flow`."""

    def auth_flow(self, request: Request, send: SendFlow) -> Flow[Answer]:
        """Send ``request`` once and return its answer."""
        return (yield from send(request))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
