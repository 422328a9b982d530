"""Fills the templates from the ``Spec``: one function per kind of generated file."""

from __future__ import annotations

import json
import pprint
import textwrap
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from generator import naming
from generator.rules import (
    HAND_WRITTEN_EXPORTS,
    LIMITED_API_OPERATIONS,
    LIMITED_API_QUERY_BODY,
    LIMITED_API_QUERY_PARAMS,
)
from generator.spec import EnumDef, FieldDef, ModelDef, OperationDef, ParamDef, Spec, TypeRef
from generator.templates import (
    API_MODULE,
    ASYNC_METHODS,
    ENUM,
    HEADER,
    LAZY_PACKAGE,
    LAZY_PACKAGE_NO_IMPORTS,
    METHODS,
    MODEL,
    OPERATION,
    PACKAGE_STUB,
    SANDBOX_TABLE,
    SECURITY_TABLE,
)

DOC_WIDTH = 88
_ACCESS_HEADING = "#### دسترسی"
_SCALARS = {
    "str": "StrictStr",
    "int": "StrictInt",
    "int64": "Int64",
    "float": "Union[StrictFloat, StrictInt]",
    "bool": "StrictBool",
    "datetime": "datetime",
    "any_dict": "JsonObject",
}
_PYDANTIC_NAMES = ("StrictBool", "StrictFloat", "StrictInt", "StrictStr")
_TYPING_NAMES = ("Any", "Dict", "List", "Optional", "Union")


# -- text helpers ---------------------------------------------------------------------------


def py_str(text: str) -> str:
    """A Python literal for ``text``; long ones as a parenthesized implicit concatenation."""
    if len(text) <= 60:
        return json.dumps(text, ensure_ascii=False)
    chunks = textwrap.wrap(text, 60, drop_whitespace=False, replace_whitespace=False)
    return "(\n" + "\n".join(json.dumps(chunk, ensure_ascii=False) for chunk in chunks) + "\n)"


def docstring(*paragraphs: str, indent: int = 4) -> str:
    """Docstring text: paragraphs wrapped to the line length, safe inside triple quotes."""
    pad = " " * indent
    blocks = []
    for paragraph in paragraphs:
        paragraph = paragraph.replace("\\", "\\\\").replace('"""', '\\"\\"\\"').strip()
        if paragraph:
            blocks.append(textwrap.fill(paragraph, DOC_WIDTH - indent, subsequent_indent=pad))
    text = ("\n\n" + pad).join(blocks)
    return text + "\n" + pad if "\n" in text else text


def spec_prose(description: str) -> str:
    """An operation's description without its permissions section (rendered separately)."""
    prose = description.split(_ACCESS_HEADING, 1)[0]
    return " ".join(line.strip() for line in prose.splitlines() if line.strip())


def code_list(names: Iterable[str]) -> str:
    return ", ".join(f"``{name}``" for name in names)


# -- types ----------------------------------------------------------------------------------


def annotation(t: TypeRef) -> str:
    """The annotation of a model field of type ``t`` (without Optional)."""
    if t.kind in _SCALARS:
        return _SCALARS[t.kind]
    if t.kind == "list":
        assert t.item is not None
        return f"List[{annotation(t.item)}]"
    if t.kind == "dict":
        assert t.item is not None
        return f"Dict[str, {annotation(t.item)}]"
    if t.kind == "enum":
        return f"Union[{t.name}, {value_alias(str(t.name))}]"
    return str(t.name)


def value_alias(enum_class: str) -> str:
    """The name of the ``Literal`` alias of an enum's values, defined beside the enum."""
    return f"{enum_class}Value"


def literal(values: Sequence[str]) -> str:
    return "Literal[" + ", ".join(json.dumps(v) for v in values) + "]"


def classes_in(t: TypeRef) -> Set[str]:
    """The model and enum classes a type refers to."""
    if t.item is not None:
        return classes_in(t.item)
    return {str(t.name)} if t.kind in ("model", "enum") else set()


def enums_in(t: TypeRef) -> Set[str]:
    """The enum classes a type refers to."""
    if t.item is not None:
        return enums_in(t.item)
    return {str(t.name)} if t.kind == "enum" else set()


def import_names(name: str, enums: Set[str]) -> str:
    """What to import from a class's module: the class, and its values alias for an enum."""
    return f"{name}, {value_alias(name)}" if name in enums else name


# -- models ---------------------------------------------------------------------------------


def render_model(model: ModelDef) -> str:
    lines = [render_field(f) for f in model.fields]
    body = "\n".join(lines)
    imports = model_imports(model, body)
    doc = docstring(f"The ``{model.schema_name}`` schema.", model.description)
    return MODEL.substitute(
        header=HEADER,
        class_name=model.class_name,
        schema_name=model.schema_name,
        imports=imports,
        docstring=doc,
        fields=body,
    )


def render_field(f: FieldDef) -> str:
    type_text = annotation(f.type)
    if not f.required:
        type_text = f"Optional[{type_text}]"
    arguments: List[str] = [] if f.required else ["default=None"]
    if f.min_length is not None:
        arguments.append(f"min_length={f.min_length}")
    if f.max_length is not None:
        arguments.append(f"max_length={f.max_length}")
    if f.description:
        arguments.append(f"description={py_str(f.description)}")
    if f.wire_name != f.name:
        arguments.append(f"alias={json.dumps(f.wire_name)}")
    if f.example is not None:
        arguments.append(f"examples=[{f.example!r}]")
    if arguments == ["default=None"]:
        return f"    {f.name}: {type_text} = None"
    if not arguments:
        return f"    {f.name}: {type_text}"
    return f"    {f.name}: {type_text} = Field({', '.join(arguments)})"


def model_imports(model: ModelDef, body: str) -> str:
    words = set(body.replace("[", " ").replace("]", " ").replace(",", " ").replace(":", " ").split())
    typing_names = [n for n in _TYPING_NAMES if n in words]
    pydantic_names = sorted(
        {n for n in _PYDANTIC_NAMES if n in words} | ({"Field"} if "Field(" in body else set())
    )
    lines = []
    if "datetime" in words:
        lines.append("from datetime import datetime")
    if typing_names:
        lines.append(f"from typing import {', '.join(typing_names)}")
    lines.append("")
    if pydantic_names:
        lines.append(f"from pydantic import {', '.join(pydantic_names)}")
    if "Literal[" in body:
        lines.append("from typing_extensions import Literal")
    lines.append("")
    lines.append("from kenar_api_client.models._base import KenarModel")
    shared_types = [name for name in ("Int64", "JsonObject") if name in words]
    if shared_types:
        lines.append(f"from kenar_api_client.models._types import {', '.join(shared_types)}")
    referenced = set().union(*(classes_in(f.type) for f in model.fields)) if model.fields else set()
    enums = set().union(*(enums_in(f.type) for f in model.fields)) if model.fields else set()
    for name in sorted(referenced, key=naming.module_name):
        module = naming.module_name(name)
        lines.append(f"from kenar_api_client.models.{module} import {import_names(name, enums)}")
    return "\n".join(lines).replace("\n\n\n", "\n\n").strip("\n")


def render_enum(enum: EnumDef) -> str:
    members = "\n".join(f'    {value} = "{value}"' for value in enum.values)
    doc = docstring(f"The ``{enum.schema_name}`` values.", enum.description)
    return ENUM.substitute(
        header=HEADER,
        class_name=enum.class_name,
        schema_name=enum.schema_name,
        docstring=doc,
        members=members,
        values=literal(enum.values),
    )


def render_models_package(spec: Spec) -> Tuple[str, str]:
    """The lazy ``models/__init__.py`` and its ``__init__.pyi`` with the re-exports."""
    exports: Dict[str, str] = dict(HAND_WRITTEN_EXPORTS)
    exports.update({model.class_name: "." + model.module for model in spec.models})
    exports.update({enum.class_name: "." + enum.module for enum in spec.enums})
    names = sorted(exports, key=str.lower)
    return (
        LAZY_PACKAGE_NO_IMPORTS.substitute(
            header=HEADER,
            docstring="The API's models, each imported on first use: ``import kenar_api_client`` stays fast.",
            exports="\n".join(dict_entry(name, exports[name]) for name in names),
        ),
        PACKAGE_STUB.substitute(
            header=HEADER,
            type_imports="\n".join(
                f"from kenar_api_client.models{exports[name]} import {name} as {name}" for name in names
            ),
        ),
    )


def dict_entry(key: str, value: str) -> str:
    """One ``"key": "value",`` line, the value parenthesized on its own line when too long."""
    line = f'    "{key}": "{value}",'
    return line if len(line) <= 110 else f'    "{key}": (\n        "{value}"\n    ),'


def render_lazy_package(doc: str, package: str, exports: Mapping[str, str]) -> str:
    names = sorted(exports, key=str.lower)
    export_lines = "\n".join(dict_entry(name, exports[name]) for name in names)
    by_module: Dict[str, List[str]] = {}
    for name in names:
        by_module.setdefault(exports[name], []).append(name)
    import_lines = []
    for module in sorted(by_module):
        members = ", ".join(f"{name} as {name}" for name in by_module[module])
        import_lines.append(f"    from {package}{module} import {members}")
    return LAZY_PACKAGE.substitute(
        header=HEADER, docstring=doc, exports=export_lines, type_imports="\n".join(import_lines)
    )


# -- APIs -----------------------------------------------------------------------------------


def param_kind(p: ParamDef) -> Tuple[str, Optional[str], bool]:
    """(Param kind, type name, many) of an operation parameter."""
    t, many = p.type, False
    if t.kind == "list":
        assert t.item is not None
        t, many = t.item, True
    if t.kind == "any_dict":
        return "dict", None, many
    if t.kind in ("model", "enum"):
        return t.kind, t.name, many
    return ("int" if t.kind in ("int", "int64") else "str"), None, many


def param_declaration(p: ParamDef) -> str:
    kind, type_name, many = param_kind(p)
    parts = [json.dumps(p.name), json.dumps(kind), json.dumps(p.location)]
    if type_name:
        parts.append(f"type_name={json.dumps(type_name)}")
    if kind == "enum":
        parts.append(f"enum_values={tuple_literal(p.type.enum_values)}")
    if p.required:
        parts.append("required=True")
    if many:
        parts.append("many=True")
    return f"Param({', '.join(parts)})"


def param_annotation(p: ParamDef) -> str:
    """The method parameter's annotation and default."""
    kind, type_name, many = param_kind(p)
    if kind == "enum":
        base = f"Union[{type_name}, {value_alias(str(type_name))}"
        return base + ("]" if p.required else ", None] = None")
    if kind == "model":
        base = f"Union[{type_name}, Dict[str, Any]]"
    elif kind == "dict":
        base = "Dict[str, Any]"
    else:
        base = kind
    if many:
        base = f"List[{base}]"
    return base if p.required else f"Optional[{base}] = None"


def constant_name(op: OperationDef) -> str:
    prefix = naming.underscore(naming.camelize(op.tag)) + "_"
    name = op.method_name[len(prefix) :] if op.method_name.startswith(prefix) else op.method_name
    return name.upper()


def return_type(op: OperationDef) -> str:
    return "object" if op.response is None else str(op.response.name)


def needs(op: OperationDef) -> str:
    """What an operation needs, in words: API key permissions and OAuth scopes."""
    parts = []
    if op.permissions:
        parts.append(f"API key permission {code_list(op.permissions)}")
    else:
        parts.append("an API key")
    if op.scopes:
        which = "scope" if len(op.scopes) == 1 else "scopes (any one of)"
        parts.append(f"an access token with the OAuth {which} {code_list(op.scopes)}")
    return " and ".join(parts) + "."


def method_docstring(op: OperationDef, overrides: Mapping[str, str]) -> str:
    if op.method_name in overrides:
        return overrides[op.method_name]
    returns = "the answer's JSON object" if op.response is None else f"a ``{return_type(op)}``"
    return docstring(
        op.summary,
        spec_prose(op.description),
        f"``{op.http_method} {op.path}``. Needs {needs(op)} Returns {returns}.",
        "Raises ``pydantic.ValidationError`` for an invalid argument (nothing is sent), an "
        "``ApiException`` subclass for an error answer or a transport failure.",
        indent=8,
    )


def render_operation(op: OperationDef, constant: str) -> str:
    params = ", ".join(param_declaration(p) for p in op.params)
    extra = []
    if op.body is not None:
        extra.append('content_type="application/json"')
    if op.oauth:
        extra.append('auth=("APIKey", "OAuth")')
    return OPERATION.substitute(
        constant=constant,
        method_name=op.method_name,
        http_method=op.http_method,
        path=op.path,
        params=params,
        response_type=json.dumps(return_type(op)),
        extra="".join(f"\n    {item}," for item in extra),
    )


def tuple_literal(items: Sequence[str]) -> str:
    return "(" + ", ".join(json.dumps(i) for i in items) + ("," if len(items) == 1 else "") + ")"


def render_methods(op: OperationDef, constant: str, overrides: Mapping[str, str], class_name: str) -> str:
    signature = "".join(f"\n        {p.name}: {param_annotation(p)}," for p in op.params)
    args = "{" + ", ".join(f'"{p.name}": {p.name}' for p in op.params) + "}"
    return METHODS.substitute(
        method_name=op.method_name,
        signature=signature,
        return_type=return_type(op),
        docstring=method_docstring(op, overrides),
        constant=constant,
        args=args,
    )


def render_async_methods(op: OperationDef, constant: str, class_name: str) -> str:
    signature = "".join(f"\n        {p.name}: {param_annotation(p)}," for p in op.params)
    args = "{" + ", ".join(f'"{p.name}": {p.name}' for p in op.params) + "}"
    return ASYNC_METHODS.substitute(
        method_name=op.method_name,
        signature=signature,
        return_type=return_type(op),
        class_name=class_name,
        constant=constant,
        args=args,
    )


def render_api(
    class_name: str,
    tag: str,
    operations: Sequence[OperationDef],
    overrides: Mapping[str, str],
    *,
    class_doc: str,
    init: str = "",
    async_init: str = "",
) -> str:
    constants = [constant_name(op) for op in operations]
    declarations = "\n\n".join(render_operation(op, c) for op, c in zip(operations, constants))
    methods = "".join(render_methods(op, c, overrides, class_name) for op, c in zip(operations, constants))
    async_methods = "".join(render_async_methods(op, c, class_name) for op, c in zip(operations, constants))
    type_names: Set[str] = set()
    enum_params: Set[str] = set()
    for op in operations:
        for p in op.params:
            type_names |= classes_in(p.type)
            enum_params |= enums_in(p.type)
        if op.response is not None:
            type_names |= classes_in(op.response)
    text = declarations + methods
    words = set(text.replace("[", " ").replace("]", " ").replace(",", " ").split())
    typing_names = [n for n in _TYPING_NAMES if n in words]
    lines = []
    if typing_names:
        lines.append(f"from typing import TYPE_CHECKING, {', '.join(typing_names)}")
    else:
        lines.append("from typing import TYPE_CHECKING")
    lines.append("")
    lines.append("from typing_extensions import " + ("Literal, Unpack" if "Literal[" in text else "Unpack"))
    lines.append("")
    lines.append("from kenar_api_client._operation import Operation, Param, RequestOptions")
    lines.append("from kenar_api_client.api._base import ApiBase, AsyncApiBase")
    lines.append("")
    lines.append("if TYPE_CHECKING:")
    lines.append("    import urllib3")
    lines.append("")
    lines.append("    from kenar_api_client._transport import UnreadAsyncResponse")
    lines.append("    from kenar_api_client.api_response import ApiResponse")
    if type_names:
        lines.append("    from kenar_api_client.models import (")
        lines.extend(f"        {name}," for name in sorted(type_names))
        lines.append("    )")
    for name in sorted(enum_params):
        module = naming.module_name(name)
        lines.append(f"    from kenar_api_client.models.{module} import {value_alias(name)}")
    return API_MODULE.substitute(
        header=HEADER,
        class_name=class_name,
        tag=tag,
        imports="\n".join(lines),
        operations=declarations.rstrip("\n"),
        docstring=class_doc,
        init=init,
        methods=methods,
        async_init=async_init,
        async_methods=async_methods,
    )


def render_tag_api(spec: Spec, tag: str, overrides: Mapping[str, str]) -> str:
    operations = spec.operations_of(tag)
    oauth = sum(op.oauth for op in operations)
    class_doc = docstring(
        f"The {tag} operations of Kenar ({len(operations)}). Each needs the app's API key; "
        f"{oauth} of them also send the user's OAuth access token.",
    ).rstrip()
    return render_api(naming.api_class_name(tag), tag, operations, overrides, class_doc=class_doc)


def limited_operations(spec: Spec) -> List[OperationDef]:
    """LimitedApi's operations: the spec's, with its API-key-only auth and its query-string quirk."""
    by_id = {op.operation_id: op for op in spec.operations}
    schemas = spec.document["components"]["schemas"]
    result = []
    for operation_id in LIMITED_API_OPERATIONS:
        op = by_id[operation_id]
        params = op.params
        if operation_id == LIMITED_API_QUERY_BODY:
            assert op.body_schema is not None
            properties = schemas[op.body_schema]["properties"]
            params = tuple(
                ParamDef(name, name, "query", _query_type(properties[name]), False, "")
                for name in LIMITED_API_QUERY_PARAMS
            )
        result.append(
            OperationDef(
                op.operation_id,
                op.method_name,
                op.tag,
                op.http_method,
                op.path,
                params,
                op.response,
                op.summary,
                op.description,
                op.permissions,
                (),
                op.body_schema,
                op.response_schema,
            )
        )
    return sorted(result, key=lambda op: op.method_name)


def _query_type(prop: Mapping[str, Any]) -> TypeRef:
    return TypeRef("list", item=TypeRef("str")) if prop.get("type") == "array" else TypeRef("str")


LIMITED_INIT = """
    def __init__(self, api_client: Optional[ApiClient] = None) -> None:
        warnings.warn(DEPRECATION, DeprecationWarning, stacklevel=2)
        super().__init__(api_client)
"""

LIMITED_ASYNC_INIT = """
    def __init__(self, api_client: Optional[AsyncApiClient] = None) -> None:
        warnings.warn(DEPRECATION, DeprecationWarning, stacklevel=2)
        super().__init__(api_client)
"""

LIMITED_DEPRECATION = """
DEPRECATION = (
    "LimitedApi is deprecated: use PaymentApi, which has the same operations and "
    "sends what the current Kenar API expects"
)
"""


def render_limited_api(spec: Spec) -> str:
    class_doc = docstring(
        "Deprecated: use ``PaymentApi``. Kept so code importing the official client's "
        "``LimitedApi`` keeps working, with the same signatures and requests: nine Payment "
        "operations that send the API key only, and ``payment_submit_user_payment`` taking "
        "the payment's fields as query parameters."
    ).rstrip()
    text = render_api(
        "LimitedApi",
        "Payment (deprecated copy)",
        limited_operations(spec),
        {},
        class_doc=class_doc,
        init=LIMITED_INIT,
        async_init=LIMITED_ASYNC_INIT,
    )
    text = text.replace(
        "from __future__ import annotations\n\n", "from __future__ import annotations\n\nimport warnings\n", 1
    )
    text = text.replace(
        "from typing import TYPE_CHECKING, ", "from typing import TYPE_CHECKING, Optional, ", 1
    )
    text = text.replace("\n\n\nclass LimitedApi(", "\n" + LIMITED_DEPRECATION + "\n\nclass LimitedApi(", 1)
    return text.replace(
        "    import urllib3\n",
        "    import urllib3\n\n    from kenar_api_client.api_client import ApiClient\n"
        "    from kenar_api_client.async_api_client import AsyncApiClient\n",
        1,
    )


def api_exports(spec: Spec) -> Dict[str, str]:
    exports: Dict[str, str] = {}
    for tag in spec.tags:
        name, module = naming.api_class_name(tag), "." + naming.api_module_name(tag)
        exports[name] = exports["Async" + name] = module
    exports["LimitedApi"] = exports["AsyncLimitedApi"] = ".limited_api"
    return exports


def render_api_package(spec: Spec) -> str:
    exports = {k: v for k, v in api_exports(spec).items() if not k.endswith("LimitedApi")}
    return render_lazy_package(
        "The API classes, one per tag of the Kenar OpenAPI document, each imported on first use.",
        "kenar_api_client.api",
        exports,
    )


def render_security_table(spec: Spec) -> str:
    rows = "\n".join(
        f'    "{op.method_name}": ({tuple_literal(op.permissions)}, {tuple_literal(op.scopes)}),'
        for op in sorted(spec.operations, key=lambda op: op.method_name)
    )
    return SECURITY_TABLE.substitute(header=HEADER, rows=rows.replace("(,)", "()"))


# -- sandbox --------------------------------------------------------------------------------


def compact_type(t: TypeRef) -> Any:
    if t.kind in ("model", "enum"):
        return ["ref", t.schema_name]
    if t.kind in ("list", "dict"):
        assert t.item is not None
        return [t.kind, compact_type(t.item)]
    return t.kind


def render_sandbox_table(spec: Spec) -> str:
    from generator.spec import _Reader

    reader = _Reader(spec.document)
    operations = [
        [
            op.http_method,
            op.path,
            op.method_name,
            [
                [p.wire_name, p.location, compact_type(p.type), p.required]
                for p in op.params
                if p.location != "body"
            ],
            "{}" if op.body is not None and op.body.type.kind == "any_dict" else op.body_schema,
            op.response_schema,
            list(op.scopes),
        ]
        for op in sorted(spec.operations, key=lambda op: op.method_name)
    ]
    schemas: Dict[str, Any] = {}
    enum_classes = {enum.schema_name: enum for enum in spec.enums}
    for name, schema in sorted(spec.document["components"]["schemas"].items()):
        if "enum" in schema:
            # The values are the generated enum's: named here, not copied.
            enum = enum_classes[name]
            schemas[name] = ["enum", f"{enum.module}.{enum.class_name}"]
        else:
            required = set(schema.get("required", ()))
            schemas[name] = [
                "object",
                {
                    prop: [compact_type(reader.type_of(value, prop)), prop in required]
                    for prop, value in schema.get("properties", {}).items()
                },
            ]
    return SANDBOX_TABLE.substitute(
        header=HEADER,
        operations=pprint.pformat(operations, width=100, compact=True),
        schemas=pprint.pformat(schemas, width=100, compact=True),
    )
