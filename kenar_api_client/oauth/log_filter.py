"""``OAuthCodeFilter``: keeps OAuth authorization codes out of a web server's access log.

Divar sends the user back to the app's redirect URI with the code in the query
(``GET /kenar/callback?code=ory_ac_...&state=...``), and web servers log that line. The
SDK logs no secret of its own, but this line is the server's: add the filter to its access
logger (``uvicorn.access``, ``gunicorn.access``, ``django.server``, ``werkzeug``) and the
code is replaced by ``[REDACTED]`` before any handler sees the record.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping
from typing import Any

from kenar_api_client._redact import REDACTED

# A code in a URL or a bare query string: the value runs to the next parameter, space or quote.
_CODE = re.compile(r"""((?:^|[?&;\s])code=)[^&;\s"'#]+""")


def redact_code(text: str) -> str:
    """``text`` with the value of every ``code=`` query parameter replaced by ``[REDACTED]``."""
    return _CODE.sub(rf"\g<1>{REDACTED}", text)


class OAuthCodeFilter(logging.Filter):
    """A ``logging.Filter`` that blanks OAuth codes in a record's message and arguments.

    It changes records, never drops one. The arguments may be a tuple (uvicorn, Django,
    werkzeug) or a mapping (gunicorn's access-log atoms, changed in place).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_code(record.msg)
        args: Any = record.args
        if isinstance(args, tuple):
            record.args = tuple(redact_code(a) if isinstance(a, str) else a for a in args)
        elif isinstance(args, MutableMapping):
            for key, value in list(args.items()):
                if isinstance(value, str):
                    args[key] = redact_code(value)
        return True
