"""The log lines of an API call, scrubbed whole: credential headers by name, echoed secrets anywhere.

INFO gives one line per call (method, URL without its query, status, time); DEBUG each
request and answer in full, bodies previewed. The logger keeps the name it always had
(``kenar_api_client.rest``), which apps' logging configurations filter on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, List, Union

from kenar_api_client._redact import redact_headers, scrub

if TYPE_CHECKING:
    from kenar_api_client._request import Request
    from kenar_api_client._transport import Answer

logger: logging.Logger = logging.getLogger("kenar_api_client.rest")

_BODY_LOG_PREVIEW = 1000


def request_line(request: Request, secrets: List[str], show_body: bool) -> None:
    """DEBUG: the request as sent."""
    body = request.body
    size = 0 if body is None else len(body)
    line = "request: {} {} headers={} body={} bytes{}".format(
        request.method,
        request.url,
        redact_headers(request.headers),
        size,
        f": {_preview(body)}" if body and show_body else "",
    )
    logger.debug("%s", scrub(line, secrets))


def answer_line(answer: Answer, elapsed_ms: float, show_body: bool, secrets: List[str]) -> None:
    """DEBUG: the answer as received."""
    body = answer.data if show_body else None
    line = "response: {} {} in {:.1f} ms headers={}{}".format(
        answer.status,
        answer.reason,
        elapsed_ms,
        redact_headers(answer.getheaders()),
        f" body: {_preview(body)}" if body else "",
    )
    logger.debug("%s", scrub(line, secrets))


def _preview(body: Union[bytes, str]) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if len(text) > _BODY_LOG_PREVIEW:
        return text[:_BODY_LOG_PREVIEW] + f"... [{len(text) - _BODY_LOG_PREVIEW} more]"
    return text
