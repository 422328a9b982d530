"""Which hosts are this machine's: the loopback check and the wildcard-address rule, written once."""

from __future__ import annotations

import ipaddress

#: Addresses a server binds to in order to listen on every interface.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - names of the wildcard, not a bind


def is_loopback(host: str) -> bool:
    """True for ``localhost`` (and ``*.localhost``) and any loopback IP literal, bracketed or not."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return is_loopback_ip(host)


def is_loopback_ip(text: str) -> bool:
    """True for a loopback IP literal (``127.0.0.0/8``, ``::1``); False for names and other addresses."""
    try:
        return ipaddress.ip_address(text).is_loopback
    except ValueError:
        return False


def connect_host(bound: str) -> str:
    """The address a client on this machine reaches a server bound to ``bound`` at."""
    if bound in ("", "0.0.0.0"):  # noqa: S104
        return "127.0.0.1"
    if bound == "::":
        return "::1"
    return bound
