"""Reading what a command is given: one JSON object, from a file or stdin, as usage errors when it is not."""

from __future__ import annotations

import json
import sys
from typing import Any, Dict

from kenar_api_client.cli.output import UsageError


def read_text(path: str, what: str) -> str:
    """The UTF-8 text of the file ``path`` (``-``: stdin)."""
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as file:
            return file.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what}: cannot read {path}: {exc}") from exc


def json_object(
    text: str, what: str, expected: str = 'a JSON object, e.g. {"message": "hi"}'
) -> Dict[str, Any]:
    """``text`` parsed as one JSON object; else a usage error saying ``what`` must be ``expected``."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise UsageError(f"{what} must be {expected}")
    return document
