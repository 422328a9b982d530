"""``GooglerpcStatus`` (also ``GoogleRpcStatus``): the JSON body of every Kenar error answer."""

from typing import List, Optional

from pydantic import Field, StrictInt, StrictStr

from kenar_api_client.models._api_model import ApiModel
from kenar_api_client.models.protobuf_any import ProtobufAny

GRPC_CODE_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)


class GooglerpcStatus(ApiModel):
    """A ``google.rpc.Status``: gRPC code, developer-facing message and typed details.

    Named ``GooglerpcStatus`` as the official client names the ``googlerpcStatus`` schema
    (its ``repr`` and errors say so); ``GoogleRpcStatus`` is the same class.
    """

    code: Optional[StrictInt] = Field(default=None, description="The gRPC status code.")
    details: Optional[List[ProtobufAny]] = None
    message: Optional[StrictStr] = None

    @property
    def code_name(self) -> Optional[str]:
        """The gRPC name of ``code`` (``PERMISSION_DENIED`` for 7), or None if unknown."""
        if self.code is None or not 0 <= self.code < len(GRPC_CODE_NAMES):
            return None
        return GRPC_CODE_NAMES[self.code]


#: The readable name this SDK's docs use.
GoogleRpcStatus = GooglerpcStatus
