"""Write generator/legacy_models.json: what the official client's older model modules declare.

    python tools/extract_legacy_models.py --official PATH

PATH is a checkout of divar-ir/kenar-sdk-python. Its package still ships model modules
that today's spec no longer has (``darvaze_*``, ``widgets_action``...); code written against
an older build imports them, so this SDK generates them too. This reads each such module's
source (with ``ast``, nothing is imported) and keeps only facts: the class, its fields'
names, wire aliases, types, which are required or read-only, and an enum's values. No
description or code is copied; ``python -m generator`` renders the modules from the file.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Set

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]  # the generator: today's spec and its names

from generator import naming, spec as spec_module  # noqa: E402
from generator.rules import HAND_WRITTEN_MODELS  # noqa: E402

OUTPUT = ROOT / "generator" / "legacy_models.json"
_SCALARS = {
    "StrictStr": "str",
    "StrictInt": "int",
    "StrictBool": "bool",
    "StrictFloat": "float",
    "datetime": "datetime",
}


def current_modules(spec: spec_module.Spec) -> Set[str]:
    """The model modules today's spec gives (the hand-written ones under their generated names)."""
    modules = {model.module for model in spec.models} | {enum.module for enum in spec.enums}
    modules |= {naming.module_name(naming.class_name(schema)) for schema in HAND_WRITTEN_MODELS}
    return modules


def type_of(node: ast.expr, enums: Set[str]) -> Any:
    """An annotation as the generator's compact type: a scalar kind, or [kind, ...]."""
    if isinstance(node, ast.Name):
        if node.id in _SCALARS:
            return _SCALARS[node.id]
        return ["enum" if node.id in enums else "model", node.id]
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        outer = node.value.id
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if outer == "Optional":
            return type_of(args[0], enums)
        if outer == "List":
            return ["list", type_of(args[0], enums)]
        if outer == "Dict" and isinstance(args[1], ast.Name) and args[1].id == "Any":
            return "any_dict"
        if outer == "Dict":
            return ["dict", type_of(args[1], enums)]
        names = sorted(a.id for a in args if isinstance(a, ast.Name))
        if outer == "Union" and names == ["StrictFloat", "StrictInt"]:
            return "float"
    raise ValueError(f"unsupported annotation: {ast.unparse(node)}")


def field_call(value: Optional[ast.expr]) -> Optional[ast.Call]:
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "Field":
        return value
    return None


def keyword(call: Optional[ast.Call], name: str) -> Optional[ast.expr]:
    if call is None:
        return None
    return next((k.value for k in call.keywords if k.arg == name), None)


def is_required(value: Optional[ast.expr]) -> bool:
    """A field without a default: nothing after the annotation, or ``Field(...)`` without one."""
    if value is None:
        return True
    call = field_call(value)
    return call is not None and keyword(call, "default") is None and not call.args


def excluded_fields(tree: ast.Module) -> Set[str]:
    """The fields the module's to_dict() leaves out (read-only ones), from its excluded_fields set."""
    found: Set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.AnnAssign) or node.value is None:
            continue
        if isinstance(node.target, ast.Name) and node.target.id == "excluded_fields":
            found |= {
                c.value
                for c in ast.walk(node.value)
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            }
    return found - {"additional_properties"}


def the_class(tree: ast.Module) -> ast.ClassDef:
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    if len(classes) != 1:
        raise ValueError(f"expected one class, found {len(classes)}")
    return classes[0]


def is_enum(cls: ast.ClassDef) -> bool:
    return any(isinstance(base, ast.Name) and base.id == "Enum" for base in cls.bases)


def enum_values(cls: ast.ClassDef) -> List[str]:
    """An enum's values; each member is named as its value (the generator writes them so)."""
    values = []
    for node in cls.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            target = node.targets[0]
            if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                if target.id != node.value.value:
                    raise ValueError(f"{cls.name}.{target.id} is {node.value.value!r}, not its own name")
                values.append(node.value.value)
    return values


def model_fields(cls: ast.ClassDef, tree: ast.Module, enums: Set[str]) -> List[Dict[str, Any]]:
    read_only = excluded_fields(tree)
    fields = []
    for node in cls.body:
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        name = node.target.id
        if name.startswith("_") or ast.unparse(node.annotation).startswith("ClassVar"):
            continue
        alias = keyword(field_call(node.value), "alias")
        wire_name = alias.value if isinstance(alias, ast.Constant) else name
        fields.append(
            {
                "name": name,
                "wire_name": wire_name,
                "type": type_of(node.annotation, enums),
                "required": is_required(node.value),
                "read_only": wire_name in read_only,
            }
        )
    return fields


def extract(checkout: Path) -> Dict[str, Any]:
    spec = spec_module.load()
    current = current_modules(spec)
    package = checkout / "kenar_api_client" / "models"
    trees = {
        path.stem: ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(package.glob("*.py"))
        if path.stem != "__init__"
    }
    classes = {module: the_class(tree) for module, tree in trees.items()}
    enums = {cls.name for cls in classes.values() if is_enum(cls)}
    models: List[Dict[str, Any]] = []
    enum_defs: List[Dict[str, Any]] = []
    for module in sorted(set(trees) - current):
        cls = classes[module]
        if naming.module_name(cls.name) != module:
            raise ValueError(f"{module}.py: class {cls.name} would live in another module")
        if is_enum(cls):
            enum_defs.append({"class": cls.name, "module": module, "values": enum_values(cls)})
        else:
            models.append(
                {"class": cls.name, "module": module, "fields": model_fields(cls, trees[module], enums)}
            )
    return {"official": describe_checkout(checkout), "models": models, "enums": enum_defs}


def describe_checkout(checkout: Path) -> Mapping[str, str]:
    """Which official build the facts come from: its version, and its commit when it is a clone."""
    found = re.search(
        r'^version = "([^"]+)"', (checkout / "pyproject.toml").read_text(encoding="utf-8"), re.M
    )
    described = {"repository": "divar-ir/kenar-sdk-python", "version": found.group(1) if found else "?"}
    commit = subprocess.run(  # noqa: S603
        ["git", "-C", str(checkout), "rev-parse", "HEAD"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    if commit.returncode == 0:
        described["commit"] = commit.stdout.strip()
    return described


def formatted(legacy: Mapping[str, Any]) -> str:
    """The file's text: one line per field and per enum, so that a diff shows what changed."""
    lines = ["{", f' "official": {json.dumps(legacy["official"])},', ' "models": [']
    for number, model in enumerate(legacy["models"]):
        head = {key: model[key] for key in ("class", "module")}
        lines.append(f"  {json.dumps(head)[:-1]}, " + '"fields": [')
        lines.append(",\n".join(f"   {json.dumps(field)}" for field in model["fields"]))
        lines.append("  ]}" + ("," if number < len(legacy["models"]) - 1 else ""))
    lines.append(" ],")
    lines.append(' "enums": [')
    lines.append(",\n".join(f"  {json.dumps(enum)}" for enum in legacy["enums"]))
    lines.append(" ]")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", type=Path, required=True, help="checkout of divar-ir/kenar-sdk-python")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    legacy = extract(args.official)
    args.output.write_text(formatted(legacy), encoding="utf-8")
    print(f"{len(legacy['models'])} models and {len(legacy['enums'])} enums into {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
