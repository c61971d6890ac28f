"""Which IP addresses the fetcher may dial: the address half of the SSRF guard.

Python 3.11's ``ipaddress`` is not a safe oracle on its own: it calls ``::ffff:127.0.0.1``
non-loopback and the NAT64 (``64:ff9b::/96``) and 6to4 (``2002::/16``) spellings of private
IPv4 addresses global. So this module keeps its own tables of non-public ranges, decodes IPv4
addresses embedded in IPv6 ones and judges the IPv4 address, and only then also asks
``ipaddress.is_global`` (a second opinion that can only refuse, never allow).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Final

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# IANA IPv4 special-purpose registry, plus multicast and the reserved class E block.
_BLOCKED_V4: Final = tuple(
    ipaddress.IPv4Network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network"; 0.0.0.0 reaches the local host on Linux
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes 255.255.255.255
    )
)

# Only 2000::/3 is global unicast; inside it these blocks are still not the public web.
_GLOBAL_UNICAST_V6: Final = ipaddress.IPv6Network("2000::/3")
_BLOCKED_V6: Final = tuple(
    ipaddress.IPv6Network(cidr)
    for cidr in (
        "2001::/23",  # IETF protocol assignments (Teredo inside it is decoded first)
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4 without a decodable public IPv4 (decoded first)
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # SRv6 SIDs
    )
)
_NAT64_WELL_KNOWN: Final = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")
_IPV4_TRANSLATED: Final = ipaddress.IPv6Network("::ffff:0:0:0/96")
_TEREDO: Final = ipaddress.IPv6Network("2001::/32")
_SIX_TO_FOUR: Final = ipaddress.IPv6Network("2002::/16")

# Instance-metadata endpoints hand out cloud credentials; never reachable, whatever
# allow_private says (168.63.129.16 is even a globally routed Azure address).
METADATA_ADDRESSES: Final[frozenset[IPAddress]] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean ...
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "168.63.129.16",  # Azure wire server
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
    )
)


def parse_ip(value: str | IPAddress) -> IPAddress | None:
    """Return ``value`` as an address (IPv6 scope id dropped), or ``None`` if it is not one."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        ip: IPAddress = value
    else:
        try:
            ip = ipaddress.ip_address(value.strip())
        except ValueError:
            return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
        ip = ipaddress.IPv6Address(int(ip))
    return ip


def decode_embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """Return the IPv4 address an IPv6 address carries, or ``None`` if it carries none.

    Covers IPv4-mapped ``::ffff:a.b.c.d``, SIIT ``::ffff:0:a.b.c.d``, IPv4-compatible
    ``::a.b.c.d``, NAT64 ``64:ff9b::a.b.c.d``, 6to4 ``2002:AABB:CCDD::`` and Teredo (the
    client address, the host packets finally reach).
    """
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _IPV4_TRANSLATED or ip in _NAT64_WELL_KNOWN or ip in _IPV4_COMPATIBLE:
        return low32
    if ip in _SIX_TO_FOUR:
        return ip.sixtofour
    if ip in _TEREDO and ip.teredo is not None:
        return ip.teredo[1]
    return None


def is_metadata(ip: str | IPAddress) -> bool:
    """True for a cloud instance-metadata address, in any IPv4 or IPv6 spelling."""
    parsed = parse_ip(ip)
    if parsed is None:
        return False
    return parsed in METADATA_ADDRESSES or decode_embedded_ipv4(parsed) in METADATA_ADDRESSES


def is_public(ip: str | IPAddress) -> bool:
    """True only for a globally routable unicast address that is not a metadata endpoint.

    Fails closed: anything that does not parse as an IP address is not public. IPv6
    addresses embedding an IPv4 address are judged by that IPv4 address.
    """
    parsed = parse_ip(ip)
    if parsed is None or is_metadata(parsed):
        return False
    if isinstance(parsed, ipaddress.IPv4Address):
        return not any(parsed in net for net in _BLOCKED_V4) and parsed.is_global
    embedded = decode_embedded_ipv4(parsed)
    if embedded is not None:
        return is_public(embedded)
    if parsed not in _GLOBAL_UNICAST_V6 or any(parsed in net for net in _BLOCKED_V6):
        return False
    return parsed.is_global


def parse_networks(cidrs: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Parse CIDR strings such as ``"127.0.0.0/8"``; raises ``ValueError`` on a bad one."""
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def may_connect(ip: str | IPAddress, allow_private: Sequence[IPNetwork] = ()) -> bool:
    """True if the fetcher may dial ``ip``: public, or inside an ``allow_private`` network.

    Metadata addresses are refused even inside ``allow_private``. An IPv4-mapped IPv6
    address is the same host as its IPv4 address, so it also matches IPv4 networks; other
    embeddings (NAT64, 6to4, Teredo) reach a gateway, not the host, and match only as IPv6.
    """
    parsed = parse_ip(ip)
    if parsed is None or is_metadata(parsed):
        return False
    if is_public(parsed):
        return True
    candidates: list[IPAddress] = [parsed]
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        candidates.append(parsed.ipv4_mapped)
    return any(c.version == net.version and c in net for c in candidates for net in allow_private)


def parse_legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Parse a host the way browsers and ``inet_aton`` do, so numeric tricks are caught.

    Follows the WHATWG URL IPv4 parser: a host whose last label is a number (decimal, or
    ``0x`` hex) is an IPv4 address written in decimal, octal (leading ``0``) or hex parts,
    with 1 to 4 parts (``2130706433``, ``0x7f.1``, ``017700000001``, ``127.1``). Returns
    ``None`` for an ordinary host name; raises ``ValueError`` for a host that ends in a
    number but is not a valid address (browsers refuse those URLs).
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not _is_number_label(parts[-1]):
        return None
    if len(parts) > 4:
        raise ValueError(f"too many parts in numeric host {host!r}")
    numbers = [_parse_ipv4_number(p) for p in parts]
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"numeric host {host!r} is out of range")
    value = numbers[-1]
    for i, n in enumerate(numbers[:-1]):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


_DIGITS: Final = {8: "01234567", 10: "0123456789", 16: "0123456789abcdefABCDEF"}


def _is_number_label(label: str) -> bool:
    if label.isascii() and label.isdigit():
        return True
    try:
        _parse_ipv4_number(label)
    except ValueError:
        return False
    return label[:2].lower() == "0x"


def _parse_ipv4_number(part: str) -> int:
    if not part or not part.isascii():
        raise ValueError(f"bad IPv4 part {part!r}")
    if part[:2].lower() == "0x":
        digits, base = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        digits, base = part[1:], 8
    else:
        digits, base = part, 10
    if digits == "":
        return 0
    if not all(c in _DIGITS[base] for c in digits):
        raise ValueError(f"bad IPv4 part {part!r}")
    return int(digits, base)
