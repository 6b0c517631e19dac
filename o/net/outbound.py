"""The outbound URL policy: which addresses O may connect to when it calls out.

Every outbound HTTP call O makes (model and embedding endpoints now; web fetch, MCP servers and file
URLs later) goes through one :class:`OutboundPolicy`, built once from the settings by the composition
root and passed down. A call may not reach a loopback, link-local (169.254.0.0/16, where the cloud
metadata service answers, and fe80::/10), private (RFC 1918, carrier-grade NAT), unique-local
(fc00::/7), unspecified, multicast or reserved address unless the operator allows it: by CIDR, by host
name, or (loopback only) with ``allow_loopback``, which is on by default locally so that Ollama on
``localhost:11434`` works and off on AWS.

The decisions here are pure. They are applied where the connection is made
(:mod:`o.net.transport`): to the addresses a host name resolved to, once, and the connection goes to
an address that was checked, so a name that resolves to a public address when checked and to
169.254.169.254 when connected (DNS rebinding) cannot slip past.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from urllib.parse import urlsplit

from o.config import OutboundSettings, env_name
from o.errors import InvalidInput

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

LOOPBACK = "loopback"

# Address ranges a call must not reach unless the operator allows them, each with the word errors use.
_DENIED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ip_network(cidr), kind)
    for cidr, kind in (
        ("127.0.0.0/8", LOOPBACK),
        ("::1/128", LOOPBACK),
        ("0.0.0.0/8", "unspecified"),
        ("::/128", "unspecified"),
        ("169.254.0.0/16", "link-local"),
        ("fe80::/10", "link-local"),
        ("10.0.0.0/8", "private"),
        ("172.16.0.0/12", "private"),
        ("192.168.0.0/16", "private"),
        ("100.64.0.0/10", "private"),  # carrier-grade NAT: inside a provider's network, like RFC 1918
        ("fc00::/7", "unique-local"),
        ("fec0::/10", "site-local"),  # deprecated, still routed privately where it exists
        ("224.0.0.0/4", "multicast"),
        ("ff00::/8", "multicast"),
        ("240.0.0.0/4", "reserved"),  # including the broadcast address
    )
)

# IPv6 ranges that carry an IPv4 address which the network may end up delivering to.
_NAT64 = (ip_network("64:ff9b::/96"), ip_network("64:ff9b:1::/48"))


class OutboundDenied(InvalidInput):
    """O refused to call a URL: its scheme, or an address it names or resolves to, is not allowed."""

    code = "outbound_denied"


def embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: IPv4-mapped (``::ffff:127.0.0.1``), 6to4, NAT64."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _NAT64):
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_kind(address: IPAddress) -> str | None:
    """What kind of non-public address ``address`` is ("loopback", "link-local", ...); None when public."""
    if isinstance(address, IPv6Address):
        inner = embedded_ipv4(address)
        if inner is not None:
            return address_kind(inner)
    for network, kind in _DENIED:
        if network.version == address.version and address in network:
            return kind
    return None


def parse_address(text: str) -> IPAddress | None:
    """``text`` as an IP address (a URL's bracketless IPv6 host, or a zone-scoped one), else None."""
    try:
        return ip_address(text)
    except ValueError:
        return None


def normal_host(host: str) -> str:
    return host.rstrip(".").lower()


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Which addresses O may connect to. The default allows public addresses only."""

    allow_loopback: bool = False
    allowed_networks: tuple[IPNetwork, ...] = ()
    # names whose addresses are trusted whatever they resolve to (an operator's internal service)
    allowed_hosts: frozenset[str] = frozenset()

    @classmethod
    def allowing(cls, entries: Iterable[str], *, allow_loopback: bool = False) -> OutboundPolicy:
        """A policy that also allows ``entries``: addresses or CIDRs, else host names."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for entry in entries:
            try:
                networks.append(ip_network(entry, strict=False))
            except ValueError:
                hosts.add(normal_host(entry))
        return cls(allow_loopback, tuple(networks), frozenset(hosts))

    @classmethod
    def from_settings(cls, settings: OutboundSettings, runtime: str) -> OutboundPolicy:
        """The operator's policy; loopback is allowed by default locally and denied on AWS (``runtime`` "lambda")."""
        loopback = settings.allow_loopback if settings.allow_loopback is not None else runtime != "lambda"
        return cls.allowing(settings.allow, allow_loopback=loopback)

    def address_refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be connected to (its kind), or None when it may."""
        kind = address_kind(address)
        if kind is None or (kind == LOOPBACK and self.allow_loopback):
            return None
        candidates = [address]
        if isinstance(address, IPv6Address) and (inner := embedded_ipv4(address)) is not None:
            candidates.append(inner)
        for network in self.allowed_networks:
            if any(network.version == a.version and a in network for a in candidates):
                return None
        return kind

    def host_allowed(self, host: str) -> bool:
        return normal_host(host) in self.allowed_hosts

    def url_refusal(self, url: str) -> str | None:
        """Why ``url`` cannot be called, as far as can be told without resolving its host, or None.

        Only http(s) URLs with a host; a literal address is judged here already; a name is judged on
        the addresses it resolves to, when connecting.
        """
        try:
            parts = urlsplit(url)
            _ = parts.port  # raises ValueError for a port that is no number in range
        except ValueError:
            return f"{url!r} is not a valid URL"
        if parts.scheme not in ("http", "https"):
            return f"{url!r} is not an http or https URL"
        host = parts.hostname
        if not host:
            return f"{url!r} names no host"
        if self.host_allowed(host):
            return None
        address = parse_address(host)
        if address is None:
            return None  # a name (even "localhost") is judged on what it resolves to, when connecting
        kind = self.address_refusal(address)
        return _denied(host, kind) if kind else None

    def check_url(self, url: str) -> None:
        """Raise :class:`OutboundDenied` for a URL that :meth:`url_refusal` refuses."""
        refusal = self.url_refusal(url)
        if refusal is not None:
            raise OutboundDenied(refusal, url=url)

    def connectable(self, host: str, resolved: Sequence[str]) -> list[str]:
        """The addresses among ``resolved`` (what ``host`` resolved to) that may be connected to, in order.

        Raises :class:`OutboundDenied` when there are none, naming the first refused address.
        """
        if self.host_allowed(host):
            return list(resolved)
        allowed: list[str] = []
        refused: tuple[str, str] | None = None
        for text in resolved:
            address = parse_address(text)
            kind = "unparsable" if address is None else self.address_refusal(address)
            if kind is None:
                allowed.append(text)
            elif refused is None:
                refused = (text, kind)
        if allowed:
            return allowed
        if refused is None:
            raise OutboundDenied(f"{host} resolved to no address", host=host)
        address_text, kind = refused
        shown = host if address_text == host else f"{host} ({address_text})"
        raise OutboundDenied(_denied(shown, kind), host=host, address=address_text)


def _denied(target: str, kind: str) -> str:
    setting = env_name("outbound", "allow_loopback" if kind == LOOPBACK else "allow")
    return f"{target} is a {kind} address, which O does not call (the operator can allow it with {setting})"
