"""Fault injection: chosen operations answer 429/5xx, slowly, garbled or not at all, on purpose.

A :class:`FaultRule` names an operation (its SDK method name, such as ``events_send_event``,
``oauth2_auth`` / ``oauth2_token`` for the OAuth endpoints, or a ``*`` pattern) and a fault,
and fires for the next ``times`` matching calls, or for a ``fraction`` of them. Each fault
that fires is recorded as an :class:`InjectedFault`, with whether the operation took effect,
so a test can tell "retried, and sent once" from "sent twice".

Faults and their effect (``takes_effect``: whether the operation runs):

* ``429``, ``503``: turned away, the operation does not run (``Retry-After`` on request).
* ``500``: a ``googlerpcStatus`` INTERNAL error; ``502``, ``504``: an HTML page, as from a
  proxy in front of Kenar. By default the operation runs first: the worst case for a client,
  which cannot know it did.
* ``slow``: the operation runs, the answer comes ``delay`` seconds late.
* ``trickle``: the operation runs; the status line and headers come at once, the body a byte
  at a time over ``delay`` seconds.
* ``drop-before-read``: the connection is closed before the body is read; no effect.
* ``drop-after-read``: the body is read, the operation runs (by default), the connection is
  closed without an answer.
* ``malformed``: the operation runs and its answer's body is cut short (not JSON).

At the token endpoint (``oauth2_token``) the status faults answer as Ory Hydra does, with
an RFC 6749 body: ``500`` ``server_error``, ``503`` and ``429`` ``temporarily_unavailable``.
A ``delay`` given to any other fault holds its answer (or the dropped connection) that long.

The sandbox's admin endpoints never fail on purpose.
"""

from __future__ import annotations

import email.utils
import fnmatch
import json
import math
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Tuple, Union

from kenar_api_client.sandbox._errors import SandboxError
from kenar_api_client.sandbox._rpc import Code, Reply, RpcError, error_reply

STATUS_FAULTS = ("429", "500", "502", "503", "504")
FAULTS = (*STATUS_FAULTS, "slow", "trickle", "drop-before-read", "drop-after-read", "malformed")
#: The faults whose ``delay`` is the point; the others wait only when given one.
_DELAYED_BY_DEFAULT = ("slow", "trickle")
WILDCARD = "*"
OAUTH_OPERATIONS = {"/oauth2/auth": "oauth2_auth", "/oauth2/token": "oauth2_token"}

_TURNED_AWAY = ("429", "503")
_FIXED_EFFECT = {"drop-before-read": False, "slow": True, "trickle": True, "malformed": True}
_STATUS_ERRORS: Dict[str, Tuple[Code, str]] = {
    "429": (Code.RESOURCE_EXHAUSTED, "injected fault: too many requests"),
    "500": (Code.INTERNAL, "injected fault: internal error"),
    "503": (Code.UNAVAILABLE, "injected fault: service unavailable"),
}
_PROXY_PAGES = {"502": "502 Bad Gateway", "504": "504 Gateway Time-out"}
_TOKEN_ENDPOINT = "oauth2_token"  # noqa: S105 - an operation name
# What Ory Hydra answers for these, as RFC 6749 section 5.2 errors.
_OAUTH_ERRORS: Dict[str, Tuple[str, str]] = {
    "429": ("temporarily_unavailable", "injected fault: too many requests, try again later"),
    "500": ("server_error", "injected fault: the authorization server encountered an unexpected condition"),
    "503": ("temporarily_unavailable", "injected fault: the authorization server is temporarily unavailable"),
}
MALFORMED_BODY = b'{"injected fault": "a body cut sh'


def operation_names() -> List[str]:
    """Every name a fault can target: the spec's operations and the two OAuth endpoints."""
    from kenar_api_client.sandbox import _generic

    return sorted({operation.name for operation in _generic._table()[0]} | set(OAUTH_OPERATIONS.values()))


def operation_of(method: str, path: str) -> Optional[str]:
    """The operation name of a request, or None (admin paths, unknown paths and methods)."""
    from kenar_api_client.sandbox import _generic

    if path in OAUTH_OPERATIONS:
        return OAUTH_OPERATIONS[path]
    try:
        name: str = _generic._match(method, path)[0].name
        return name
    except RpcError:
        return None


class FaultRule:
    """One injected fault waiting to fire; build it with ``Sandbox.inject_fault``.

    ``remaining`` counts the calls it still fails (None: no limit, with ``fraction``).
    """

    def __init__(
        self,
        operation: str,
        fault: Union[str, int],
        *,
        times: Optional[int] = None,
        fraction: Optional[float] = None,
        seed: Optional[int] = None,
        retry_after: Optional[int] = None,
        retry_after_as_date: bool = False,
        delay: Optional[float] = None,
        takes_effect: Optional[bool] = None,
    ) -> None:
        self.operation: str = _check_operation(operation)
        self.fault: str = _check_fault(fault)
        if times is None and fraction is None:
            times = 1
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise SandboxError("times must be a whole number of at least 1")
        if fraction is not None and (
            isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1
        ):
            raise SandboxError("fraction must be a number greater than 0 and at most 1")
        if retry_after is not None:
            if self.fault not in STATUS_FAULTS:
                raise SandboxError(f"retry_after goes with a status fault ({', '.join(STATUS_FAULTS)})")
            if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
                raise SandboxError("retry_after must be a whole number of seconds, 0 or more")
        if retry_after_as_date and retry_after is None:
            raise SandboxError("retry_after_as_date needs retry_after (the seconds the date is ahead)")
        if delay is None:
            delay = 1.0 if self.fault in _DELAYED_BY_DEFAULT else 0.0
        if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= 3600:
            raise SandboxError("delay must be a number of seconds from 0 to 3600")
        self.remaining = times
        self.fraction: Optional[float] = None if fraction is None else float(fraction)
        self.seed = seed
        self.retry_after = retry_after
        self.retry_after_as_date: bool = bool(retry_after_as_date)
        self.delay: float = float(delay)
        self.takes_effect: bool = _check_effect(self.fault, takes_effect)
        self._random = random.Random(seed)  # noqa: S311 - chance, not secrecy

    def matches(self, operation: str) -> bool:
        """Whether this rule targets ``operation``."""
        return fnmatch.fnmatchcase(operation, self.operation)

    def fires(self) -> bool:
        """Whether it fails this matching call; counts it down if so. Call under the plan's lock."""
        if self.remaining == 0:
            return False
        if self.fraction is not None and self._random.random() >= self.fraction:
            return False
        if self.remaining is not None:
            self.remaining -= 1
        return True

    def reply(self, recorded: bool, operation: str = "") -> Reply:
        """The answer of a status fault to a call of ``operation``."""
        headers: Dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = (
                email.utils.formatdate(math.ceil(time.time() + self.retry_after), usegmt=True)
                if self.retry_after_as_date
                else str(self.retry_after)
            )
        if self.fault in _PROXY_PAGES:
            title = _PROXY_PAGES[self.fault]
            page = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n"
            headers["Content-Type"] = "text/html"
            return Reply(int(self.fault), page.encode(), headers, None, f"injected fault: {title}", recorded)
        if operation == _TOKEN_ENDPOINT:
            error, description = _OAUTH_ERRORS[self.fault]
            body = json.dumps({"error": error, "error_description": description}).encode("utf-8")
            headers.update({"Content-Type": "application/json;charset=UTF-8", "Cache-Control": "no-store"})
            return Reply(int(self.fault), body, headers, None, f"injected fault: {error}", recorded)
        code, message = _STATUS_ERRORS[self.fault]
        return error_reply(RpcError(code, message, headers), recorded=recorded)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict, as the admin endpoint takes and answers it."""
        return {
            "operation": self.operation,
            "fault": self.fault,
            "remaining": self.remaining,
            "fraction": self.fraction,
            "seed": self.seed,
            "retry_after": self.retry_after,
            "retry_after_as_date": self.retry_after_as_date,
            "delay": self.delay,
            "takes_effect": self.takes_effect,
        }

    def __repr__(self) -> str:
        limit = f"remaining={self.remaining}, fraction={self.fraction}"
        return f"FaultRule({self.operation!r}, {self.fault!r}, {limit})"


@dataclass(frozen=True)
class InjectedFault:
    """A fault that fired: on which call, and whether the operation took effect all the same.

    ``status`` is what the sandbox answers: the injected status, the real one for ``slow``
    and ``malformed``, None for a dropped connection. It is recorded as soon as the effect is
    known, so a ``slow`` fault is on record while its answer is still being held back.
    """

    operation: str
    fault: str
    method: str
    path: str
    took_effect: bool
    status: Optional[int]
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "operation": self.operation,
            "fault": self.fault,
            "method": self.method,
            "path": self.path,
            "took_effect": self.took_effect,
            "status": self.status,
            "at": self.at.isoformat(),
        }


class FaultPlan:
    """The rules waiting to fire and the faults that fired; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: List[FaultRule] = []
        self._injected: List[InjectedFault] = []
        self._stopping = threading.Event()

    def add(self, rule: FaultRule) -> FaultRule:
        """Let ``rule`` fire, after the rules added before it."""
        with self._lock:
            self._rules.append(rule)
        return rule

    def take(self, method: str, path: str) -> Optional[Tuple[FaultRule, str]]:
        """The rule that fails this request and the operation's name, or None."""
        with self._lock:
            if not self._rules:
                return None
        operation = operation_of(method, path)
        if operation is None:
            return None
        with self._lock:
            for rule in self._rules:
                if rule.matches(operation) and rule.fires():
                    self._rules = [r for r in self._rules if r.remaining != 0]
                    return rule, operation
        return None

    def rules(self) -> List[FaultRule]:
        """The rules that can still fire, in order."""
        with self._lock:
            return list(self._rules)

    def injected(self) -> List[InjectedFault]:
        """The faults that fired, oldest first."""
        with self._lock:
            return list(self._injected)

    def record(self, injected: InjectedFault) -> None:
        """Remember a fault that fired."""
        with self._lock:
            self._injected.append(injected)

    def clear_rules(self) -> None:
        """Drop every rule that has not fired yet."""
        with self._lock:
            self._rules = []

    def clear(self) -> None:
        """Drop the rules and forget the faults that fired."""
        with self._lock:
            self._rules = []
            self._injected = []

    def running(self, running: bool) -> None:
        """The sandbox starts (True) or stops (False): a stop cuts ``slow`` waits short."""
        if running:
            self._stopping.clear()
        else:
            self._stopping.set()

    def wait(self, seconds: float) -> bool:
        """Sleep ``seconds``; False if the sandbox stopped meanwhile."""
        return not self._stopping.wait(seconds)


def _check_operation(operation: str) -> str:
    if not isinstance(operation, str) or not operation:
        raise SandboxError("operation must be an operation name such as events_send_event, or '*'")
    names = operation_names()
    if not any(fnmatch.fnmatchcase(name, operation) for name in names):
        close = [name for name in names if operation.lower() in name][:5]
        hint = f" (did you mean {', '.join(close)}?)" if close else " (e.g. events_send_event, or '*')"
        raise SandboxError(f"no sandbox operation is called {operation!r}{hint}")
    return operation


def _check_fault(fault: Union[str, int]) -> str:
    name = str(fault) if isinstance(fault, int) and not isinstance(fault, bool) else fault
    if not isinstance(name, str) or name not in FAULTS:
        raise SandboxError(f"unknown fault {fault!r}: one of {', '.join(FAULTS)}")
    return name


def _check_effect(fault: str, takes_effect: Optional[bool]) -> bool:
    if takes_effect is not None and not isinstance(takes_effect, bool):
        raise SandboxError("takes_effect must be true, false or None (the fault's default)")
    fixed = _FIXED_EFFECT.get(fault)
    if fixed is not None:
        if takes_effect is not None and takes_effect != fixed:
            always = "always" if fixed else "never"
            raise SandboxError(f"a {fault} fault {always} lets the operation take effect")
        return fixed
    if takes_effect is None:
        return fault not in _TURNED_AWAY
    return takes_effect
