"""The package's loggers stay silent unless the application configures logging.

A library adds a ``NullHandler`` to its top logger: without one, Python's last-resort
handler prints the records of WARNING and above (a sandbox delivery that failed, a rejected
webhook) on the user's stderr. Importing this module adds it, once.
"""

import logging

PACKAGE_LOGGER = "kenar_api_client"
#: The format of the handlers the SDK adds (``Configuration.debug``, ``KENAR_LOG``).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_package_logger = logging.getLogger(PACKAGE_LOGGER)
if not any(isinstance(handler, logging.NullHandler) for handler in _package_logger.handlers):
    _package_logger.addHandler(logging.NullHandler())


def has_real_handler(logger: logging.Logger) -> bool:
    """Whether ``logger`` has a handler that shows records (not only the NullHandler)."""
    return any(not isinstance(handler, logging.NullHandler) for handler in logger.handlers)
