"""``Request``: one HTTP request, built and checked, as every transport and auth sees it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Tuple, Union

if TYPE_CHECKING:
    from urllib3.util import Timeout


class Request:
    """What is sent: method, absolute URL, headers (already checked), body bytes, and limits.

    ``timeout`` bounds connecting and each read; ``pool_timeout`` the wait for a free pooled
    connection. ``preload`` says whether the transport reads the body before returning
    (within the size limit), or hands the answer back unread. ``oauth`` marks the
    operations that send the user's access token, which a token auth fills in.
    """

    __slots__ = ("body", "headers", "method", "oauth", "pool_timeout", "preload", "timeout", "url")

    def __init__(
        self,
        method: str,
        url: str,
        headers: Dict[str, str],
        body: Union[bytes, str, None],
        timeout: Timeout,
        pool_timeout: Optional[float],
        preload: bool = True,
        oauth: bool = False,
    ) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
        self.pool_timeout = pool_timeout
        self.preload = preload
        self.oauth = oauth

    def with_header(self, name: str, value: str) -> Request:
        """A copy of this request with one header set (the original is left as it was sent)."""
        return Request(
            self.method,
            self.url,
            {**self.headers, name: value},
            self.body,
            self.timeout,
            self.pool_timeout,
            preload=self.preload,
            oauth=self.oauth,
        )

    @property
    def where(self) -> str:
        """``METHOD URL`` without the query: how errors and log lines name the request."""
        return f"{self.method} {self.url.split('?', 1)[0]}"

    def timeouts(self) -> Tuple[Optional[float], Optional[float]]:
        """The (connect, read) seconds of ``timeout``; None where unbounded."""
        # A ``total`` budget is only split once connecting starts: measured from now.
        probe = self.timeout.clone()
        probe.start_connect()
        connect = probe.connect_timeout
        read = probe.read_timeout
        return (
            connect if isinstance(connect, (int, float)) else None,
            read if isinstance(read, (int, float)) else None,
        )

    def __repr__(self) -> str:
        # No headers and no body: they carry credentials and user data.
        return f"Request({self.where})"
