"""Fills the docs templates: a page per API class and per model, and the README's operation table."""

from __future__ import annotations

import json
from typing import Any, Dict, FrozenSet, List, Mapping, Sequence

from generator import naming
from generator.render import limited_operations, needs, return_type, spec_prose
from generator.spec import EnumDef, FieldDef, ModelDef, OperationDef, ParamDef, Spec, TypeRef
from generator.templates import API_DOC, API_DOC_SECTION, ENUM_DOC, MD_HEADER, MODEL_DOC

EXAMPLE_DEPTH = 3
#: Path and query values the examples use, by parameter name (others get "example").
SAMPLE_IDS = {
    "token": "wZ3kT9pQ",
    "post_token": "wZ3kT9pQ",
    "business_token": "bZ7kQ2pX",
    "conversation_id": "c-7f3a",
    "user_id": "demo-user-7f3a",
    "divar_user_id": "demo-user-7f3a",
    "phone": "09120000000",
    "id": "example-id",
    "category": "light",
    "category_slug": "light",
    "city_slug": "tehran",
}


def sample(t: TypeRef, spec: Spec, name: str = "", depth: int = 0, required_only: bool = False) -> Any:
    """A valid value of type ``t``, used by examples, the docs and the tests."""
    if t.kind == "str":
        return SAMPLE_IDS.get(name, "example")
    if t.kind in ("int", "int64"):
        return 10
    if t.kind == "float":
        return 1.5
    if t.kind == "bool":
        return True
    if t.kind == "datetime":
        return "2025-01-01T12:00:00Z"
    if t.kind == "any_dict":
        return {}
    if t.kind == "enum":
        return t.enum_values[0]
    if t.kind == "list":
        assert t.item is not None
        return [sample(t.item, spec, name, depth + 1, required_only)] if depth < EXAMPLE_DEPTH else []
    if t.kind == "dict":
        assert t.item is not None
        return {"key": sample(t.item, spec, name, depth + 1, required_only)}
    model = model_by_class(spec).get(str(t.name))
    if model is None or depth >= EXAMPLE_DEPTH:
        return {}
    return model_sample(model, spec, depth + 1, required_only)


def model_sample(model: ModelDef, spec: Spec, depth: int = 0, required_only: bool = False) -> Dict[str, Any]:
    return {
        f.wire_name: field_sample(f, spec, depth, required_only)
        for f in model.fields
        if f.required or not required_only
    }


def field_sample(f: FieldDef, spec: Spec, depth: int, required_only: bool) -> Any:
    example_types = {"str": str, "int": int, "int64": int, "float": float, "bool": bool}
    if type(f.example) is example_types.get(f.type.kind):
        return f.example
    if f.min_length is not None and f.type.kind == "str":
        return "x" * max(f.min_length, 8)
    return sample(f.type, spec, f.wire_name, depth, required_only)


def model_by_class(spec: Spec) -> Dict[str, ModelDef]:
    return {m.class_name: m for m in spec.models}


def type_text(t: TypeRef) -> str:
    """A type as the docs show it, linking models and enums to their pages."""
    if t.kind == "list":
        assert t.item is not None
        return f"List[{type_text(t.item)}]"
    if t.kind == "dict":
        assert t.item is not None
        return f"Dict[str, {type_text(t.item)}]"
    if t.kind in ("model", "enum"):
        return f"[`{t.name}`]({t.name}.md)"
    return {"int64": "int (or its decimal string)", "any_dict": "Dict[str, Any]", "datetime": "datetime"}.get(
        t.kind, t.kind
    )


def cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


# -- API pages ------------------------------------------------------------------------------


def py_literal(value: Any) -> str:
    """``value`` as Python source, double-quoted as the formatter writes it."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(py_literal(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def example_call(op: OperationDef, spec: Spec) -> str:
    args = [
        py_literal(sample(p.type, spec, p.wire_name, required_only=True)) for p in op.params if p.required
    ]
    return f"{op.method_name}({', '.join(args)})"


def example_operation(operations: List[OperationDef]) -> OperationDef:
    """The operation a page's example calls: the simplest, one needing no OAuth scope if there is one."""
    return min(operations, key=lambda op: (bool(op.scopes), op.body is not None))


def param_rows(params: List[ParamDef]) -> str:
    if not params:
        return "No parameters.\n"
    rows = ["| Name | Type | In | Notes |", "|---|---|---|---|"]
    for p in params:
        kind = type_text(p.type)
        if p.location == "body" and p.type.kind == "model":
            kind += " (or a dict of the same fields)"
        notes = ("required" if p.required else "optional") + (
            f"; {cell(p.description)}" if p.description else ""
        )
        rows.append(f"| `{p.name}` | {kind} | {p.location} | {notes} |")
    return "\n".join(rows) + "\n"


def render_api_doc(class_name: str, intro: str, operations: List[OperationDef], spec: Spec) -> str:
    table = "\n".join(
        f"| [`{op.method_name}`](#{op.method_name}) | `{op.http_method} {op.path}` | {cell(op.summary)} |"
        for op in operations
    )
    sections = "".join(
        API_DOC_SECTION.substitute(
            method_name=op.method_name,
            return_type=return_type(op),
            param_names=", ".join(p.name for p in op.params),
            summary=cell(" ".join(part for part in (op.summary + ".", spec_prose(op.description)) if part)),
            http_method=op.http_method,
            path=op.path,
            params=param_rows(list(op.params)),
            returns="the answer's JSON object, as a `dict`"
            if op.response is None
            else type_text(op.response),
            needs=needs(op).replace("``", "`"),
        )
        for op in operations
    )
    return API_DOC.substitute(
        header=MD_HEADER,
        class_name=class_name,
        intro=intro,
        table=table,
        example_call=example_call(example_operation(operations), spec),
        sections=sections,
    )


def api_docs(spec: Spec, hand_written: FrozenSet[str]) -> Dict[str, str]:
    pages = {}
    for tag in spec.tags:
        class_name = naming.api_class_name(tag)
        if class_name in hand_written:
            continue
        intro = f"`kenar_api_client.{class_name}`: the {tag} operations of Kenar."
        pages[f"docs/{class_name}.md"] = render_api_doc(class_name, intro, spec.operations_of(tag), spec)
    intro = (
        "`kenar_api_client.api.limited_api.LimitedApi`: **deprecated**, use [PaymentApi](PaymentApi.md). "
        "It repeats nine Payment operations as an older official client had them, for code that "
        "imports it; creating one warns (`DeprecationWarning`)."
    )
    pages["docs/LimitedApi.md"] = (
        render_api_doc("LimitedApi", intro, limited_operations(spec), spec)
        .replace(
            "import kenar_api_client\n",
            "import kenar_api_client\nfrom kenar_api_client.api.limited_api import LimitedApi\n",
        )
        .replace("kenar_api_client.LimitedApi(", "LimitedApi(")
    )
    return pages


# -- model pages ----------------------------------------------------------------------------


def render_model_doc(model: ModelDef, spec: Spec) -> str:
    rows = ["| Name | Type | Required | Description |", "|---|---|---|---|"]
    for f in model.fields:
        name = f"`{f.name}`" + (f" (wire: `{f.wire_name}`)" if f.wire_name != f.name else "")
        description = cell(f.description)
        if f.min_length is not None or f.max_length is not None:
            description = (description + f" Length: {f.min_length} to {f.max_length} characters.").strip()
        if f.read_only:
            description = (description + " Read-only: set by the server.").strip()
        rows.append(f"| {name} | {type_text(f.type)} | {'yes' if f.required else 'no'} | {description} |")
    example = json.dumps(model_sample(model, spec), ensure_ascii=False, indent=2)
    return MODEL_DOC.substitute(
        header=MD_HEADER,
        class_name=model.class_name,
        schema_name=model.schema_name,
        kind="Build it with keywords (unknown names are refused) or from a dict; answers keep fields "
        "this SDK version does not know in `additional_properties`.",
        description=cell(model.description),
        table="\n".join(rows) + "\n",
        example=example,
    )


def render_enum_doc(enum: EnumDef) -> str:
    return ENUM_DOC.substitute(
        header=MD_HEADER,
        class_name=enum.class_name,
        schema_name=enum.schema_name,
        description=cell(enum.description),
        values="\n".join(f"| `{value}` |" for value in enum.values),
    )


def model_docs(spec: Spec) -> Dict[str, str]:
    pages = {f"docs/{m.class_name}.md": render_model_doc(m, spec) for m in spec.models}
    pages.update({f"docs/{e.class_name}.md": render_enum_doc(e) for e in spec.enums})
    return pages


# -- README ---------------------------------------------------------------------------------


def readme_table(spec: Spec, hand_written_pages: Mapping[str, str], docs_url: str) -> str:
    rows = ["| API | Method | HTTP request | Summary |", "|---|---|---|---|"]
    for tag in spec.tags:
        class_name = naming.api_class_name(tag)
        page = hand_written_pages.get(class_name, f"{docs_url}/{class_name}.md")
        for op in spec.operations_of(tag):
            rows.append(
                f"| [{class_name}]({page}) | [`{op.method_name}`]({page}#{op.method_name}) "
                f"| `{op.http_method} {op.path}` | {cell(op.summary)} |"
            )
    return "\n".join(rows)


def legacy_table(models: Sequence[ModelDef], enums: Sequence[EnumDef]) -> str:
    """The models and enums of older official builds: module, class, and what each holds."""
    rows = ["| Module (`kenar_api_client.models.`) | Class | Holds |", "|---|---|---|"]
    for model in models:
        fields = ", ".join(f"`{f.name}`" for f in model.fields)
        rows.append(f"| `{model.module}` | `{model.class_name}` | {fields} |")
    for enum in enums:
        count = len(enum.values)
        values = ", ".join(f"`{v}`" for v in enum.values[:3]) + (
            f" ... ({count} values)" if count > 3 else ""
        )
        rows.append(f"| `{enum.module}` | `{enum.class_name}` (enum) | {values} |")
    return "\n".join(rows)


def section_between(text: str, start: str, end: str, new_body: str) -> str:
    """``text`` with what lies between the ``start`` and ``end`` marker lines replaced."""
    before, found, rest = text.partition(start)
    if not found:
        raise ValueError(f"marker {start!r} not found")
    _, found, after = rest.partition(end)
    if not found:
        raise ValueError(f"marker {end!r} not found")
    return f"{before}{start}\n{new_body}\n{end}{after}"
