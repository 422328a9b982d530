"""The runs of the official client's documentation: its Python blocks, and a script per model and enum page.

A checkout of divar-ir/kenar-sdk-python has ``README.md`` and ``docs/<Name>.md``: an example
per operation on the API pages, a ``from_json``/``to_dict`` example on the model pages, and
enum pages with no code but a list of values. Blocks run unchanged but for the host they
name. Their model example stops early (it calls ``to_json()`` on the class), so each model
page also gets a round trip written here from the fields its table lists: a document with
every field filled is parsed, printed, dumped and parsed back. An enum page gets a script
doing what code does with an enum (look members up by value, print them, parse them from
JSON), written from the values it lists.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from generator.naming import module_name

#: The production host the examples name; replaced by the recording server's address.
PRODUCTION_HOST = "https://open-api.divar.ir"
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```", re.M | re.S)
_ENUM_VALUE = re.compile(r"^\* `(\w+)` \(value: `'([^`']*)'`\)", re.M)
#: A row of a model page's property table: name, type, description, notes.
_PROPERTY = re.compile(r"^\*\*(\w+)\*\* \| (.+?) \| .*? \| ([^|]*)$", re.M)
_LINKED_TYPE = re.compile(r"^\[\*\*(.+)\*\*\]\((\w+)\.md\)$")
#: Values of the round trips' documents, by the type a page gives (non-ASCII on purpose).
_SCALAR_SAMPLES: Dict[str, Any] = {
    "str": "example ی",
    "int": 7,
    "float": 1.5,
    "bool": True,
    "datetime": "2025-01-01T12:00:00Z",
    "object": {"k": [1, None, "v"]},
    "List[str]": ["a", "ب"],
    "Dict[str, str]": {"k": "v"},
}
_DEPTH = 3


@dataclass(frozen=True)
class Run:
    """One script to run under both clients."""

    id: str  # "docs/FinderApi.md#2", "README.md#1", "docs/PostRoomsCount.md (enum)"
    source: str

    @property
    def kind(self) -> str:
        """``doc block``, ``model round trip`` or ``enum``."""
        if self.id.endswith(" (round trip)"):
            return "model round trip"
        return "enum" if self.id.endswith(" (enum)") else "doc block"

    @property
    def filename(self) -> str:
        """The name tracebacks give the script: the page it comes from."""
        return f"<{self.id}>"


def runs(checkout: Path, host: str) -> List[Run]:
    """Every run of the checkout's README.md and docs/*.md, in page order, ``host`` substituted."""
    pages = {"README.md": checkout / "README.md"}
    pages.update({f"docs/{p.name}": p for p in sorted((checkout / "docs").glob("*.md"))})
    texts = {name: path.read_text(encoding="utf-8") for name, path in pages.items()}
    by_class = {Path(name).stem: text for name, text in texts.items() if name.startswith("docs/")}
    found: List[Run] = []
    for name, text in texts.items():
        blocks = _FENCE.findall(text)
        for number, block in enumerate(blocks, 1):
            found.append(Run(f"{name}#{number}", with_host(block, host)))
        enum = enum_page(text)
        if enum is not None and not blocks:
            found.append(Run(f"{name} (enum)", enum_script(*enum)))
        properties = model_page(text)
        if properties is not None:
            document = sample_document(properties, by_class, 0)
            found.append(Run(f"{name} (round trip)", round_trip_script(Path(name).stem, document)))
    return found


def with_host(source: str, host: str) -> str:
    """``source`` with the production host's URL replaced by ``host``; nothing else changes."""
    return source.replace(f'"{PRODUCTION_HOST}"', f'"{host}"')


def enum_page(text: str) -> Optional[Tuple[str, List[Tuple[str, str]]]]:
    """(Enum class, [(member name, value)]) of an enum page, or None for any other page."""
    title = re.match(r"# (\w+)\s", text)
    if title is None or "\n## Enum\n" not in text:
        return None
    return title.group(1), _ENUM_VALUE.findall(text)


def model_page(text: str) -> Optional[List[Tuple[str, str]]]:
    """(Property, type as the page writes it) of a model page, or None for any other page."""
    if "\n## Properties\n" not in text:
        return None
    return [(name, kind.strip()) for name, kind, _notes in _PROPERTY.findall(text)]


def sample_value(kind: str, by_class: Dict[str, str], depth: int) -> Any:
    """A value of the type a page writes (``**str**``, ``[**List[X]**](X.md)``...)."""
    linked = _LINKED_TYPE.match(kind)
    if linked is None:
        return _SCALAR_SAMPLES[kind.strip("*")]
    inner, page = linked.groups()
    target = by_class[page]
    if inner.startswith("List["):
        return [sample_value(f"[**{page}**]({page}.md)", by_class, depth)] if depth < _DEPTH else []
    enum = enum_page(target)
    if enum is not None:
        return enum[1][0][1]
    properties = model_page(target)
    if properties is None or depth >= _DEPTH:
        return {}
    return sample_document(properties, by_class, depth + 1)


def sample_document(
    properties: List[Tuple[str, str]], by_class: Dict[str, str], depth: int
) -> Dict[str, Any]:
    """A document with every property filled, under its wire name (``var_date`` is ``date``)."""
    return {
        name[4:] if name.startswith("var_") else name: sample_value(kind, by_class, depth)
        for name, kind in properties
    }


def round_trip_script(class_name: str, document: Dict[str, Any]) -> str:
    """Parse ``document``, print what code reads of the model, dump it and parse it back."""
    text = json.dumps(document, ensure_ascii=False)
    return (
        "\n".join(
            [
                "import json",
                f"from kenar_api_client.models.{module_name(class_name)} import {class_name}",
                "",
                f"document = json.loads({text!r})",
                f"instance = {class_name}.from_dict(document)",
                "print(repr(instance))",
                "print(repr(instance.to_dict()))",
                "print(instance.to_str())",
                "try:",
                "    print(instance.to_json())",
                "except TypeError as error:",
                "    print('TypeError:', error)",
                f"print({class_name}.from_dict(instance.to_dict()) == instance)",
                f"print({class_name}.from_json(json.dumps(document)) == instance)",
                f"print(repr({class_name}.from_json('{{}}')))",
            ]
        )
        + "\n"
    )


def enum_script(class_name: str, members: List[Tuple[str, str]]) -> str:
    """What code does with an enum the page documents: lookups, printing, JSON, iteration."""
    lines = [
        "import json",
        f"from kenar_api_client.models.{module_name(class_name)} import {class_name}",
        "",
        f"print(len({class_name}), [member.name for member in {class_name}])",
    ]
    for name, value in members:
        lines += [
            f"member = {class_name}({value!r})",
            f"print(repr(member), str(member), member.value, member.name == {name!r})",
            f"print(member == {value!r}, {class_name}.from_json(json.dumps({value!r})) is member)",
            f"print(json.dumps({{'value': member}}), {class_name}[{name!r}] is member)",
        ]
    lines += [
        "try:",
        f"    {class_name}('NOT_A_VALUE_OF_THIS_ENUM')",
        "except ValueError as error:",
        "    print(type(error).__name__, error)",
    ]
    return "\n".join(lines) + "\n"
