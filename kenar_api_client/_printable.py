"""Making received text safe to write to a terminal or a log: control characters escaped."""

from __future__ import annotations

import re

# C0 and C1 controls (ESC starts terminal escape sequences, CR and newlines forge log lines),
# the Unicode line and paragraph separators, the bidi embeddings, overrides and isolates
# (they reorder what a terminal shows), and lone surrogates (they cannot be encoded).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def printable(text: str) -> str:
    """``text`` with each unsafe character written as ``\\uXXXX``.

    The escapes are valid inside JSON strings too, so a JSON document stays valid JSON.
    Persian text, including the zero-width non-joiner and direction marks, is left as is.
    """
    return _UNSAFE.sub(_escape, text)
