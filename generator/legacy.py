"""Reads generator/legacy_models.json: the models older official builds had and today's spec does not.

The file is written by ``tools/extract_legacy_models.py`` from a checkout of the official
client and holds facts only (names, wire aliases, types, required and read-only flags, enum
values). Each model and enum becomes a module at the path the official client had, so that
``from kenar_api_client.models.<module> import <Class>`` keeps working; no current
operation takes or returns them, and they are not exported from the packages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Mapping, Tuple

from generator import naming
from generator.spec import EnumDef, FieldDef, ModelDef, Spec, TypeRef

LEGACY_PATH = Path(__file__).resolve().parent / "legacy_models.json"
_SCALAR_KINDS = frozenset({"str", "int", "float", "bool", "datetime", "any_dict"})

Legacy = Tuple[Tuple[ModelDef, ...], Tuple[EnumDef, ...]]


def load(spec: Spec, path: Path = LEGACY_PATH) -> Legacy:
    """The legacy models and enums; their types may refer to today's classes too."""
    document = json.loads(path.read_text(encoding="utf-8"))
    enums = tuple(
        EnumDef(e["class"], e["class"], e["module"], "", tuple(e["values"]), legacy=True)
        for e in document["enums"]
    )
    enum_values = {enum.class_name: enum.values for enum in (*spec.enums, *enums)}
    known = {model.class_name for model in spec.models} | {e["class"] for e in document["models"]}
    known |= {"ProtobufAny", "GooglerpcStatus"}
    models = tuple(
        ModelDef(
            m["class"],
            m["class"],
            m["module"],
            "",
            tuple(_field(f, enum_values, known) for f in m["fields"]),
            legacy=True,
        )
        for m in document["models"]
    )
    taken = {m.module for m in spec.models} | {e.module for e in spec.enums}
    for class_name, module in [(m.class_name, m.module) for m in models] + [
        (e.class_name, e.module) for e in enums
    ]:
        if module in taken or naming.module_name(class_name) != module:
            raise ValueError(f"legacy {class_name}: module {module} is not its own")
    return models, enums


def _field(field: Mapping[str, Any], enum_values: Dict[str, Tuple[str, ...]], known: Any) -> FieldDef:
    return FieldDef(
        name=field["name"],
        wire_name=field["wire_name"],
        type=_type(field["type"], enum_values, known),
        required=field["required"],
        description="",
        read_only=field["read_only"],
    )


def _type(compact: Any, enum_values: Dict[str, Tuple[str, ...]], known: Any) -> TypeRef:
    if isinstance(compact, str):
        if compact not in _SCALAR_KINDS:
            raise ValueError(f"unknown scalar kind {compact!r}")
        return TypeRef(compact)
    kind, inner = compact
    if kind in ("list", "dict"):
        return TypeRef(kind, item=_type(inner, enum_values, known))
    if kind == "enum":
        return TypeRef("enum", inner, enum_values=enum_values[inner], schema_name=inner)
    if kind == "model" and inner in known:
        return TypeRef("model", inner, schema_name=inner)
    raise ValueError(f"unknown type {compact!r}")
