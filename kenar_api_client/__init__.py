"""kenar-api-client: the Python SDK for the Events API of Kenar, Divar's open platform.

Every public name below is imported on first use, so ``import kenar_api_client`` is cheap
and a webhook receiver that only needs :mod:`kenar_api_client.webhooks` never loads the
HTTP client.
"""

from typing import TYPE_CHECKING

from kenar_api_client._lazy import lazy_exports
from kenar_api_client._version import __version__

_EXPORTS = {
    # client
    "ApiClient": ".api_client",
    "ApiResponse": ".api_response",
    "Configuration": ".configuration",
    "EventsApi": ".api.events_api",
    # exceptions
    "ApiAttributeError": ".exceptions",
    "ApiConnectionError": ".exceptions",
    "ApiException": ".exceptions",
    "ApiKeyError": ".exceptions",
    "ApiTimeoutError": ".exceptions",
    "ApiTypeError": ".exceptions",
    "ApiValueError": ".exceptions",
    "BadRequestException": ".exceptions",
    "ConflictException": ".exceptions",
    "ForbiddenException": ".exceptions",
    "NotFoundException": ".exceptions",
    "OpenApiException": ".exceptions",
    "ServiceException": ".exceptions",
    "TooManyRequestsException": ".exceptions",
    "UnauthorizedException": ".exceptions",
    "UnprocessableEntityException": ".exceptions",
    # models
    "AddonsAction": ".models",
    "AddonsGetDynamicAction": ".models",
    "AddonsOpenPostManagePage": ".models",
    "AddonsOpenPostPage": ".models",
    "AddonsOpenServerLink": ".models",
    "EventsEventButton": ".models",
    "EventsEventButtonList": ".models",
    "EventsRegisterEventSubscriptionRequest": ".models",
    "EventsRegisterEventSubscriptionRequestEventType": ".models",
    "GoogleRpcStatus": ".models",
    "GooglerpcStatus": ".models",
    "ProtobufAny": ".models",
    "SendEventRequestTargetType": ".models",
}

__all__ = ["__version__", *sorted(_EXPORTS)]

if TYPE_CHECKING:
    from kenar_api_client.api.events_api import (
        EventsApi as EventsApi,
    )
    from kenar_api_client.api_client import (
        ApiClient as ApiClient,
    )
    from kenar_api_client.api_response import (
        ApiResponse as ApiResponse,
    )
    from kenar_api_client.configuration import (
        Configuration as Configuration,
    )
    from kenar_api_client.exceptions import (
        ApiAttributeError as ApiAttributeError,
        ApiConnectionError as ApiConnectionError,
        ApiException as ApiException,
        ApiKeyError as ApiKeyError,
        ApiTimeoutError as ApiTimeoutError,
        ApiTypeError as ApiTypeError,
        ApiValueError as ApiValueError,
        BadRequestException as BadRequestException,
        ConflictException as ConflictException,
        ForbiddenException as ForbiddenException,
        NotFoundException as NotFoundException,
        OpenApiException as OpenApiException,
        ServiceException as ServiceException,
        TooManyRequestsException as TooManyRequestsException,
        UnauthorizedException as UnauthorizedException,
        UnprocessableEntityException as UnprocessableEntityException,
    )
    from kenar_api_client.models import (
        AddonsAction as AddonsAction,
        AddonsGetDynamicAction as AddonsGetDynamicAction,
        AddonsOpenPostManagePage as AddonsOpenPostManagePage,
        AddonsOpenPostPage as AddonsOpenPostPage,
        AddonsOpenServerLink as AddonsOpenServerLink,
        EventsEventButton as EventsEventButton,
        EventsEventButtonList as EventsEventButtonList,
        EventsRegisterEventSubscriptionRequest as EventsRegisterEventSubscriptionRequest,
        EventsRegisterEventSubscriptionRequestEventType as EventsRegisterEventSubscriptionRequestEventType,
        GoogleRpcStatus as GoogleRpcStatus,
        GooglerpcStatus as GooglerpcStatus,
        ProtobufAny as ProtobufAny,
        SendEventRequestTargetType as SendEventRequestTargetType,
    )
else:
    __getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
