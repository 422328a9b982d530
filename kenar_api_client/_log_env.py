"""``KENAR_LOG=debug|info``: the SDK's own log records on stderr, as ``OPENAI_LOG`` and ``STRIPE_LOG`` do.

``info`` gives one line per API call (method, URL without its query, status, time) and the
OAuth, webhook and sandbox events; ``debug`` adds each request and answer in full. Both
come from the ``kenar_api_client`` loggers, which redact credentials; urllib3's own
records stay off. Read once, at import; ``logging`` is loaded only when it is set.
"""

from __future__ import annotations

import os

from kenar_api_client import _env

ENV_LOG = _env.LOG


def configure_from_environment() -> None:
    """Apply ``KENAR_LOG``; unset or empty changes nothing."""
    value = os.environ.get(ENV_LOG, "").strip().lower()
    if not value:
        return
    import logging

    from kenar_api_client._log import LOG_FORMAT, PACKAGE_LOGGER

    level = {"debug": logging.DEBUG, "info": logging.INFO}.get(value)
    if level is None:
        import warnings

        warnings.warn(f"{ENV_LOG}={value!r} is ignored: use 'debug' or 'info'", RuntimeWarning, stacklevel=2)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger = logging.getLogger(PACKAGE_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(level)
