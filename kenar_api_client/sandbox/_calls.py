"""``Call``: one API request matched to its operation and authenticated, as its handler gets it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict

from kenar_api_client.sandbox._auth import Caller
from kenar_api_client.sandbox._spec import SpecOperation
from kenar_api_client.sandbox._state import SandboxState


@dataclass(frozen=True)
class Call:
    """What an operation's handler works with: the sandbox's state, the operation, who called,
    the decoded path values, the raw query string and the body."""

    state: SandboxState
    operation: SpecOperation
    caller: Caller
    path_values: Dict[str, str]
    query: str
    body: bytes


#: An operation's handler: checks the call's arguments, does what Kenar would, returns the JSON answer.
Handler = Callable[[Call], Dict[str, Any]]
