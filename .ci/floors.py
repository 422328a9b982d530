"""Print pip constraints pinning every dependency of a built wheel to its declared floor.

    python .ci/floors.py dist/kenar_api_client-*.whl > floors.txt
    pip install --constraint floors.txt "dist/kenar_api_client-*.whl[test]"

Reads the wheel's own METADATA (what PyPI users get), so the floors tested are the floors
published. Covers the runtime dependencies and the ``test`` extra; every one of them must
declare a ``>=`` floor, or this fails: an unbounded dependency has no tested lower end.
"""

from __future__ import annotations

import re
import sys
import zipfile
from email.parser import HeaderParser
from typing import List

EXTRAS = ("test",)
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_FLOOR = re.compile(r">=\s*([0-9][A-Za-z0-9.!+-]*)")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def requirements(wheel: str) -> List[str]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(archive.read(name).decode("utf-8"))
    return metadata.get_all("Requires-Dist") or []


def floors(wheel: str) -> List[str]:
    pins = {}
    for requirement in requirements(wheel):
        spec, _, marker = requirement.partition(";")
        extra = _EXTRA_MARKER.search(marker)
        if extra is not None and extra.group(1) not in EXTRAS:
            continue
        name_match, floor = _NAME.match(spec), _FLOOR.search(spec)
        if name_match is None or floor is None:
            raise SystemExit(f"{wheel}: {requirement!r} declares no >= floor")
        name = name_match.group(1).lower().replace("_", "-")
        # The same package may be required twice (runtime and an extra): pin the higher floor.
        pins[name] = max(pins.get(name, floor.group(1)), floor.group(1), key=_version_key)
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def _version_key(version: str) -> List[int]:
    return [int(part) for part in re.findall(r"\d+", version)]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print("\n".join(floors(sys.argv[1])))
