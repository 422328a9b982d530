"""The generator: OpenAPI Generator's naming quirks, reading a spec, the committed output current."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Dict

import pytest

from generator import naming
from generator.output import ROOT, generate, write
from generator.render import render_enum, render_field, render_operation
from generator.spec import PERMISSIONS_HEADING, EnumDef, FieldDef, TypeRef, interpret
from generator.templates import HEADER


@pytest.mark.parametrize(
    ("operation_id", "method"),
    [
        ("Finder_GetUserIDByPhone", "finder_get_user_idby_phone"),
        ("Assets_GetOAuthScopes", "assets_get_o_auth_scopes"),
        ("ChatAPI_ChatBotSendMessage5", "chat_api_chat_bot_send_message5"),
        ("Addons_CreateUserAddonV22", "addons_create_user_addon_v22"),
        ("Post_GetUploadURLsV2", "post_get_upload_urls_v2"),
        ("PaymentTicket_Validate", "payment_ticket_validate"),
    ],
)
def test_method_names_follow_openapi_generator_quirks_included(operation_id: str, method: str) -> None:
    assert naming.method_name(operation_id) == method


def test_class_module_and_field_names() -> None:
    assert naming.class_name("open_platformpostPostState") == "OpenPlatformpostPostState"
    assert naming.module_name("FinderGetUserIDByPhoneRequest") == "finder_get_user_idby_phone_request"
    assert (naming.api_class_name("ChatAPI"), naming.api_module_name("ChatAPI")) == (
        "ChatAPIApi",
        "chat_api_api",
    )
    assert naming.field_name("@type") == "type"
    assert naming.field_name("date") == "var_date"


def tiny_spec() -> Dict[str, Any]:
    return {
        "security": [{"APIKey": []}],
        "components": {
            "schemas": {
                "shopColor": {"enum": ["RED", "GREEN"], "type": "string"},
                "shopFreeForm": {"type": "object"},
                "shopItem": {
                    "properties": {
                        "color": {"$ref": "#/components/schemas/shopColor"},
                        "schema": {"type": "string"},
                    },
                    "required": ["schema"],
                    "type": "object",
                },
                "ShopPaintColor": {"enum": ["RED", "BLUE"], "type": "string"},
            }
        },
        "paths": {
            "/shops/{shop_id}/paint": {
                "post": {
                    "operationId": "Shop_PaintItem",
                    "tags": ["Shop"],
                    "parameters": [
                        {
                            "in": "query",
                            "name": "color",
                            "schema": {"enum": ["RED", "BLUE"], "type": "string"},
                        },
                        {"in": "path", "name": "shop_id", "required": True, "schema": {"type": "string"}},
                    ],
                    "requestBody": {
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/shopFreeForm"}}
                        },
                        "required": True,
                    },
                    "responses": {
                        "200": {
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/shopItem"}}
                            }
                        }
                    },
                    "security": [{"APIKey": [], "OAuth": ["SHOP_PAINT.shop_id"]}],
                    "description": f"Paints.\n\n{PERMISSIONS_HEADING}\n\n- `SHOP_WRITE`",
                }
            }
        },
    }


def test_a_spec_becomes_typed_operations_and_models() -> None:
    spec = interpret(tiny_spec())
    (op,) = spec.operations
    assert op.method_name == "shop_paint_item"
    # required first, spec order kept otherwise; a free-form body is the plain ``body``
    assert [(p.name, p.location, p.required) for p in op.params] == [
        ("shop_id", "path", True),
        ("body", "body", True),
        ("color", "query", False),
    ]
    assert op.params[2].type == TypeRef(
        "enum", "ShopPaintColor", enum_values=("RED", "BLUE"), schema_name="ShopPaintColor"
    )
    assert (op.permissions, op.scopes, op.oauth) == (("SHOP_WRITE",), ("SHOP_PAINT.shop_id",), True)
    assert op.response is not None
    assert op.response.name == "ShopItem"
    (model,) = spec.models
    assert [(f.name, f.wire_name, f.required) for f in model.fields] == [
        ("color", "color", False),
        ("var_schema", "schema", True),
    ]
    assert {e.class_name for e in spec.enums} == {"ShopColor", "ShopPaintColor"}


def test_templates_write_the_typing_convention_and_one_declaration_per_operation() -> None:
    color = TypeRef("enum", "ShopColor", enum_values=("RED", "BLUE"))
    field = FieldDef("color", "color", color, required=False, description="")
    assert render_field(field) == "    color: Optional[Union[ShopColor, ShopColorValue]] = None"
    enum_module = render_enum(EnumDef("shopColor", "ShopColor", "shop_color", "", ("RED", "BLUE")))
    assert 'ShopColorValue = Literal["RED", "BLUE"]' in enum_module  # the values, written once
    (op,) = interpret(tiny_spec()).operations
    declaration = render_operation(op, "PAINT_ITEM")
    color_param = 'Param("color", "enum", "query", type_name="ShopPaintColor", enum_values=("RED", "BLUE"))'
    assert color_param in declaration
    assert 'Param("body", "dict", "body", required=True)' in declaration
    assert 'auth=("APIKey", "OAuth")' in declaration


def test_the_committed_output_is_what_the_generator_writes() -> None:
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("the generator formats its output with ruff: pip install -e '.[lint]'")
    for name, text in generate(ROOT).items():
        assert (ROOT / name).read_text(encoding="utf-8") == text, f"{name} is stale: run python -m generator"


def test_write_replaces_changed_files_and_removes_stale_generated_ones_only(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "Gone.md").write_text(
        "<!-- Generated by `python -m generator` from generator/spec/kenar-openapi.json: do not edit. -->\n"
    )
    (docs / "HandWritten.md").write_text("# written by a person\n")
    (docs / "Same.md").write_text("same\n")
    changed = write(tmp_path, {"docs/Same.md": "same\n", "docs/New.md": HEADER})
    assert sorted(changed) == ["docs/Gone.md", "docs/New.md"]
    assert sorted(p.name for p in docs.iterdir()) == ["HandWritten.md", "New.md", "Same.md"]
