"""kenar-api-client: the Python SDK for Kenar, Divar's open platform: every operation, and its events.

Every public name is imported on first use, so ``import kenar_api_client`` is cheap and a
webhook receiver that only needs :mod:`kenar_api_client.webhooks` never loads the HTTP
client. The APIs and models are listed in the generated ``_exports.py``; the hand-written
names are below.
"""

from typing import TYPE_CHECKING

from kenar_api_client import _install_check, _log_env
from kenar_api_client._exports import GENERATED_EXPORTS
from kenar_api_client._lazy import lazy_exports
from kenar_api_client._version import __version__

_install_check.warn_if_mixed(__path__[0])
_log_env.configure_from_environment()

_EXPORTS = {
    # clients
    "ApiClient": ".api_client",
    "ApiResponse": ".api_response",
    "AsyncApiClient": ".async_api_client",
    "Configuration": ".configuration",
    # exceptions
    "ApiAttributeError": ".exceptions",
    "ApiConnectionError": ".exceptions",
    "ApiException": ".exceptions",
    "ApiKeyError": ".exceptions",
    "ApiTimeoutError": ".exceptions",
    "ApiTypeError": ".exceptions",
    "ApiValueError": ".exceptions",
    "BadRequestException": ".exceptions",
    "ClientClosedError": ".exceptions",
    "ConflictException": ".exceptions",
    "ForbiddenException": ".exceptions",
    "InvalidApiKeyError": ".exceptions",
    "NotFoundException": ".exceptions",
    "OpenApiException": ".exceptions",
    "ServiceException": ".exceptions",
    "TooManyRequestsException": ".exceptions",
    "UnauthorizedException": ".exceptions",
    "UnprocessableEntityException": ".exceptions",
    # APIs and models (generated)
    **GENERATED_EXPORTS,
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:
    from kenar_api_client._exports import *  # noqa: F403 - the generated APIs and models
    from kenar_api_client.api_client import ApiClient as ApiClient
    from kenar_api_client.api_response import ApiResponse as ApiResponse
    from kenar_api_client.async_api_client import AsyncApiClient as AsyncApiClient
    from kenar_api_client.configuration import Configuration as Configuration
    from kenar_api_client.exceptions import (
        ApiAttributeError as ApiAttributeError,
        ApiConnectionError as ApiConnectionError,
        ApiException as ApiException,
        ApiKeyError as ApiKeyError,
        ApiTimeoutError as ApiTimeoutError,
        ApiTypeError as ApiTypeError,
        ApiValueError as ApiValueError,
        BadRequestException as BadRequestException,
        ClientClosedError as ClientClosedError,
        ConflictException as ConflictException,
        ForbiddenException as ForbiddenException,
        InvalidApiKeyError as InvalidApiKeyError,
        NotFoundException as NotFoundException,
        OpenApiException as OpenApiException,
        ServiceException as ServiceException,
        TooManyRequestsException as TooManyRequestsException,
        UnauthorizedException as UnauthorizedException,
        UnprocessableEntityException as UnprocessableEntityException,
    )
else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
