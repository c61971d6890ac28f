"""The address policy: which IPs are public, embedded IPv4 decoding, allow-lists, metadata."""

from __future__ import annotations

import ipaddress

import pytest

from retrieval.net.addresses import (
    decode_embedded_ipv4,
    is_metadata,
    is_public,
    may_connect,
    parse_ip,
    parse_legacy_ipv4,
    parse_networks,
)

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.15.255.255",
    "172.32.0.0",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",  # NAT64 of 8.8.8.8
    "2002:808:808::1",  # 6to4 of 8.8.8.8
]

NOT_PUBLIC = [
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "100.64.0.1",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.0.1",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.0.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "168.63.129.16",  # Azure wire server: globally routed, still refused
    "100.100.100.200",
    "::",
    "::1",
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "::ffff:0:7f00:1",  # SIIT translated form
    "::127.0.0.1",  # IPv4-compatible
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::7f00:1",
    "64:ff9b:1::a00:1",  # local-use NAT64 prefix
    "2002:a9fe:a9fe::",
    "2002:c0a8:101::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo, client 192.0.2.45
    "2001:db8::1",
    "3fff::1",
    "5f00::1",
    "100::1",
    "fc00::1",
    "fd12:3456::1",
    "fd00:ec2::254",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "ff02::1",
    "not an address",
    "",
    "127.1",  # loose forms are the URL layer's job; here they are simply not addresses
]


@pytest.mark.parametrize("ip", PUBLIC)
def test_public_addresses_are_public(ip: str) -> None:
    assert is_public(ip)
    assert may_connect(ip)


@pytest.mark.parametrize("ip", NOT_PUBLIC)
def test_non_public_addresses_are_refused(ip: str) -> None:
    assert not is_public(ip)
    assert not may_connect(ip)


def test_is_public_accepts_address_objects() -> None:
    assert is_public(ipaddress.ip_address("8.8.8.8"))
    assert not is_public(ipaddress.ip_address("::ffff:10.0.0.1"))


@pytest.mark.parametrize(
    ("ip", "embedded"),
    [
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("::ffff:0:a00:1", "10.0.0.1"),
        ("::a9fe:a9fe", "169.254.169.254"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("2002:a9fe:a9fe::", "169.254.169.254"),
        ("2001:0:4136:e378:8000:63bf:5601:5601", "169.254.169.254"),  # Teredo client
        ("2606:4700::1", None),
        ("fd00:ec2::254", None),
        ("10.0.0.1", None),
    ],
)
def test_decode_embedded_ipv4(ip: str, embedded: str | None) -> None:
    parsed = parse_ip(ip)
    assert parsed is not None
    decoded = decode_embedded_ipv4(parsed)
    assert (str(decoded) if decoded is not None else None) == embedded


def test_parse_ip_drops_scope_and_rejects_garbage() -> None:
    assert parse_ip("fe80::1%eth0") == ipaddress.ip_address("fe80::1")
    assert parse_ip(" 10.0.0.1 ") == ipaddress.ip_address("10.0.0.1")
    assert parse_ip("example.com") is None


@pytest.mark.parametrize(
    "ip",
    [
        "169.254.169.254",
        "169.254.170.2",
        "168.63.129.16",
        "100.100.100.200",
        "fd00:ec2::254",
        "::ffff:169.254.169.254",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::",
    ],
)
def test_metadata_stays_blocked_inside_allow_private(ip: str) -> None:
    everything = parse_networks(["0.0.0.0/0", "::/0"])
    assert is_metadata(ip)
    assert not may_connect(ip, everything)


def test_allow_private_opens_only_the_listed_networks() -> None:
    allow = parse_networks(["127.0.0.6/32", "10.1.0.0/16"])
    assert may_connect("127.0.0.6", allow)
    assert may_connect("10.1.2.3", allow)
    assert not may_connect("127.0.0.1", allow)
    assert not may_connect("10.2.0.1", allow)
    assert not may_connect("::1", allow)
    assert may_connect("8.8.8.8", allow)  # public stays allowed


def test_ipv4_mapped_address_matches_its_ipv4_network() -> None:
    allow = parse_networks(["127.0.0.0/8"])
    assert may_connect("::ffff:127.0.0.1", allow)
    # NAT64 and 6to4 reach a gateway, not 127.0.0.1 itself: no match by the IPv4 network.
    assert not may_connect("64:ff9b::7f00:1", allow)
    assert not may_connect("2002:7f00:1::", allow)


def test_ipv6_allow_list_does_not_open_ipv4() -> None:
    allow = parse_networks(["::1/128"])
    assert may_connect("::1", allow)
    assert not may_connect("127.0.0.1", allow)


def test_parse_networks_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="does not appear"):
        parse_networks(["not-a-cidr"])
    assert parse_networks(["10.0.0.1/8"]) == (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("0x", "0.0.0.0"),
        ("10.0x10.1", "10.16.0.1"),
        ("3232235777", "192.168.1.1"),
        ("8.8.8.8", "8.8.8.8"),
    ],
)
def test_parse_legacy_ipv4_decodes_numeric_hosts(host: str, expected: str) -> None:
    assert str(parse_legacy_ipv4(host)) == expected


@pytest.mark.parametrize(
    "host", ["example.com", "127.0.0.1.nip.io", "0x7f.example", "a.b1", "0x1g"]
)
def test_parse_legacy_ipv4_leaves_host_names_alone(host: str) -> None:
    assert parse_legacy_ipv4(host) is None


@pytest.mark.parametrize(
    "host", ["09", "1.2.3.4.5", "256.0.0.1", "1.2.65536", "4294967296", "1..1", "\uff11.1"]
)
def test_parse_legacy_ipv4_rejects_invalid_numeric_hosts(host: str) -> None:
    with pytest.raises(ValueError, match=r"IPv4 part|too many parts|out of range"):
        parse_legacy_ipv4(host)
