"""Reading a Content-Length header strictly: ASCII digits only, without converting a huge number."""

from __future__ import annotations

from typing import Optional


def parse_content_length(raw: str, limit: int) -> Optional[int]:
    """``raw`` as a length, ``None`` if it is not a number; any length over ``limit`` is ``limit + 1``.

    ``int()`` alone would accept ``+5``, ``1_0`` and other digits than ASCII ones, and refuse
    (or take its time over) a number of thousands of digits.
    """
    text = raw.strip()
    if not (text.isascii() and text.isdigit()):
        return None
    digits = text.lstrip("0") or "0"
    if len(digits) > len(str(limit)):
        return limit + 1
    return min(int(digits), limit + 1)
