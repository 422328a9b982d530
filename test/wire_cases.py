"""One call per operation, with the answer the server gives: shared by the recorder and the wire tests.

Stdlib and ``generator`` only, so the recorder can run it beside the official client.
"""

from __future__ import annotations

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
    return model_sample(model_by_class(spec)[str(op.response.name)], spec)


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
                    "answer": answer(op, spec),
                }
            )
    return found


def load_cases() -> List[Dict[str, Any]]:
    return cases(spec_module.load())
