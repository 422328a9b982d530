"""The HTTP libraries an async transport can be built on, and the extra that installs each."""

from __future__ import annotations

from typing import Dict

from typing_extensions import Literal

#: What ``transport=`` accepts by name, and the pip extra that brings its library.
EXTRA_OF: Dict[str, str] = {"httpx": "async", "aiohttp": "aiohttp"}
AsyncLibrary = Literal["httpx", "aiohttp"]
