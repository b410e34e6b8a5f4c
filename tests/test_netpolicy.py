"""The site boundary (scheme, host, port as configured) and the addresses a crawl may reach."""

from __future__ import annotations

import ipaddress

import pytest

from crawler.netpolicy import AddressPolicy, SiteBoundary, restricted


@pytest.mark.parametrize(
    "url, inside",
    [
        ("https://example.org/2024/x", True),
        ("http://example.org/2024/x", True),  # http and https on default ports: one site
        ("https://www.example.org/2024/x", True),  # subdomains of a domain
        ("https://example.org:443/2024/x", True),
        ("https://example.org:8443/2024/x", False),  # another port of the same host
        ("http://example.org:6379/", False),
        ("https://example.net/2024/x", False),
        ("ftp://example.org/x", False),
        ("http://example.org:99999/x", False),  # not a port at all
    ],
)
def test_the_boundary_of_a_site_on_default_ports(url: str, inside: bool) -> None:
    boundary = SiteBoundary(["example.org"], ["https://example.org/feed.xml"])
    assert boundary.allows(url) is inside


def test_a_site_on_its_own_port_is_only_that_port() -> None:
    boundary = SiteBoundary(["127.0.0.1"], ["http://127.0.0.1:5000/feed.xml"])
    assert boundary.allows("http://127.0.0.1:5000/2024/a")
    assert not boundary.allows("http://127.0.0.1:6000/2024/a")
    assert not boundary.allows("http://127.0.0.1/2024/a")
    assert "port 6000" in (boundary.why_not("http://127.0.0.1:6000/") or "")


@pytest.mark.parametrize(
    "address, kind",
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.251", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("93.184.216.34", None),
        ("2606:2800:220:1::1", None),
    ],
)
def test_restricted_ranges(address: str, kind: str | None) -> None:
    assert restricted(ipaddress.ip_address(address)) == kind


def test_a_public_outlet_reaches_no_internal_address() -> None:
    policy = AddressPolicy(["93.184.216.34"])
    assert policy.why_refused("93.184.216.40") is None
    reason = policy.why_refused("169.254.169.254")
    assert reason is not None and "link-local" in reason and "allow_networks" in reason
    assert policy.why_refused("127.0.0.1") is not None


def test_an_outlet_configured_on_an_internal_address_reaches_that_address_only() -> None:
    policy = AddressPolicy(["127.0.0.1"])
    assert policy.why_refused("127.0.0.1") is None
    assert policy.why_refused("127.0.0.2") is not None


def test_allow_networks_opens_an_intranet() -> None:
    policy = AddressPolicy(["intranet.invalid"], [ipaddress.ip_network("10.20.0.0/16")])
    assert policy.why_refused("10.20.3.4") is None
    assert policy.why_refused("10.21.0.1") is not None
