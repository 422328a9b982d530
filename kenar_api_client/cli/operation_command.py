"""``kenar-events api OPERATION``: call any operation of the API, with flags and help made from its method.

Each operation's flags and ``--help`` come from the generated API method, itself generated
from Kenar's OpenAPI document: its parameters (``--param NAME=VALUE``), its JSON body
(``--json-body``), its summary, path and the permission and scopes it needs.
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from kenar_api_client.cli.api_commands import call_api
from kenar_api_client.cli.inputs import json_object, read_text
from kenar_api_client.cli.output import EXIT_FAILED, EXIT_OK, Output, UsageError
from kenar_api_client.cli.parser import PROG

if TYPE_CHECKING:
    from kenar_api_client.api_client import ApiClient

# The method and path the docstring names; a long path may be wrapped over two lines.
_HTTP_LINE = re.compile(r"``(GET|POST|PUT|PATCH|DELETE) (/[^`]*)``")
_INT_ANNOTATIONS = ("int", "Optional[int]")
_BODY_MARK = "Dict[str, Any]"  # every body parameter accepts its JSON object as a dict


@dataclass(frozen=True)
class Parameter:
    """One argument of an operation's method: a path or query value, or the JSON body."""

    name: str
    annotation: str
    required: bool

    @property
    def is_body(self) -> bool:
        return _BODY_MARK in self.annotation

    @property
    def is_int(self) -> bool:
        return self.annotation in _INT_ANNOTATIONS

    @property
    def model(self) -> Optional[str]:
        """The body's model class name (``Union[Model, Dict[str, Any]]``), if it has one."""
        found = re.match(r"Union\[(\w+), Dict\[str, Any\]\]", self.annotation)
        return found.group(1) if found else None


@dataclass(frozen=True)
class OperationInfo:
    """An operation as the command sees it: where its method is, its arguments, its docs."""

    name: str
    api_class: str
    parameters: Tuple[Parameter, ...]
    doc: str
    http: str  # "GET /v1/open-platform/assets/city"


def operations() -> List[OperationInfo]:
    """Every operation of the sync API classes (the deprecated LimitedApi's copies left out)."""
    from kenar_api_client import api

    found: List[OperationInfo] = []
    for class_name in sorted(
        name for name in api.__all__ if name != "LimitedApi" and not name.startswith("Async")
    ):
        api_class = getattr(api, class_name)
        for name, method in sorted(vars(api_class).items()):
            if name.startswith("_") or name.endswith(("_with_http_info", "_without_preload_content")):
                continue
            found.append(_info(name, class_name, method))
    return found


def _info(name: str, class_name: str, method: Any) -> OperationInfo:
    parameters = tuple(
        Parameter(p.name, str(p.annotation), p.default is inspect.Parameter.empty)
        for p in inspect.signature(method).parameters.values()
        if p.name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
    )
    doc = inspect.cleandoc(method.__doc__ or "")
    found = _HTTP_LINE.search(doc)
    # The docstring's last paragraph is about Python exceptions, not the operation.
    paragraphs = [p for p in doc.split("\n\n") if not p.startswith(("Raises ", "Not retried"))]
    text = "\n\n".join(paragraphs).replace("``", "`")
    http = f"{found[1]} {''.join(found[2].split())}" if found else ""
    return OperationInfo(name, class_name, parameters, text, http)


def find(name: str) -> OperationInfo:
    """The operation ``name``; a usage error naming close matches if there is none."""
    known = operations()
    for operation in known:
        if operation.name == name:
            return operation
    import difflib

    close = difflib.get_close_matches(name, [o.name for o in known], n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise UsageError(f"there is no operation {name!r}{hint}")


def operation_parser(operation: OperationInfo) -> argparse.ArgumentParser:
    """The flags of one operation, with its documentation as help."""
    from kenar_api_client.cli.parser import connection_flags

    values = [p for p in operation.parameters if not p.is_body]
    body = next((p for p in operation.parameters if p.is_body), None)
    epilog = ["parameters:"] if values else ["parameters: none"]
    for p in values:
        kind = "integer" if p.is_int else "string"
        epilog.append(f"  --param {p.name}=VALUE   {kind}, {'required' if p.required else 'optional'}")
    if body is not None:
        epilog.append(f"body: --json-body JSON, required{_body_fields(body)}")
    parser = argparse.ArgumentParser(
        prog=f"{PROG} api {operation.name}",
        description=operation.doc,
        epilog="\n".join(epilog),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")
    parser.add_argument(
        "--param",
        dest="params",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a path or query parameter (repeatable)",
    )
    if body is not None:
        parser.add_argument(
            "--json-body",
            metavar="JSON",
            help="the request body: a JSON object, or @FILE to read it from a file ('@-': stdin)",
        )
    connection_flags(parser)
    return parser


def _body_fields(body: Parameter) -> str:
    if body.model is None:
        return ": any JSON object"
    import kenar_api_client.models as models

    fields = getattr(models, body.model).model_fields
    shown = ", ".join(f"{name}{'' if field.is_required() else '?'}" for name, field in fields.items())
    return f", an object of type {body.model}: {{{shown}}} (? optional)"


def run(args: argparse.Namespace, out: Output) -> int:
    """Parse the operation's own flags, call it, print its answer."""
    if args.operation is None:
        raise UsageError(
            f"name an operation, e.g. '{PROG} api assets_get_cities' ({PROG} api --help lists them)"
        )
    operation = find(args.operation)
    options = operation_parser(operation).parse_args(args.arguments)
    if options.json:
        out.json = True
    kwargs = _arguments(operation, options)
    from kenar_api_client import _operation_security, api

    needs_token = bool(_operation_security.OPERATION_SECURITY[operation.name][1])

    def call(client: ApiClient) -> object:
        method = getattr(getattr(api, operation.api_class)(client), operation.name)
        return method(**kwargs)

    answer = call_api(options, out, call, needs_token=needs_token)
    if answer is None:
        return EXIT_FAILED
    document = _as_json(answer)
    out.line(f"ok: {operation.name}")
    for line in json.dumps(document, ensure_ascii=False, indent=2, default=str).splitlines():
        out.line(line)
    out.document({"ok": True, "operation": operation.name, "response": document})
    return EXIT_OK


def _arguments(operation: OperationInfo, options: argparse.Namespace) -> Dict[str, Any]:
    """The method's keyword arguments from ``--param`` and ``--json-body``, checked."""
    by_name = {p.name: p for p in operation.parameters if not p.is_body}
    kwargs: Dict[str, Any] = {}
    for assignment in options.params:
        name, sep, value = assignment.partition("=")
        if not sep or name not in by_name:
            known = ", ".join(by_name) or "none"
            raise UsageError(f"--param {assignment!r}: expected NAME=VALUE, NAME one of: {known}")
        if name in kwargs:
            raise UsageError(f"--param {name} is given more than once")
        kwargs[name] = _converted(by_name[name], value)
    missing = [p.name for p in by_name.values() if p.required and p.name not in kwargs]
    if missing:
        raise UsageError(f"{operation.name} needs --param {missing[0]}=VALUE")
    body = next((p for p in operation.parameters if p.is_body), None)
    if body is not None:
        if options.json_body is None:
            raise UsageError(f"{operation.name} needs a request body: --json-body JSON (or @FILE)")
        kwargs[body.name] = _json_body(options.json_body)
    return kwargs


def _converted(parameter: Parameter, value: str) -> Any:
    if not parameter.is_int:
        return value
    try:
        return int(value)
    except ValueError:
        raise UsageError(f"--param {parameter.name}: {value!r} is not an integer") from None


def _json_body(text: str) -> Dict[str, Any]:
    if text.startswith("@"):
        text = read_text(text[1:], "--json-body")
    return json_object(text, "--json-body")


def _as_json(answer: object) -> Any:
    to_dict = getattr(answer, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return answer if answer is not None else {}
