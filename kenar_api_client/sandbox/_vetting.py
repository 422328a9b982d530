"""Refusing what a web page could send the sandbox: foreign Host names, cross-site admin calls.

A page in the developer's browser can send requests to ``127.0.0.1``. Two checks keep it out:

* Every request must name the sandbox in ``Host``: ``localhost`` or an IP address, with the
  sandbox's port. A page that rebinds its own domain to 127.0.0.1 (DNS rebinding) sends its
  domain there, so it can neither read the admin state nor call the API with the demo
  credentials.
* The admin endpoints (every path under ``/_sandbox/``) refuse a request with an ``Origin``
  other than the sandbox itself (``null`` included), and a body that is not declared as
  ``application/json``: a cross-site form or ``text/plain`` POST cannot re-point deliveries.

The Events API paths need no ``Origin`` check: they need an ``X-API-Key`` header, which a page
cannot send cross-site without a CORS preflight, and the sandbox never approves one.
"""

from __future__ import annotations

import ipaddress
import re
from email.message import Message
from typing import Optional, Tuple, Union

from kenar_api_client._hosts import WILDCARD_HOSTS
from kenar_api_client.sandbox._rpc import Code, RpcError, quoted

_HOST = re.compile(r"\[(?P<ipv6>[0-9A-Fa-f:.]+)\]|(?P<name>[^:\[\]@/\s]+)")
_PORT = re.compile(r"[0-9]{1,5}")
_SAFE_METHODS = ("GET", "HEAD")


def vet(method: str, headers: Message, body: bytes, *, admin: bool, address: Tuple[str, int]) -> None:
    """Raise ``RpcError`` (403) if the request must be refused; ``address`` is where we listen."""
    host = _single(headers, "Host")
    if host is None or not _names_us(host, address):
        raise RpcError(Code.PERMISSION_DENIED, _foreign_host_message(host, address[1]))
    if not admin:
        return
    origin = _single(headers, "Origin")
    if origin is not None and origin.lower() != f"http://{host}".lower():
        raise RpcError(
            Code.PERMISSION_DENIED,
            f"the sandbox admin endpoints refuse calls from web pages: Origin {quoted(origin)} "
            "is not this sandbox (use curl or kenar-events)",
        )
    content_type = headers.get("Content-Type")
    if method not in _SAFE_METHODS and (body or content_type is not None):
        media_type = (content_type or "").split(";", 1)[0].strip().lower()
        if media_type != "application/json":
            got = "none" if content_type is None else quoted(content_type)
            raise RpcError(
                Code.PERMISSION_DENIED,
                f"the sandbox admin endpoints take Content-Type: application/json, got {got}",
            )


def _single(headers: Message, name: str) -> Optional[str]:
    """The header's value; a repeated header counts as a foreign one (an empty value)."""
    values = headers.get_all(name) or []
    if not values:
        return None
    return str(values[0]).strip() if len(values) == 1 else ""


def _names_us(host: str, address: Tuple[str, int]) -> bool:
    """Whether ``host`` (a Host header) is ``localhost`` or an address of ours, with our port."""
    match = _HOST.match(host)
    if match is None:
        return False
    rest = host[match.end() :]
    port = rest[1:] if rest.startswith(":") else ("80" if rest == "" else "")
    if not _PORT.fullmatch(port) or int(port) != address[1]:
        return False
    name = match.group("ipv6") or match.group("name")
    if name.lower() == "localhost":
        return True
    ip = _ip(name)
    if ip is None:
        return False  # a domain name: what DNS rebinding sends
    return ip.is_loopback or address[0] in WILDCARD_HOSTS or ip == _ip(address[0])


def _ip(text: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _foreign_host_message(host: Optional[str], port: int) -> str:
    what = "no Host header" if host is None else f"the Host header {quoted(host)}"
    return (
        f"the sandbox refuses {what}: use 127.0.0.1:{port} or localhost:{port} "
        "(other names are refused, so a web page cannot reach it through DNS rebinding)"
    )
