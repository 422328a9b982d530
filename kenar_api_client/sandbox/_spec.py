"""The spec's operations, as the sandbox serves them: the generated table, and matching a request to it."""

from __future__ import annotations

import functools
import re
from typing import Any, Dict, List, Pattern, Tuple
from urllib.parse import unquote

from kenar_api_client.sandbox._rpc import Code, RpcError, quoted


class SpecOperation:
    """One operation of the generated table, with its path compiled to a pattern.

    ``params`` are its path and query parameters as ``[name, location, type, required]``;
    ``body`` and ``response`` name its schemas (``"{}"``: a free-form JSON object body).
    """

    def __init__(self, row: List[Any]) -> None:
        self.method, self.path, self.name, self.params, self.body, self.response = row
        names = re.findall(r"{(\w+)}", self.path)
        pattern = re.escape(self.path)
        for name in names:
            pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[^/]+)")
        self.pattern: Pattern[str] = re.compile(pattern + "$")
        self.path_params: Tuple[str, ...] = tuple(names)

    def __repr__(self) -> str:
        return f"SpecOperation({self.name}: {self.method} {self.path})"


@functools.lru_cache(maxsize=1)
def _loaded() -> Tuple[List[SpecOperation], Dict[str, Any]]:
    from kenar_api_client.sandbox._spec_operations import OPERATIONS, SCHEMAS

    return [SpecOperation(row) for row in OPERATIONS], SCHEMAS


def operations() -> List[SpecOperation]:
    """Every operation of the spec, by method name."""
    return _loaded()[0]


def schemas() -> Dict[str, Any]:
    """The spec's schemas, compact (see ``_spec_operations``)."""
    return _loaded()[1]


def match(method: str, path: str) -> Tuple[SpecOperation, Dict[str, str]]:
    """The operation of ``method`` and ``path`` and its path values, decoded; else 404 or 405."""
    allowed = []
    for operation in operations():
        found = operation.pattern.match(path)
        if found is None:
            continue
        if operation.method == method:
            return operation, {name: unquote(value) for name, value in found.groupdict().items()}
        allowed.append(operation.method)
    if allowed:
        methods = sorted(set(allowed))
        accepted = f"{methods[0]} only" if len(methods) == 1 else ", ".join(methods)
        raise RpcError(
            Code.UNIMPLEMENTED,
            f"Method Not Allowed: {path} accepts {accepted}",
            {"Allow": ", ".join(methods)},
        )
    raise RpcError(Code.NOT_FOUND, f"Not Found: {quoted(path, 80)} is not a Kenar API path")
