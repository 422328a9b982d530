"""One call per operation, with the answer the server gives: shared by the recorder and the wire tests.

Stdlib and ``generator`` only, so the recorder can run it beside the official client.
"""

from __future__ import annotations

import datetime
import enum
import re
from typing import Any, Dict, List

from generator import spec as spec_module
from generator.naming import api_class_name
from generator.render import limited_operations
from generator.render_docs import model_by_class, model_sample, sample
from generator.spec import OperationDef, ParamDef, Spec

API_KEY = "wire-api-key-5e1d"
ACCESS_TOKEN = "wire-access-token-9c2a"
#: Path values with a slash, a space, a tilde and a Persian letter: how each is encoded matters.
PATH_SUFFIX = "/a b~ی"
QUERY_TEXT = "a&b=c+d ی"
#: The text fields of the answers: non-ASCII, so that how to_json() writes it matters.
ANSWER_TEXT = "نمونه example"


def argument(p: ParamDef, spec: Spec) -> Any:
    if p.location == "path":
        return f"{sample(p.type, spec, p.wire_name)}{PATH_SUFFIX}"
    if p.location == "query":
        if p.type.kind == "str":
            return f"{QUERY_TEXT} {p.wire_name}"
        if p.type.kind == "list":
            return ["first value", "second/value"]
        return sample(p.type, spec, p.wire_name)
    if p.type.kind == "any_dict":
        return {"free": ["form", 1, True], "nested": {"ok": None}}
    model = model_by_class(spec)[str(p.type.name)]
    return model_sample(model, spec)


def answer(op: OperationDef, spec: Spec) -> Any:
    if op.response is None:
        return {"request_id": "r-1", "extra": [1, 2]}
    return with_persian_text(model_sample(model_by_class(spec)[str(op.response.name)], spec))


def with_persian_text(value: Any) -> Any:
    """``value`` with each sample text ("example") in Persian too: to_json() escapes it."""
    if isinstance(value, dict):
        return {key: with_persian_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [with_persian_text(item) for item in value]
    return ANSWER_TEXT if value == "example" else value


def cases(spec: Spec) -> List[Dict[str, Any]]:
    """Every operation of every API class, LimitedApi's included, in a stable order."""
    found = []
    groups = [(api_class_name(tag), spec.operations_of(tag)) for tag in spec.tags]
    groups.append(("LimitedApi", limited_operations(spec)))
    for class_name, operations in groups:
        for op in operations:
            found.append(
                {
                    "api": class_name,
                    "method": op.method_name,
                    "kwargs": {p.name: argument(p, spec) for p in op.params},
                    # The arguments that are models: the call is made again with instances.
                    "model_params": {p.name: str(p.type.name) for p in op.params if p.type.kind == "model"},
                    "answer": answer(op, spec),
                }
            )
    return found


def load_cases() -> List[Dict[str, Any]]:
    return cases(spec_module.load())


def typed(value: Any) -> Any:
    """``value`` (what ``to_dict()`` returns) as JSON that keeps the Python types apart.

    An enum member is ``{"$enum": class, "value": v}`` and a datetime ``{"$datetime": iso}``,
    so that the recording says what the official client's ``to_dict()`` holds, not only its
    JSON value; anything else that is not JSON is ``{"$type": class, "repr": ...}``.
    """
    if isinstance(value, enum.Enum):
        return {"$enum": type(value).__name__, "value": value.value}
    if isinstance(value, datetime.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dict):
        return {key: typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [typed(item) for item in value]
    if value is None or type(value) in (str, int, float, bool):
        return value
    return {"$type": type(value).__name__, "repr": repr(value)}


def outcome(call: Any) -> Any:
    """What ``call()`` returns, or ``{"raises": "Type: message"}``."""
    try:
        return call()
    except Exception as error:  # the recording keeps what was raised
        return {"raises": f"{type(error).__name__}: {error}"}


_TZINFO = re.compile(r"TzInfo\([^)]*\)")


def without_tzinfo_repr(text: str) -> str:
    """``text`` with pydantic's ``TzInfo(...)`` reprs made alike: they differ between its versions."""
    return _TZINFO.sub("TzInfo(…)", text)
