"""The generated-style module name for ``GoogleRpcStatus`` (schema ``googlerpcStatus``)."""

from kenar_api_client.models.google_rpc_status import GoogleRpcStatus, GooglerpcStatus

__all__ = ["GoogleRpcStatus", "GooglerpcStatus"]
