"""What the comparison of the two clients' runs calls a difference, and the differences made on purpose.

Standard library only: tools/compare_official_docs.py uses it, and the tests load it alone.
An outcome is what docs_runner.py reports for one run (stdout, stderr, warnings, exception)
plus the requests the server received during it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Tuple

_ADDRESS = re.compile(r"0x[0-9a-f]{6,}")


@dataclass(frozen=True)
class Difference:
    """One aspect of one run in which the two clients differ."""

    aspect: str  # output, stderr, warnings, exception, requests
    official: Any
    ours: Any


@dataclass(frozen=True)
class Listed:
    """A difference this SDK makes on purpose, as docs/FromOfficialClient.md lists it, and how to tell it.

    ``matches`` sees one differing aspect and both outcomes of the run.
    """

    name: str
    matches: Callable[[Difference, Dict[str, Any], Dict[str, Any]], bool]


def _without_agent(requests: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    return [{**r, "headers": {k: v for k, v in r["headers"].items() if k != "user-agent"}} for r in requests]


def _user_agent_only(difference: Difference, official: Dict[str, Any], ours: Dict[str, Any]) -> bool:
    """The requests differ in their User-Agent header and nothing else."""
    return difference.aspect == "requests" and _without_agent(difference.official) == _without_agent(
        difference.ours
    )


def _enum_refused(difference: Difference, official: Dict[str, Any], ours: Dict[str, Any]) -> bool:
    """Ours refused a value its enum does not list, before sending; the official client sent it."""
    refused = "[type=enum, input_value=" in ours["stdout"] + str(ours["exception"])
    return refused and len(ours["requests"]) < len(official["requests"])


_NUMBERED = re.compile(r"^\d+$")
_NAMED = re.compile(r"^[a-z_][a-z0-9_]*$")


def _argument_named(difference: Difference, official: Dict[str, Any], ours: Dict[str, Any]) -> bool:
    """The texts differ only where an error locates an argument: by position there, by name here."""
    if difference.aspect != "output":
        return False
    theirs, mine = difference.official.splitlines(), difference.ours.splitlines()
    return len(theirs) == len(mine) and all(
        a == b or (_NUMBERED.match(a) is not None and _NAMED.match(b) is not None)
        for a, b in zip(theirs, mine)
    )


_NOT_SERIALIZABLE = "TypeError: Object of type datetime is not JSON serializable"


def _datetime_written(difference: Difference, official: Dict[str, Any], ours: Dict[str, Any]) -> bool:
    """``to_json()`` of a model holding a datetime: the official one raises, ours writes ISO 8601."""
    if difference.aspect != "output":
        return False
    theirs, mine = difference.official.splitlines(), difference.ours.splitlines()
    return len(theirs) == len(mine) and all(
        a == b or (a == _NOT_SERIALIZABLE and b.startswith("{")) for a, b in zip(theirs, mine)
    )


#: The differences docs/FromOfficialClient.md lists under "Where this SDK differs on purpose".
LISTED: Tuple[Listed, ...] = (
    Listed("an enum argument is checked before sending", _enum_refused),
    Listed("a refused argument is named, not numbered", _argument_named),
    Listed("to_json() writes datetimes", _datetime_written),
    Listed("the User-Agent names this SDK", _user_agent_only),
)


def normalized(text: str) -> str:
    return _ADDRESS.sub("0x…", text)


def differences(official: Dict[str, Any], ours: Dict[str, Any]) -> List[Difference]:
    """Every aspect in which two outcomes of one run differ."""
    found = []
    for aspect, key in (("output", "stdout"), ("stderr", "stderr")):
        if normalized(official[key]) != normalized(ours[key]):
            found.append(Difference(aspect, official[key], ours[key]))
    for aspect in ("warnings", "exception", "requests"):
        if official[aspect] != ours[aspect]:
            found.append(Difference(aspect, official[aspect], ours[aspect]))
    return found


def listed_as(difference: Difference, outcomes: Dict[str, Dict[str, Any]]) -> Optional[str]:
    official, ours = outcomes["official"], outcomes["ours"]
    return next((item.name for item in LISTED if item.matches(difference, official, ours)), None)
