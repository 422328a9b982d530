"""Whether a request's source address is one Kenar publishes for webhook deliveries."""

from __future__ import annotations

import ipaddress
from typing import Iterable, Optional, Tuple, Union

__all__ = ["KENAR_WEBHOOK_NETWORKS", "is_kenar_source"]

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

# The addresses Divar documents for webhook deliveries.
KENAR_WEBHOOK_NETWORKS: Tuple[ipaddress.IPv4Network, ...] = (
    ipaddress.IPv4Network("78.111.6.41/32"),
    ipaddress.IPv4Network("78.111.6.42/32"),
    ipaddress.IPv4Network("78.111.6.43/32"),
    ipaddress.IPv4Network("31.214.250.128/27"),
)


def _parse_address(ip: object) -> Optional[IPAddress]:
    """``ip`` as an address object, or ``None`` if it is not one."""
    if isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        address: IPAddress = ip
    elif isinstance(ip, str):
        text = ip.strip()
        if text.startswith("[") and text.endswith("]"):
            text = text[1:-1]
        # A zone id ("fe80::1%eth0") names the local interface, not part of the address.
        text = text.split("%", 1)[0]
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return None
    else:
        # ip_address() would also take an int; an int here is far more likely a mistake.
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _as_networks(networks: Union[str, IPNetwork, Iterable[Union[str, IPNetwork]]]) -> Tuple[IPNetwork, ...]:
    if isinstance(networks, (str, ipaddress.IPv4Network, ipaddress.IPv6Network)):
        networks = (networks,)
    return tuple(
        net if not isinstance(net, str) else ipaddress.ip_network(net, strict=False) for net in networks
    )


def is_kenar_source(
    ip: Union[str, IPAddress, None],
    networks: Union[str, IPNetwork, Iterable[Union[str, IPNetwork]]] = KENAR_WEBHOOK_NETWORKS,
) -> bool:
    """Whether ``ip`` lies in ``networks`` (by default Divar's published delivery addresses).

    ``ip`` may be a string (IPv4, IPv6, ``[v6]`` in brackets, with a zone id) or an
    ``ipaddress`` object; an IPv4-mapped IPv6 address (``::ffff:78.111.6.41``) counts as
    its IPv4 address. Anything that is not an IP address gives ``False``. ``networks`` takes
    network objects or strings such as ``"31.214.250.128/27"``; an invalid network string
    raises ``ValueError``, as it is a configuration mistake.

    This is a second line of defence: the ``Authorization`` check is what proves a
    delivery. Behind a proxy, pass the client address the proxy reports, not its own.
    """
    nets = _as_networks(networks)
    address = _parse_address(ip)
    if address is None:
        return False
    return any(address in net for net in nets)
