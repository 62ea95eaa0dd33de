"""The nft script of our own table, `inet hotspot`: its sets, chains and rules.

This module owns what the kernel decides for each packet: `Ruleset` checks every value that
goes into the text (interface and table names, ports, rates, marks, networks), so no input can
inject a command, and builds the script `NftFirewall.setup()` loads, with the limits and ports
it defaults to (`RateLimit`, `DNS_RATE`, `GARDEN_PORTS`, ...).

Per-packet decisions, each evaluated on every packet rather than only on a connection's first,
so that deauthorizing a device also ends the connections it already has open. That is sturdier
than deleting conntrack entries: it needs no conntrack tool, and no packet can slip through
between a deauthorize and an entry's deletion, nor re-create an entry afterwards.

- `prerouting_raw` (before conntrack): a blocked MAC gets nothing, not even the portal.
- `lan_nat`: an unauthorized device's tcp/80 goes to the portal (DNAT).
- `lan_out` (forwarded, from the LAN): IPv6 is refused first (no way around the portal; the
  hotspot does not route IPv6); so are, logged in or not, other phones through the router (by
  interface: hostapd's client isolation stays whole), the operator's interface, and private
  destinations beyond the uplink (`PRIVATE_DESTINATIONS`: the modem's admin page, the
  upstream's LAN) except the `local_destinations` allowed; then authorized (IP and MAC
  together), trusted MACs, the portal and the walled garden (tcp `GARDEN_PORTS` only: web
  pages, no other port, no UDP) pass; the rest is refused.
- `lan_in` (forwarded, towards the LAN): authorized addresses, replies from the garden's ports
  and to connections of trusted MACs (ct mark) pass; other established tcp gets a reset so the
  far end stops too; the rest is dropped.
- `lan_local` (input, from the LAN to the router itself, whichever of its addresses): over
  IPv6 only neighbour discovery and DHCPv6 (logging in is for IPv4, so over IPv6 the router
  cannot tell who is logged in). DNS from devices not logged in is limited to `DNS_RATE` per
  MAC (however many addresses a device gives itself) and to `DNS_RATE_ALL` for all of them
  together, so no DNS tunnel is free internet; the per-MAC meter is a bounded set, and a MAC
  it has no room for gets no DNS (fails closed). Phones reach only DHCP, DNS, the portal's
  ports and ICMP, logged in, trusted or not: a MAC is seen over the air and cloned, so it
  opens no SSH nor anything else the router runs. Trusted MACs pass the portal for
  forwarding only. The one exception is the operator UI's port (`operator_ui_port`): the
  BUMDes manager opens it from a phone on the same Wi-Fi (TLS and the password protect it);
  with `operator_ui_macs` only those devices may, every packet from any other gets a reset
  (before the established accept, like every decision here). Left out, it is refused too.
- `input`, from any other interface: left alone, unless `operator_interface` or
  `operator_networks` is named; then the router's admin services answer only there, and
  `other_local` lets the rest (the uplink) have only the replies to the router's own
  connections, ICMP and DHCP.
- `refuse`: refused at once, tcp reset, else icmp admin-prohibited, so phones notice fast.
- `postrouting_nat`: with `masquerade_interface`, what the LAN sends out through the uplink
  leaves with the router's address there (the ISP's modem has no route back to lan_prefix).

The walled garden is two sets: `garden`, kept by hotspotd, and `garden_dns`, which dnsmasq's
`nftset=` fills with the addresses of garden names as it resolves them. dnsmasq gives those no
timeout, so the set has its own (`GARDEN_DNS_TIMEOUT`, renewed by each packet to the address):
an address nobody uses any more goes.

Two counter sets, `auth_up` (`ipv4_addr . ether_addr`) and `auth_down` (`ipv4_addr`), are only
looked up in the forward chains, so each forwarded byte is counted once; a third plain set
`auth` serves the NAT decision without touching the counters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, collapse_addresses

from hotspotd.core.ports import normalize_mac
from hotspotd.net.addresses import PRIVATE_DESTINATIONS

_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,31}$")


@dataclass(frozen=True)
class RateLimit:
    """Packets a second after a burst, checked here so the nft text holds only integers."""

    per_second: int
    burst: int

    def __post_init__(self) -> None:
        for name in ("per_second", "burst"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 10**6:
                raise ValueError(f"rate limit {name} out of range: {value!r}")

    def nft(self) -> str:
        return f"{self.per_second}/second burst {self.burst} packets"


# DNS a device that is not logged in may send the router, per device (its MAC: a phone can
# give itself many addresses but has one MAC on the air, and a cloned MAC shares the bucket).
DNS_RATE = RateLimit(20, 100)
# ... and all such devices together: one device cycling through made-up MACs gets no more than
# this, so a DNS tunnel stays a trickle however it is spread. A village's phones joining at
# once send far less: a phone's burst at connect is some 20-50 queries.
DNS_RATE_ALL = RateLimit(200, 1000)
# How many devices not logged in the per-device meter remembers at once (each for a minute).
DNS_METER_SIZE = 65536

# What a device not logged in may open in the walled garden: web pages, nothing else.
GARDEN_PORTS = (80, 443)
# How long an address dnsmasq put in `garden_dns` stays there after it was added or last used.
# dnsmasq 2.90's nftset= adds a bare element (`add element ... { addr }`: no timeout, and the
# record's TTL is not passed on), and only when it fetches the name upstream, not when it
# answers from its cache; re-adding an element already there does not renew its timeout
# (kernel 6.18). So the set cannot follow each record's TTL: its own default timeout ends
# what nobody uses any more, and each packet a phone sends to the address renews it, so a
# garden site in use does not close while dnsmasq still answers from its cache. Keep dnsmasq's
# max-cache-ttl at most this long (config/dnsmasq.conf.example), so a name is fetched anew,
# and re-added, before an idle address can have gone.
GARDEN_DNS_TIMEOUT = 3600


class Ruleset:
    """Our table's sets and chains, from values checked here: the text setup() loads."""

    def __init__(
        self,
        *,
        lan_interface: str,
        portal_ip: IPv4Address | str,
        portal_port: int = 80,
        table: str = "hotspot",
        dns_redirect_port: int | None = None,
        masquerade_interface: str | None = None,
        local_tcp_ports: Iterable[int] = (),
        trusted_ct_mark: int = 0x00400000,
        dns_rate: RateLimit = DNS_RATE,
        dns_rate_all: RateLimit = DNS_RATE_ALL,
        dns_meter_size: int = DNS_METER_SIZE,
        garden_ports: Iterable[int] = GARDEN_PORTS,
        garden_dns_timeout: int = GARDEN_DNS_TIMEOUT,
        local_destinations: Iterable[IPv4Network | str] = (),
        operator_interface: str | None = None,
        operator_networks: Iterable[IPv4Network | str] = (),
        operator_ui_port: int | None = None,
        operator_ui_macs: Iterable[str] = (),
    ) -> None:
        if not _IFNAME.match(lan_interface):
            raise ValueError(f"not an interface name: {lan_interface!r}")
        if masquerade_interface is not None and (
            not _IFNAME.match(masquerade_interface) or masquerade_interface == lan_interface
        ):
            raise ValueError(f"not an uplink interface name: {masquerade_interface!r}")
        if not _TABLE.match(table):
            raise ValueError(f"not a table name: {table!r}")
        for name, port in (("portal_port", portal_port), ("dns_redirect_port", dns_redirect_port)):
            if port is not None and not 0 < int(port) < 65536:
                raise ValueError(f"{name} out of range: {port}")
        if not 0 < trusted_ct_mark < 2**32 or trusted_ct_mark & (trusted_ct_mark - 1):
            raise ValueError("trusted_ct_mark must be a single bit")
        self._lan = lan_interface
        self._portal_ip = IPv4Address(portal_ip)
        self._portal_port = int(portal_port)
        self._table = table
        self._dns_port = dns_redirect_port
        self._masquerade = masquerade_interface
        ports = {int(p) for p in local_tcp_ports} | {self._portal_port}
        if any(not 0 < p < 65536 for p in ports):
            raise ValueError(f"local_tcp_ports out of range: {sorted(ports)}")
        self._local_tcp = sorted(ports)
        self._mark = trusted_ct_mark
        if not isinstance(dns_rate, RateLimit) or not isinstance(dns_rate_all, RateLimit):
            raise ValueError("dns_rate and dns_rate_all must be RateLimit values")
        if not 0 < int(dns_meter_size) <= 2**20:
            raise ValueError(f"dns_meter_size out of range: {dns_meter_size}")
        self._dns_rate = dns_rate
        self._dns_rate_all = dns_rate_all
        self._dns_meter_size = int(dns_meter_size)
        garden = sorted({int(p) for p in garden_ports})
        if not garden or any(not 0 < p < 65536 for p in garden):
            raise ValueError(f"garden_ports must be 1 to 65535, at least one: {garden}")
        self._garden_ports = garden
        if not 0 < int(garden_dns_timeout) <= 7 * 86400:
            raise ValueError(f"garden_dns_timeout out of range: {garden_dns_timeout}")
        self._garden_timeout = int(garden_dns_timeout)
        if operator_interface is not None and (
            not _IFNAME.match(operator_interface) or operator_interface == lan_interface
        ):
            raise ValueError(f"not an operator interface name: {operator_interface!r}")
        self._operator_if = operator_interface
        self._operator_nets = list(
            collapse_addresses(IPv4Network(str(net), strict=True) for net in operator_networks)
        )
        self._local_ok = list(
            collapse_addresses(IPv4Network(str(net), strict=True) for net in local_destinations)
        )
        # The operator UI's port, open to the LAN (None: not, as any other router service),
        # to every device or, with MACs named, to those only. Its own port: restricting it must
        # never take DNS or the portal from a resident.
        if operator_ui_port is not None and (
            isinstance(operator_ui_port, bool)
            or not 0 < int(operator_ui_port) < 65536
            or int(operator_ui_port) in {*self._local_tcp, 53, self._dns_port or 53}
        ):
            raise ValueError(f"operator_ui_port must be a port of its own: {operator_ui_port}")
        self._operator_ui_port = None if operator_ui_port is None else int(operator_ui_port)
        self._operator_ui_macs = sorted({normalize_mac(str(mac)) for mac in operator_ui_macs})
        if self._operator_ui_macs and self._operator_ui_port is None:
            raise ValueError("operator_ui_macs without operator_ui_port")

    @property
    def table(self) -> str:
        return self._table

    @staticmethod
    def chains() -> dict[str, str]:
        """Our chains and, for base chains, their hooks."""
        return {
            "prerouting_raw": "type filter hook prerouting priority raw; policy accept;",
            "prerouting_nat": "type nat hook prerouting priority dstnat; policy accept;",
            "forward": "type filter hook forward priority filter; policy accept;",
            "postrouting_nat": "type nat hook postrouting priority srcnat; policy accept;",
            "input": "type filter hook input priority filter; policy accept;",
            "lan_local": "",
            "lan_nat": "",
            "lan_out": "",
            "lan_in": "",
            "other_local": "",
            "refuse": "",
        }

    def garden_dns_shape(self) -> str:
        return f"{{ type ipv4_addr; flags dynamic, timeout; timeout {self._garden_timeout}s; }}"

    def text(self) -> str:
        """The nft script setup() runs. Loaded at boot (e.g. from /etc/nftables.conf) it closes
        the door before hotspotd starts: with no table at all, the router forwards everyone."""
        t = f"inet {self._table}"
        lan = f'"{self._lan}"'
        portal = f"{self._portal_ip}:{self._portal_port}"
        mark = f"0x{self._mark:08x}"
        chains = self.chains()
        nat_dns: list[str] = []
        if self._dns_port is not None:
            nat_dns = [
                f"udp dport 53 redirect to :{self._dns_port}",
                f"tcp dport 53 redirect to :{self._dns_port}",
            ]
        dns_ports = ", ".join(str(p) for p in sorted({53, self._dns_port or 53}))
        ui_port = [self._operator_ui_port] if self._operator_ui_port is not None else []
        tcp_ports = ", ".join(
            str(p) for p in sorted({*self._local_tcp, 53, self._dns_port or 53, *ui_port})
        )
        # Only the named devices open the operator UI's port; any other gets a reset on every
        # packet, established or not (a MAC dropped from the list loses its open connection).
        ui_only_macs = (
            [
                f"tcp dport {self._operator_ui_port} "
                f"ether saddr != {{ {', '.join(self._operator_ui_macs)} }} jump refuse"
            ]
            if self._operator_ui_macs
            else []
        )
        garden_ports = ", ".join(map(str, self._garden_ports))
        private = ", ".join(map(str, PRIVATE_DESTINATIONS))
        # The router's admin services (SSH, a web UI: anything a phone may not use) answer on
        # the operator's interface and from the operator's networks only, once either is named;
        # from the LAN never (lan_local). Unnamed, other interfaces are left as they are.
        operator_only: list[str] = []
        if self._operator_if or self._operator_nets:
            operator_only = [
                'iifname "lo" accept',
                *([f'iifname "{self._operator_if}" accept'] if self._operator_if else []),
                *(
                    [f"ip saddr {{ {', '.join(map(str, self._operator_nets))} }} accept"]
                    if self._operator_nets
                    else []
                ),
                "jump other_local",
            ]
        allowed = ", ".join(map(str, self._local_ok))
        dns_before_login = (
            f"meta l4proto {{ udp, tcp }} th dport {{ {dns_ports} }} "
            "ip saddr . ether saddr != @auth ether saddr != @trusted"
        )
        rules = {
            "prerouting_raw": [f"iifname {lan} ether saddr @blocked drop"],
            "input": [f"iifname {lan} jump lan_local", *operator_only],
            "lan_local": [
                # IPv6 to the router: neighbour discovery, router solicitations and DHCPv6 (where
                # the operator switches IPv6 on for option 103), nothing else. Logging in is for
                # IPv4, so over IPv6 the router cannot tell who is logged in: DNS over IPv6
                # (to its link-local address, say) would be DNS without any limit.
                "meta nfproto ipv6 meta l4proto ipv6-icmp accept",
                "meta nfproto ipv6 udp dport 547 accept",
                "meta nfproto ipv6 jump refuse",
                # Before login, DNS is slowed per MAC, then for all devices not logged in
                # together (before the established accept: a tunnel reusing one socket would be
                # "established"). A phone's burst at connect fits; a DNS tunnel for free internet
                # gets a few kB/s. The meter's set is bounded: once full, a MAC it cannot add
                # gets no DNS at all (the update only fails, it would not drop by itself).
                f"{dns_before_login} update @dns_meter "
                f"{{ ether saddr limit rate over {self._dns_rate.nft()} }} drop",
                f"{dns_before_login} ether saddr != @dns_meter drop",
                f"{dns_before_login} limit rate over {self._dns_rate_all.nft()} drop",
                *ui_only_macs,
                "ct state established,related accept",
                # No SSH nor anything else for a trusted MAC here: a MAC is seen over the air
                # and cloned in a minute. The operator comes in on operator_interface, or to the
                # operator UI's port alone (its password and TLS are what protect it).
                "meta l4proto icmp accept",
                f"udp dport {{ 67, {dns_ports} }} accept",
                f"tcp dport {{ {tcp_ports} }} accept",
                "jump refuse",
            ],
            "prerouting_nat": [f"iifname {lan} jump lan_nat"],
            "forward": [f"iifname {lan} jump lan_out", f"oifname {lan} jump lan_in"],
            # The village's private addresses leave through the uplink as the router's own:
            # the ISP's modem knows no route back to lan_prefix. Counting and shaping still see
            # each phone's address (they run before this hook, and replies are un-NATed first).
            "postrouting_nat": (
                [f'iifname {lan} oifname "{self._masquerade}" masquerade']
                if self._masquerade
                else []
            ),
            "lan_nat": [
                "ether saddr @trusted return",
                "ip saddr . ether saddr @auth return",
                *nat_dns,
                f"ip daddr @garden tcp dport {{ {garden_ports} }} return",
                f"ip daddr @garden_dns tcp dport {{ {garden_ports} }} return",
                f"tcp dport 80 dnat ip to {portal}",
            ],
            "lan_out": [
                "meta nfproto ipv6 jump refuse",
                # Not to another phone through the router (that would undo hostapd's client
                # isolation), nor to private networks beyond the uplink, logged in or not.
                f"oifname {lan} jump refuse",
                *([f'oifname "{self._operator_if}" jump refuse'] if self._operator_if else []),
                f"ip daddr {{ {private} }} "
                + (f"ip daddr != {{ {allowed} }} " if allowed else "")
                + "jump refuse",
                "ip saddr . ether saddr @auth_up accept",
                f"ether saddr @trusted ct mark set ct mark or {mark} accept",
                f"ip daddr {self._portal_ip} accept",
                f"ip daddr @garden tcp dport {{ {garden_ports} }} accept",
                # Each packet renews the address's timeout (see GARDEN_DNS_TIMEOUT); only an
                # address already there: the lookup comes first.
                f"ip daddr @garden_dns tcp dport {{ {garden_ports} }} "
                "update @garden_dns { ip daddr } accept",
                "jump refuse",
            ],
            "lan_in": [
                "ip daddr @auth_down accept",
                f"ct state established,related ct mark and {mark} == {mark} accept",
                f"ct state established ip saddr @garden tcp sport {{ {garden_ports} }} accept",
                f"ct state established ip saddr @garden_dns tcp sport {{ {garden_ports} }} accept",
                "ct state related ip saddr @garden accept",  # icmp errors (path MTU)
                "ct state related ip saddr @garden_dns accept",
                f"ct state established,related ip saddr {self._portal_ip} accept",
                "ct state established meta l4proto tcp reject with tcp reset",
                "drop",
            ],
            # Input from the other interfaces (the uplink), once the operator's are named: the
            # router's own connections, ICMP and DHCP (server and client) only.
            "other_local": [
                "ct state established,related accept",
                "meta l4proto { icmp, ipv6-icmp } accept",
                "udp dport { 67, 68, 546, 547 } accept",
                "jump refuse",
            ],
            # Refused at once, so phones notice fast: a tcp reset, else icmp admin-prohibited.
            "refuse": [
                "meta l4proto tcp reject with tcp reset",
                "reject with icmpx admin-prohibited",
            ],
        }
        lines = [
            f"add table {t}",
            f"add set {t} auth {{ type ipv4_addr . ether_addr; }}",
            f"add set {t} auth_up {{ type ipv4_addr . ether_addr; counter; }}",
            f"add set {t} auth_down {{ type ipv4_addr; counter; }}",
            f"add set {t} trusted {{ type ether_addr; }}",
            f"add set {t} blocked {{ type ether_addr; }}",
            f"add set {t} garden {{ type ipv4_addr; }}",
            f"add set {t} garden_dns {self.garden_dns_shape()}",
            f"add set {t} dns_meter {{ type ether_addr; size {self._dns_meter_size}; "
            "flags dynamic; timeout 1m; }",
        ]
        for name, hook in chains.items():
            lines.append(f"add chain {t} {name} {{ {hook} }}" if hook else f"add chain {t} {name}")
            lines.append(f"flush chain {t} {name}")
        for name, chain_rules in rules.items():
            lines.extend(f"add rule {t} {name} {rule}" for rule in chain_rules)
        return "\n".join(lines) + "\n"
