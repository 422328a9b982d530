"""Reads the OpenAPI document into the few typed facts the templates need."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Mapping, Optional, Tuple

from generator import naming
from generator.rules import FIELD_RULES, HAND_WRITTEN_MODELS

SPEC_PATH = Path(__file__).resolve().parent / "spec" / "kenar-openapi.json"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
PERMISSIONS_HEADING = "##### مجوزهای API Key مورد نیاز:"
_CODE_SPAN = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class TypeRef:
    """A schema as a Python type: a scalar kind, a model or enum class, or a container."""

    kind: str  # str, int, int64, float, bool, datetime, any_dict, dict, list, model, enum
    name: Optional[str] = None  # class name for model and enum
    item: Optional[TypeRef] = None  # list items, dict values
    enum_values: Tuple[str, ...] = ()
    schema_name: Optional[str] = None  # the component a model or enum comes from


@dataclass(frozen=True)
class FieldDef:
    """One property of a model."""

    name: str
    wire_name: str
    type: TypeRef
    required: bool
    description: str
    read_only: bool = False
    example: Any = None
    min_length: Optional[int] = None
    max_length: Optional[int] = None


@dataclass(frozen=True)
class ModelDef:
    """An object schema with properties: one model class in one module."""

    schema_name: str
    class_name: str
    module: str
    description: str
    fields: Tuple[FieldDef, ...]
    legacy: bool = False  # from generator/legacy_models.json, not the spec


@dataclass(frozen=True)
class EnumDef:
    """A string enum schema."""

    schema_name: str
    class_name: str
    module: str
    description: str
    values: Tuple[str, ...]
    legacy: bool = False  # from generator/legacy_models.json, not the spec


@dataclass(frozen=True)
class ParamDef:
    """One parameter of an operation, as the method takes it."""

    name: str
    wire_name: str
    location: str  # path, query, body
    type: TypeRef
    required: bool
    description: str


@dataclass(frozen=True)
class OperationDef:
    """One operation of the API."""

    operation_id: str
    method_name: str
    tag: str
    http_method: str
    path: str
    params: Tuple[ParamDef, ...]
    response: Optional[TypeRef]  # None: an empty object, returned as a plain dict
    summary: str
    description: str
    permissions: Tuple[str, ...]
    scopes: Tuple[str, ...]
    body_schema: Optional[str] = None
    response_schema: Optional[str] = None  # None: an inline empty object

    @property
    def oauth(self) -> bool:
        """Whether the spec's security names OAuth, so the call sends the access token."""
        return bool(self.scopes)

    @property
    def body(self) -> Optional[ParamDef]:
        return next((p for p in self.params if p.location == "body"), None)


@dataclass(frozen=True)
class Spec:
    """Everything the templates read."""

    document: Mapping[str, Any]
    sha256: str
    models: Tuple[ModelDef, ...]
    enums: Tuple[EnumDef, ...]
    operations: Tuple[OperationDef, ...]
    tags: Tuple[str, ...] = field(default=())

    def operations_of(self, tag: str) -> List[OperationDef]:
        return sorted((op for op in self.operations if op.tag == tag), key=lambda op: op.method_name)


def load(path: Path = SPEC_PATH) -> Spec:
    """Read and interpret the OpenAPI document at ``path``."""
    raw = path.read_bytes()
    return interpret(json.loads(raw), hashlib.sha256(raw).hexdigest())


def interpret(document: Mapping[str, Any], sha256: str = "") -> Spec:
    """The ``Spec`` of an already parsed OpenAPI document."""
    schemas: Mapping[str, Any] = document["components"]["schemas"]
    reader = _Reader(document)
    models: List[ModelDef] = []
    enums: List[EnumDef] = []
    for schema_name in sorted(schemas, key=naming.class_name):
        schema = schemas[schema_name]
        class_name = naming.class_name(schema_name)
        description = _text(schema)
        if "enum" in schema:
            values = tuple(schema["enum"])
            enums.append(
                EnumDef(schema_name, class_name, naming.module_name(class_name), description, values)
            )
        elif schema.get("properties") and schema_name not in HAND_WRITTEN_MODELS:
            fields = tuple(
                reader.field(schema_name, name, prop, name in schema.get("required", ()))
                for name, prop in schema["properties"].items()
            )
            models.append(
                ModelDef(schema_name, class_name, naming.module_name(class_name), description, fields)
            )
    operations = [
        reader.operation(path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]
    operations.sort(key=lambda op: (op.tag, op.method_name))
    tags = tuple(sorted({op.tag for op in operations}))
    return Spec(document, sha256, tuple(models), tuple(enums), tuple(operations), tags)


def _text(schema: Mapping[str, Any]) -> str:
    return str(schema.get("description") or schema.get("title") or "").strip()


def is_free_form(schema: Mapping[str, Any]) -> bool:
    """An object schema that declares nothing: any JSON object is valid."""
    return (
        schema.get("type") == "object"
        and not schema.get("properties")
        and "additionalProperties" not in schema
    )


class _Reader:
    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.schemas: Mapping[str, Any] = document["components"]["schemas"]
        self.default_security = document.get("security", [])

    def resolve(self, ref: str) -> Tuple[str, Mapping[str, Any]]:
        *_, section, name = ref.split("/")
        components = self.document["components"][section]
        return name, components[name]

    def type_of(self, schema: Mapping[str, Any], name_hint: str = "") -> TypeRef:
        if "enum" in schema:
            return self.inline_enum(schema, name_hint)
        if "$ref" in schema:
            name, target = self.resolve(schema["$ref"])
            if "enum" in target:
                return TypeRef(
                    "enum", naming.class_name(name), enum_values=tuple(target["enum"]), schema_name=name
                )
            if is_free_form(target):
                return TypeRef("any_dict")
            return TypeRef("model", HAND_WRITTEN_MODELS.get(name, naming.class_name(name)), schema_name=name)
        kind = schema.get("type")
        fmt = schema.get("format")
        if kind == "string":
            return TypeRef("datetime" if fmt == "date-time" else "str")
        if kind == "integer":
            return TypeRef("int64" if fmt == "int64" else "int")
        if kind == "number":
            return TypeRef("float")
        if kind == "boolean":
            return TypeRef("bool")
        if kind == "array":
            return TypeRef("list", item=self.type_of(schema["items"]))
        if kind == "object" or kind is None:
            values = schema.get("additionalProperties")
            if isinstance(values, dict) and values:
                return TypeRef("dict", item=self.type_of(values))
            return TypeRef("any_dict")
        raise ValueError(f"unsupported schema: {schema}")

    def inline_enum(self, schema: Mapping[str, Any], name_hint: str) -> TypeRef:
        """An enum declared in place: typed with the component enum of the same values and name."""
        values = tuple(schema["enum"])
        suffix = naming.camelize(name_hint)
        for name, target in self.schemas.items():
            if tuple(target.get("enum", ())) == values and naming.class_name(name).endswith(suffix):
                return TypeRef("enum", naming.class_name(name), enum_values=values, schema_name=name)
        raise ValueError(f"no component enum matches the inline enum {name_hint!r}: {values}")

    def field(self, schema_name: str, wire_name: str, prop: Mapping[str, Any], required: bool) -> FieldDef:
        rules = FIELD_RULES.get((schema_name, wire_name), {})
        return FieldDef(
            name=naming.field_name(wire_name),
            wire_name=wire_name,
            type=self.type_of(prop),
            required=required,
            description=_text(prop),
            read_only=bool(prop.get("readOnly")),
            example=prop.get("example"),
            min_length=rules.get("min_length"),
            max_length=rules.get("max_length"),
        )

    def operation(self, path: str, method: str, operation: Mapping[str, Any]) -> OperationDef:
        params = [
            ParamDef(
                name=naming.field_name(p["name"]),
                wire_name=p["name"],
                location=p["in"],
                type=self.type_of(p["schema"], p["name"]),
                required=bool(p.get("required")),
                description=str(p.get("description", "")),
            )
            for p in operation.get("parameters", ())
        ]
        body_schema = None
        if "requestBody" in operation:
            body, body_schema = self.body(operation["requestBody"])
            params.append(body)
        params.sort(key=lambda p: not p.required)  # stable: required first, as the generator does
        response_schema, response = self.response(operation["responses"]["200"])
        security = operation.get("security", self.default_security)
        scopes = tuple(scope for requirement in security for scope in requirement.get("OAuth", ()))
        description = str(operation.get("description", ""))
        return OperationDef(
            operation_id=operation["operationId"],
            method_name=naming.method_name(operation["operationId"]),
            tag=operation["tags"][0],
            http_method=method.upper(),
            path=path,
            params=tuple(params),
            response=response,
            summary=str(operation.get("summary", "")),
            description=description,
            permissions=permissions_of(description),
            scopes=scopes,
            body_schema=body_schema,
            response_schema=response_schema,
        )

    def body(self, request_body: Mapping[str, Any]) -> Tuple[ParamDef, str]:
        name = None
        if "$ref" in request_body:
            name, request_body = self.resolve(request_body["$ref"])
        schema = request_body["content"]["application/json"]["schema"]
        schema_name, target = self.resolve(schema["$ref"])
        if is_free_form(target):
            param_name, type_ref = "body", TypeRef("any_dict")
        else:
            param_name = naming.underscore(naming.class_name(name or schema_name))
            type_ref = self.type_of(schema)
        param = ParamDef(param_name, param_name, "body", type_ref, bool(request_body.get("required")), "")
        return param, schema_name

    def response(self, response: Mapping[str, Any]) -> Tuple[Optional[str], Optional[TypeRef]]:
        schema = response["content"]["application/json"]["schema"]
        name = self.resolve(schema["$ref"])[0] if "$ref" in schema else None
        type_ref = self.type_of(schema)
        return name, (None if type_ref.kind == "any_dict" else type_ref)


def permissions_of(description: str) -> Tuple[str, ...]:
    """The API key permissions an operation's description lists under its permissions heading."""
    _, found, rest = description.partition(PERMISSIONS_HEADING)
    if not found:
        return ()
    section = rest.split("#####", 1)[0]
    return tuple(_CODE_SPAN.findall(section))
