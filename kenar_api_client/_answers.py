"""What an answer means: its data for a 2xx, its typed exception otherwise, scrubbed of secrets. No I/O."""

from __future__ import annotations

import datetime
import json
import re
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Type, Union

from kenar_api_client._redact import scrub, scrub_data, scrub_headers
from kenar_api_client.api_response import ApiResponse
from kenar_api_client.exceptions import ApiException, TooManyRequestsException, exception_class_for_status
from kenar_api_client.retry import parse_retry_after

if TYPE_CHECKING:
    from kenar_api_client._transport import Answer

_LIST_TYPE = re.compile(r"^List\[(.+)\]$")
_DICT_TYPE = re.compile(r"^Dict\[str,\s*(.+)\]$")


def api_response(
    answer: Answer,
    response_types: Optional[Mapping[str, Optional[str]]],
    secrets_of: Callable[[Optional[Mapping[str, Any]]], List[str]],
) -> ApiResponse[Any]:
    """The ``ApiResponse`` of a 2xx answer (body read); any other status raises its ``ApiException``.

    ``secrets_of(request_headers)`` gives what the exception must not show; it is only
    called when there is an exception to build.
    """
    raw = answer.data if answer.data is not None else b""
    status = answer.status
    if not 200 <= status <= 299:
        raise error_for(answer, raw, secrets_of(answer.request_headers))
    response_type = None
    if response_types:
        response_type = response_types.get(str(status), response_types.get("2XX"))
    if response_type is None or response_type == "bytearray":
        data: Any = raw if response_type else None
    else:
        content_type = answer.getheader("Content-Type") if response_type == "str" else None
        try:
            data = deserialize(raw, response_type, content_type)
        except (ValueError, TypeError, AttributeError, RecursionError) as error:  # not the expected shape
            secrets = secrets_of(answer.request_headers)
            reason = f"{answer.reason}, but the body is not valid JSON ({error})"
            raise ApiException(
                status=status,
                reason=scrub(reason, secrets),
                body=scrub(raw.decode("utf-8", "replace"), secrets),
                headers=scrub_headers(answer.getheaders(), secrets),
            ) from error
    return ApiResponse(status_code=status, headers=answer.getheaders(), data=data, raw_data=raw)


def error_for(
    answer: Answer, raw: bytes, secrets: List[str], exception_class: Optional[Type[ApiException]] = None
) -> ApiException:
    """The typed exception of an error answer, with Kenar's ``GoogleRpcStatus`` as ``data``.

    Scrubbed of ``secrets``: a server may echo a credential in the reason, the body or a
    header, and it need not be a configured one (a per-call ``_request_auth``, a token
    replaced since).
    """
    body = scrub(raw.decode("utf-8", "replace"), secrets)
    status_model = None
    try:
        document = scrub_data(json.loads(body), secrets)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse
        document = None
    if isinstance(document, dict) and ("code" in document or "message" in document):
        from pydantic import ValidationError

        from kenar_api_client.models.google_rpc_status import GoogleRpcStatus

        try:
            status_model = GoogleRpcStatus.from_dict(document)
        except (ValidationError, RecursionError):
            status_model = None
    if exception_class is None:
        exception_class = exception_class_for_status(answer.status)
    kwargs: Dict[str, Any] = {}
    if exception_class is TooManyRequestsException:
        kwargs["retry_after"] = parse_retry_after(answer.getheader("Retry-After"))
    return exception_class(
        status=answer.status,
        reason=scrub(answer.reason or "", secrets),
        body=body,
        data=status_model,
        headers=scrub_headers(answer.getheaders(), secrets),
        **kwargs,
    )


def too_large(
    status: int, reason: Optional[str], headers: Mapping[str, str], limit: int, secrets: List[str]
) -> ApiException:
    """The exception for an answer whose body exceeds ``Configuration.max_response_bytes``."""
    return exception_class_for_status(status)(
        status=status,
        reason=scrub(
            f"{reason}, but the answer is larger than Configuration.max_response_bytes "
            f"({limit} bytes); it was not read",
            secrets,
        ),
        headers=scrub_headers(headers, secrets),
    )


def deserialize(
    response_text: Union[str, bytes], response_type: str, content_type: Optional[str] = None
) -> Any:
    """Parse a body as ``response_type`` (``"object"``, a model name, ``"List[...]"``...)."""
    if response_type == "str" and not _is_json(content_type):
        return response_text.decode("utf-8") if isinstance(response_text, bytes) else response_text
    if not response_text.strip():
        return None
    return _deserialize_value(json.loads(response_text), response_type)


def _deserialize_value(data: Any, klass: Union[str, Type[Any]]) -> Any:
    if data is None or klass == "object":
        return data
    if isinstance(klass, str):
        list_match = _LIST_TYPE.match(klass)
        if list_match:
            return [_deserialize_value(item, list_match.group(1)) for item in data]
        dict_match = _DICT_TYPE.match(klass)
        if dict_match:
            return {k: _deserialize_value(v, dict_match.group(1)) for k, v in data.items()}
        primitive = _PRIMITIVES.get(klass)
        if primitive is not None:
            return primitive(data)
        import kenar_api_client.models

        klass = getattr(kenar_api_client.models, klass)
    model_class: Any = klass
    from_dict = getattr(model_class, "from_dict", None)
    return from_dict(data) if from_dict is not None else model_class(data)


def _is_json(content_type: Optional[str]) -> bool:
    return content_type is None or "json" in content_type.lower()


def _parse_datetime(value: str) -> datetime.datetime:
    from dateutil.parser import isoparse

    return isoparse(value)


def _parse_date(value: str) -> datetime.date:
    return _parse_datetime(value).date()


_PRIMITIVES: Dict[str, Any] = {
    "str": str,
    "int": int,
    "float": float,
    "bool": bool,
    "datetime": _parse_datetime,
    "date": _parse_date,
}
