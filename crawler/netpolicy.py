"""Where an outlet's crawl may go: its site boundary (scheme, host and port as configured)
and the addresses its host names may resolve to. Pure functions and small classes; the
download handler (crawler.nethandler) and the middlewares apply them."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from crawler.outlets import Outlet

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL, the port made explicit; None when not one."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # a port that is not a number, or out of range
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port if port is not None else _DEFAULT_PORTS[scheme]


class SiteBoundary:
    """An outlet's site: its domains (and their subdomains), on the schemes and ports of its
    configured URLs. The default ports count as one (http://host/ and https://host/ are the
    same site: outlets redirect one to the other); any other port is its own site, so
    example.org:8080 is not example.org, and 127.0.0.1:5000 not 127.0.0.1:6000."""

    def __init__(self, domains: Iterable[str], urls: Iterable[str]) -> None:
        self.domains = tuple(d.lower() for d in domains)
        self.schemes_ports: set[tuple[str, int]] = set()
        for url in urls:
            o = origin(url)
            if o is not None:
                self.schemes_ports.add((o[0], o[2]))
        if self.schemes_ports & {("http", 80), ("https", 443)} or not self.schemes_ports:
            self.schemes_ports |= {("http", 80), ("https", 443)}

    @classmethod
    def for_outlet(cls, outlet: Outlet) -> SiteBoundary:
        return cls(outlet.domains, outlet.sources)

    def on_domains(self, host: str) -> bool:
        host = host.lower()
        return any(host == d or host.endswith("." + d) for d in self.domains)

    def why_not(self, url: str) -> str | None:
        """None when the URL is inside the site, else why not (one short phrase)."""
        o = origin(url)
        if o is None:
            return "not an http(s) URL"
        scheme, host, port = o
        if not self.on_domains(host):
            return "outside the outlet's domains"
        if (scheme, port) not in self.schemes_ports:
            return f"port {port} ({scheme}) is not one of the outlet's configured URLs"
        return None

    def allows(self, url: str) -> bool:
        return self.why_not(url) is None


def restricted(address: IPAddress) -> str | None:
    """The kind of range the crawler refuses by default, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_private or address.is_reserved:
        return "private"
    return None


def resolve(host: str) -> set[IPAddress]:
    """Every address a host name (or literal) resolves to; empty when it does not."""
    try:
        return {ipaddress.ip_address(host)}
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return set()
    out: set[IPAddress] = set()
    for info in infos:
        try:
            out.add(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
        except ValueError:
            continue
    return out


class AddressPolicy:
    """Which peer addresses an outlet's connections may reach. Public addresses always;
    loopback, private, link-local and multicast ones only when the outlet's own configured
    URLs resolve there (a test site on 127.0.0.1, an intranet outlet on 10.1.2.3) or the
    outlet lists them in `allow_networks`. So a public outlet's feed cannot send the crawler
    to 127.0.0.1:6379 or 169.254.169.254 through a link or a DNS name."""

    def __init__(self, configured_hosts: Iterable[str], networks: Iterable[Network] = ()) -> None:
        self.configured_hosts = tuple(dict.fromkeys(h.lower() for h in configured_hosts))
        self.networks = tuple(networks)
        self._configured: set[IPAddress] | None = None

    @classmethod
    def for_outlet(cls, outlet: Outlet) -> AddressPolicy:
        hosts = [o[1] for o in map(origin, outlet.sources) if o is not None]
        return cls(hosts, outlet.allow_networks)

    def configured_addresses(self) -> set[IPAddress]:
        """Resolved once, and only when a restricted address shows up (a public outlet never
        pays for it)."""
        if self._configured is None:
            self._configured = set()
            for host in self.configured_hosts:
                self._configured |= resolve(host)
        return self._configured

    def why_refused(self, address: str | IPAddress) -> str | None:
        """None when a connection to this address is allowed, else why not (one line)."""
        try:
            ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        except ValueError:
            return None  # not an IP peer (a UNIX socket, a proxy's name): nothing to check
        kind = restricted(ip)
        if kind is None:
            return None
        if any(ip in net for net in self.networks) or ip in self.configured_addresses():
            return None
        return (
            f"address {ip} is {kind}: refused (the outlet's configured URLs are not there; "
            f"allow it with allow_networks)"
        )
