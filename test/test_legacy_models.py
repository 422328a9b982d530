"""The models of older official builds: extracted as facts from the official sources, generated from them.

tools/extract_legacy_models.py reads a checkout of the official client (here a small one
written by the test, in the official generator's shape) and keeps names, wire aliases,
types, required and read-only flags and enum values; generator/legacy.py turns the file
into model definitions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from generator import legacy, spec

ROOT = Path(__file__).resolve().parents[1]
EXTRACTOR = ROOT / "tools" / "extract_legacy_models.py"

OLD_MODEL = '''
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from typing import Any, ClassVar, Dict, List, Optional, Set
from kenar_api_client.models.old_shop_color import OldShopColor

class OldShopItem(BaseModel):
    """
    OldShopItem: a description that must not be copied
    """ # noqa: E501
    name: StrictStr = Field(description="must not be copied either")
    var_date: Optional[StrictStr] = Field(default=None, alias="date")
    tags: List[StrictStr]
    count: Optional[StrictInt] = None
    color: Optional[OldShopColor] = None
    secret: Optional[StrictStr] = None
    __properties: ClassVar[List[str]] = ["name", "date", "tags", "count", "color", "secret"]

    def to_dict(self) -> Dict[str, Any]:
        excluded_fields: Set[str] = set([
            "secret",
        ])
        return self.model_dump(by_alias=True, exclude=excluded_fields, exclude_none=True)
'''
OLD_ENUM = '''
from enum import Enum

class OldShopColor(str, Enum):
    """
    allowed enum values
    """
    RED = 'RED'
    GREEN = 'GREEN'
'''
CURRENT = """
from pydantic import BaseModel

class PaymentTransaction(BaseModel):
    id: Optional[StrictStr] = None
"""


@pytest.fixture
def official(tmp_path: Path) -> Path:
    models = tmp_path / "kenar_api_client" / "models"
    models.mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text('[project]\nversion = "0.9.0"\n', encoding="utf-8")
    for name, text in {
        "old_shop_item": OLD_MODEL,
        "old_shop_color": OLD_ENUM,
        "payment_transaction": CURRENT,
        "__init__": "",
    }.items():
        (models / f"{name}.py").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.mark.skipif(not EXTRACTOR.is_file(), reason="tools/ is not in this tree")
def test_the_extractor_keeps_facts_only(official: Path, tmp_path: Path) -> None:
    output = tmp_path / "legacy.json"
    result = subprocess.run(
        [sys.executable, str(EXTRACTOR), "--official", str(official), "--output", str(output)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    text = output.read_text(encoding="utf-8")
    assert "must not be copied" not in text
    extracted = json.loads(text)
    assert extracted["official"] == {"repository": "divar-ir/kenar-sdk-python", "version": "0.9.0"}
    assert extracted["enums"] == [
        {"class": "OldShopColor", "module": "old_shop_color", "values": ["RED", "GREEN"]}
    ]
    # payment_transaction is a module of today's spec: not a legacy one.
    assert [m["class"] for m in extracted["models"]] == ["OldShopItem"]
    assert extracted["models"][0]["fields"] == [
        {"name": "name", "wire_name": "name", "type": "str", "required": True, "read_only": False},
        {"name": "var_date", "wire_name": "date", "type": "str", "required": False, "read_only": False},
        {"name": "tags", "wire_name": "tags", "type": ["list", "str"], "required": True, "read_only": False},
        {"name": "count", "wire_name": "count", "type": "int", "required": False, "read_only": False},
        {
            "name": "color",
            "wire_name": "color",
            "type": ["enum", "OldShopColor"],
            "required": False,
            "read_only": False,
        },
        {"name": "secret", "wire_name": "secret", "type": "str", "required": False, "read_only": True},
    ]

    models, enums = legacy.load(spec.load(), output)
    item = models[0]
    assert item.legacy
    assert [(f.name, f.wire_name, f.type.kind, f.required, f.read_only) for f in item.fields][-2:] == [
        ("color", "color", "enum", False, False),
        ("secret", "secret", "str", False, True),
    ]
    assert item.fields[4].type.enum_values == ("RED", "GREEN")
    assert enums[0].values == ("RED", "GREEN")


def test_a_legacy_module_may_not_take_a_module_of_todays_spec(tmp_path: Path) -> None:
    clash = {
        "official": {},
        "models": [{"class": "PaymentTransaction", "module": "payment_transaction", "fields": []}],
        "enums": [],
    }
    path = tmp_path / "legacy.json"
    path.write_text(json.dumps(clash), encoding="utf-8")
    with pytest.raises(ValueError, match="payment_transaction is not its own"):
        legacy.load(spec.load(), path)
