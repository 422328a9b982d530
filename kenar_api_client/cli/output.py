"""How commands print: human lines or JSON on stdout, one-line errors on stderr; exit statuses."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, Dict, List, Optional, TextIO

from kenar_api_client import _env
from kenar_api_client._hosts import connect_host
from kenar_api_client._printable import printable
from kenar_api_client._redact import scrub

if TYPE_CHECKING:
    from kenar_api_client.exceptions import ApiException

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

ENV_BASE_URL = _env.BASE_URL
ENV_IDENTIFICATION_KEY = _env.IDENTIFICATION_KEY


class UsageError(Exception):
    """A usage problem found after parsing (a missing key or URL): exit status 2."""


class CommandError(Exception):
    """The command cannot go on (its token store is down, unreadable or missing): exit status 1.

    The message is one line: ``main`` prints it as the ``error:`` line, and with ``--json``
    as ``{"ok": false, "error": {"message": ...}}``.
    """


class Output:
    """Human lines or JSON documents on stdout, one-line errors on stderr.

    Everything printed has its control characters escaped (it may come from a server or a
    delivery) and the values given to :meth:`hide` replaced by ``[REDACTED]``.
    """

    def __init__(
        self, as_json: bool, stdout: Optional[TextIO] = None, stderr: Optional[TextIO] = None
    ) -> None:
        self.json = as_json
        self._stdout = stdout
        self._stderr = stderr
        self._secrets: List[str] = []

    def hide(self, *secrets: Optional[str]) -> None:
        """Never print these values, e.g. credentials a server might echo in its answer."""
        for secret in filter(None, secrets):
            # As sent, and as it reads inside a JSON string.
            self._secrets += [secret, json.dumps(secret, ensure_ascii=False)[1:-1]]

    def line(self, text: str = "") -> None:
        """Print ``text`` unless the output is JSON."""
        if not self.json:
            self._write(self._stdout or sys.stdout, text)

    def document(self, value: Any) -> None:
        """Print ``value`` as one line of JSON if the output is JSON."""
        if self.json:
            self._write(self._stdout or sys.stdout, json.dumps(value, ensure_ascii=False, default=str))

    def error(self, text: str) -> None:
        """Print ``error: text`` on stderr, always as a single line."""
        self._write(self._stderr or sys.stderr, "error: " + " ".join(text.split()))

    def _write(self, stream: TextIO, text: str) -> None:
        _write(stream, printable(scrub(text, self._secrets)))


def _write(stream: TextIO, text: str) -> None:
    try:
        stream.write(text + "\n")
    except UnicodeEncodeError:  # a console that cannot show Persian text
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "backslashreplace").decode(encoding) + "\n")
    stream.flush()


def api_error_text(exc: ApiException) -> str:
    """``403 PERMISSION_DENIED (7): <message>``, or why no answer came."""
    from kenar_api_client.exceptions import ApiConnectionError
    from kenar_api_client.oauth.errors import TokenStoreError

    if isinstance(exc, TokenStoreError):  # not the server's fault: ours
        return str(exc)
    if isinstance(exc, ApiConnectionError):
        return f"no answer from the server: {exc}"
    data = exc.data
    code = getattr(data, "code", None)
    if code is not None:
        name = getattr(data, "code_name", None) or "code"
        return f"{exc.status} {name} ({code}): {getattr(data, 'message', None) or exc.reason or ''}"
    preview = (exc.body or "")[:200]
    return f"{exc.status} {exc.reason or ''} {preview}".strip()


def api_error_document(exc: ApiException) -> Dict[str, Any]:
    """The JSON form of an API error."""
    data = exc.data
    return {
        "ok": False,
        "error": {
            "status": exc.status,
            "code": getattr(data, "code", None),
            "code_name": getattr(data, "code_name", None),
            "message": getattr(data, "message", None) or str(exc),
        },
    }


def failure_text(exc: Exception) -> str:
    """One line about any exception, API errors in their usual form."""
    from kenar_api_client.exceptions import ApiException

    if isinstance(exc, ApiException):
        return api_error_text(exc)
    return f"{type(exc).__name__}: {exc}"


def reachable_url(host: str, port: int) -> str:
    """``http://<host>:<port>/`` with a host a client can use (IPv6 in brackets)."""
    reachable = connect_host(host)
    if ":" in reachable:
        reachable = f"[{reachable}]"
    return f"http://{reachable}:{port}/"
