"""The captive portal's promises, shown with real traffic through a real kernel."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

import pytest

from hotspotd.core.ports import FirewallChange, Rate, ShaperChange
from hotspotd.core.reconcile import Desired, reconcile
from hotspotd.errors import AdapterError
from hotspotd.net.firewall import NftFirewall
from hotspotd.net.nft import NftCommand
from hotspotd.net.ruleset import RateLimit
from tests.netns.conftest import PHONE1, PHONE2, Router, key_of
from tests.netns.lab import (
    GARDEN_HOST,
    LAN_PREFIX,
    PORTAL_PORT,
    ROGUE,
    ROUTER_LAN,
    ROUTER_WAN,
    TCP_PORT,
    UPSTREAM,
    UPSTREAM6,
    Lab,
    delete_namespace,
    run,
)

pytestmark = pytest.mark.netns

R2 = Rate(2_000_000, 2_000_000)


def authorize(router: Router, *hosts: object, **extra: object) -> None:
    reconcile(
        router.firewall,
        router.shaper,
        Desired(authorized={key_of(h): R2 for h in hosts}, **extra),  # type: ignore[arg-type]
    )


def http(lab: Lab, role: str, host: str = UPSTREAM, timeout: float = 2.0) -> dict[str, object]:
    return lab.agent(role, "http", f"http://{host}/", timeout=timeout)


def upstream_heard(lab: Lab, ip: str) -> int:
    """How many requests from `ip` the upstream's servers have logged so far this session."""
    lines = lab.log_lines("up-http") + lab.log_lines("up-tcp") + lab.log_lines("up-dns")
    return sum(1 for line in lines if line.strip() and line.split()[0] == ip)


def test_unauthorized_http_is_redirected_to_the_portal(router: Router) -> None:
    lab = router.lab
    heard = upstream_heard(lab, "10.66.1.2")
    answer = http(lab, "p1")
    assert answer["ok"] and answer["body"] == "PORTAL"
    assert upstream_heard(lab, "10.66.1.2") == heard
    # Typing the router's own address gets the portal too, whatever port it listens on.
    assert http(lab, "p1", ROUTER_LAN)["body"] == "PORTAL"


def test_unauthorized_other_tcp_is_reset_within_a_second(router: Router) -> None:
    answer = router.lab.agent("p1", "connect", UPSTREAM, str(TCP_PORT), timeout=5)
    assert answer["result"] == "refused"
    assert answer["elapsed"] < 1.0


def test_unauthorized_dns_reaches_only_the_router(router: Router) -> None:
    lab = router.lab
    heard = upstream_heard(lab, "10.66.1.2")
    outside = lab.agent("p1", "dns", UPSTREAM, "53", timeout=1.5)
    assert not outside["answer"]
    assert lab.agent("p1", "dns", ROUTER_LAN, "53", timeout=1.5)["answer"]
    assert upstream_heard(lab, "10.66.1.2") == heard


def test_ipv6_is_no_way_around_the_portal(router: Router) -> None:
    lab = router.lab
    # Without our table the phone's IPv6 does reach the upstream: the test can tell.
    router.firewall.teardown()
    assert lab.agent("p1", "connect", UPSTREAM6, str(TCP_PORT))["result"] == "connected"
    router.firewall.setup()
    answer = lab.agent("p1", "connect", UPSTREAM6, str(TCP_PORT), timeout=3)
    assert answer["result"] != "connected"
    assert answer["elapsed"] < 1.0, answer  # refused at once, not left to time out
    # Authorizing is for IPv4 only; IPv6 stays closed.
    authorize(router, PHONE1)
    assert lab.agent("p1", "connect", UPSTREAM6, str(TCP_PORT))["result"] != "connected"


def test_authorized_phone_reaches_the_upstream_and_others_still_do_not(router: Router) -> None:
    lab = router.lab
    authorize(router, PHONE1)
    answer = http(lab, "p1")
    assert answer["ok"] and answer["body"] == "UPSTREAM"
    assert lab.agent("p1", "connect", UPSTREAM, str(TCP_PORT))["result"] == "connected"
    assert lab.agent("p1", "dns", UPSTREAM, "53")["answer"]
    assert http(lab, "p2")["body"] == "PORTAL"


@contextlib.contextmanager
def private_hosts_beyond_the_uplink(lab: Lab, *addresses: str) -> Iterator[None]:
    """Addresses in 192.168.77.0/24 on the upstream, routed there by the router: stand-ins
    for the ISP modem's admin page or a server on the upstream's LAN."""
    for address in addresses:
        lab.exec("up", "ip", "addr", "add", f"{address}/32", "dev", "eth0")
    lab.exec("r", "ip", "route", "add", "192.168.77.0/24", "via", UPSTREAM)
    try:
        yield
    finally:
        lab.exec("r", "ip", "route", "del", "192.168.77.0/24")
        for address in addresses:
            lab.exec("up", "ip", "addr", "del", f"{address}/32", "dev", "eth0")


@contextlib.contextmanager
def routed_through_the_router(lab: Lab, role: str, destination: str) -> Iterator[None]:
    """`role` sends to `destination` (another phone) by way of the router, as a phone behind
    hostapd's client isolation would have to; it ignores the router's ICMP redirects, which
    would only tell it to go direct (isolation forbids that; the lab's switch does not)."""
    sysctls = ("net.ipv4.conf.all.accept_redirects", "net.ipv4.conf.eth0.accept_redirects")
    before = [lab.exec(role, "sysctl", "-n", name).stdout.strip() for name in sysctls]
    for name in sysctls:
        lab.exec(role, "sysctl", "-qw", f"{name}=0")
    lab.exec(role, "ip", "route", "add", f"{destination}/32", "via", ROUTER_LAN)
    try:
        yield
    finally:
        lab.exec(role, "ip", "route", "del", f"{destination}/32")
        lab.exec(role, "ip", "route", "flush", "cache")
        for name, value in zip(sysctls, before, strict=True):
            lab.exec(role, "sysctl", "-qw", f"{name}={value}")


def test_logged_in_phones_reach_the_internet_not_other_phones_nor_private_networks(
    router: Router,
) -> None:
    lab = router.lab
    assert PHONE2.ip is not None
    other_phone = lab.serve("p2", "serve-tcp", "9100", str(lab.log("p2-tcp")))
    try:
        with (
            private_hosts_beyond_the_uplink(lab, "192.168.77.2", "192.168.77.3"),
            routed_through_the_router(lab, "p1", PHONE2.ip),
        ):
            # Without our table all of it is reachable: the test can tell.
            router.firewall.teardown()
            for host, port in ((PHONE2.ip, 9100), ("192.168.77.2", TCP_PORT)):
                assert lab.agent("p1", "connect", host, str(port))["result"] == "connected"
            router.firewall.setup()
            authorize(router, PHONE1, trusted=frozenset({PHONE2.mac}))
            assert lab.agent("p1", "connect", UPSTREAM, str(TCP_PORT))["result"] == "connected"
            for role, host, port in (
                ("p1", PHONE2.ip, 9100),  # another phone, through the router
                ("p1", "192.168.77.2", TCP_PORT),  # the upstream's private network
                ("p2", "192.168.77.2", TCP_PORT),  # a trusted MAC no more than a logged-in one
            ):
                answer = lab.agent(role, "connect", host, str(port), timeout=3)
                assert answer["result"] == "refused" and answer["elapsed"] < 1.0, (host, answer)
            # A village server on a private network, allowed by name (network.local_destinations;
            # the config refuses lan_prefix there, but even so phones are not forwarded to
            # each other: that is refused by interface, whatever the address).
            allowing = NftFirewall(
                lan_interface="lan0", portal_ip=ROUTER_LAN, portal_port=PORTAL_PORT,
                local_destinations=["192.168.77.3/32", LAN_PREFIX],
            )  # fmt: skip
            try:
                allowing.setup()
                to = lab.agent("p1", "connect", "192.168.77.3", str(TCP_PORT))
                assert to["result"] == "connected"
                assert lab.agent("p1", "connect", "192.168.77.2", str(TCP_PORT))["result"] == (
                    "refused"
                )
                assert lab.agent("p1", "connect", PHONE2.ip, "9100")["result"] == "refused"
                authorize(router, trusted=frozenset({PHONE2.mac}))  # allowed is not logged in
                assert lab.agent("p1", "connect", "192.168.77.3", str(TCP_PORT))["result"] == (
                    "refused"
                )
            finally:
                allowing.close()
    finally:
        other_phone.kill()
        other_phone.wait(timeout=5)
    with pytest.raises(ValueError, match="host bits"):
        NftFirewall(lan_interface="lan0", portal_ip=ROUTER_LAN, local_destinations=["10.1.1.1/8"])


def test_deauthorizing_cuts_the_phone_including_an_open_connection(router: Router) -> None:
    lab = router.lab
    authorize(router, PHONE1)
    hold = lab.start_agent("p1", "hold", UPSTREAM, str(TCP_PORT), "8")
    assert hold.stdout is not None
    first = json.loads(hold.stdout.readline())
    assert "ok" in first, first  # the connection is up and exchanging data
    for _ in range(5):
        assert "ok" in json.loads(hold.stdout.readline())
    cut_at = time.monotonic()
    authorize(router)  # nobody authorized any more
    last: dict[str, object] = {}
    for _ in range(400):
        line = hold.stdout.readline()
        if not line:
            break
        last = json.loads(line)
        if "ok" not in last:
            break
    ended_after = time.monotonic() - cut_at
    try:
        hold.wait(timeout=5)
    except subprocess.TimeoutExpired:
        hold.kill()
    assert "error" in last, last
    assert ended_after < 2.5
    assert lab.agent("p1", "connect", UPSTREAM, str(TCP_PORT))["result"] == "refused"
    assert http(lab, "p1")["body"] == "PORTAL"


def test_another_host_with_an_authorized_ip_but_its_own_mac_gets_nothing(router: Router) -> None:
    lab = router.lab
    authorize(router, PHONE1)
    assert PHONE1.ip is not None
    heard = upstream_heard(lab, PHONE1.ip)
    lab.exec("rogue", "ip", "addr", "add", f"{PHONE1.ip}/16", "dev", "eth0", "nodad")
    lab.exec("rogue", "ip", "route", "add", "default", "via", ROUTER_LAN)
    try:
        assert lab.agent("rogue", "connect", UPSTREAM, str(TCP_PORT))["result"] == "refused"
        answer = http(lab, "rogue")
        assert answer.get("body") != "UPSTREAM"
        assert not lab.agent("rogue", "dns", UPSTREAM, "53", timeout=1)["answer"]
        assert upstream_heard(lab, PHONE1.ip) == heard  # not one request reached the upstream
    finally:
        lab.exec("rogue", "ip", "addr", "flush", "dev", "eth0")
        lab.exec("r", "ip", "neigh", "flush", "dev", "lan0")
    assert ROGUE.mac != PHONE1.mac


def test_trusted_mac_passes_without_login(router: Router) -> None:
    lab = router.lab
    authorize(router, trusted=frozenset({PHONE2.mac}))
    assert http(lab, "p2")["body"] == "UPSTREAM"
    got = lab.agent("p2", "recv", UPSTREAM, str(TCP_PORT), "200000")
    assert got["received"] == 200_000  # downloads pass too (conntrack marks the connection)
    assert http(lab, "p1")["body"] == "PORTAL"
    authorize(router)  # untrusted again
    assert lab.agent("p2", "connect", UPSTREAM, str(TCP_PORT))["result"] == "refused"


def test_blocked_mac_gets_nothing_not_even_the_portal(router: Router) -> None:
    lab = router.lab
    assert http(lab, "p2")["body"] == "PORTAL"  # reachable before the block
    # Blocked wins even over an authorization.
    authorize(router, PHONE2, blocked=frozenset({PHONE2.mac}))
    assert not http(lab, "p2", timeout=1)["ok"]
    assert not http(lab, "p2", f"{ROUTER_LAN}:{PORTAL_PORT}", timeout=1)["ok"]
    assert not lab.agent("p2", "dns", ROUTER_LAN, "53", timeout=1)["answer"]
    assert lab.agent("p2", "connect", UPSTREAM, str(TCP_PORT), timeout=1)["result"] == "timeout"
    assert http(lab, "p1")["body"] == "PORTAL"  # the neighbour is not affected


def test_walled_garden_and_the_set_dnsmasq_fills(router: Router) -> None:
    lab = router.lab
    authorize(router, garden=frozenset({IPv4Address(GARDEN_HOST)}))
    assert http(lab, "p1", GARDEN_HOST)["body"] == "UPSTREAM"
    assert http(lab, "p1", UPSTREAM)["body"] == "PORTAL"
    # dnsmasq's `nftset=/market.example/4#inet#hotspot#garden_dns` adds resolved addresses so:
    lab.exec("r", "nft", "add", "element", "inet", "hotspot", "garden_dns", "{", UPSTREAM, "}")
    assert http(lab, "p1", UPSTREAM)["body"] == "UPSTREAM"


def test_walled_garden_opens_only_web_ports(router: Router) -> None:
    """Before login a garden address answers on tcp 80 and 443, not on another port nor UDP."""
    lab = router.lab
    https = lab.serve("up", "serve-tcp", "443", str(lab.log("up-443")))
    try:
        authorize(router, garden=frozenset({IPv4Address(GARDEN_HOST)}))
        lab.exec("r", "nft", "add", "element", "inet", "hotspot", "garden_dns", "{", UPSTREAM, "}")
        heard = upstream_heard(lab, "10.66.1.2")
        for host in (GARDEN_HOST, UPSTREAM):  # the static garden, and the set dnsmasq fills
            assert http(lab, "p1", host)["body"] == "UPSTREAM"
            assert lab.agent("p1", "connect", host, "443")["result"] == "connected"
            other = lab.agent("p1", "connect", host, str(TCP_PORT), timeout=3)
            assert other["result"] == "refused" and other["elapsed"] < 1.0, other
            assert not lab.agent("p1", "dns", host, "53", timeout=1)["answer"]
        assert upstream_heard(lab, "10.66.1.2") == heard + 2  # the two page loads, nothing else
        # Logged in, the same addresses are the internet like any other.
        authorize(router, PHONE1, garden=frozenset({IPv4Address(GARDEN_HOST)}))
        assert lab.agent("p1", "connect", GARDEN_HOST, str(TCP_PORT))["result"] == "connected"
    finally:
        https.kill()
        https.wait(timeout=5)
    with pytest.raises(ValueError, match="garden_ports"):
        NftFirewall(lan_interface="lan0", portal_ip=ROUTER_LAN, garden_ports=[])


def test_addresses_dnsmasq_adds_expire_once_nobody_uses_them(router: Router) -> None:
    """garden_dns has a default timeout (dnsmasq adds bare elements); use renews it."""
    lab = router.lab
    short = NftFirewall(
        lan_interface="lan0", portal_ip=ROUTER_LAN, portal_port=PORTAL_PORT, garden_dns_timeout=2
    )
    try:
        short.setup()
        lab.exec("r", "nft", "add", "element", "inet", "hotspot", "garden_dns", "{", UPSTREAM, "}")

        def listed() -> bool:
            listing = lab.exec("r", "nft", "list", "set", "inet", "hotspot", "garden_dns").stdout
            return UPSTREAM in listing

        assert listed()
        started = time.monotonic()
        while time.monotonic() - started < 3.5:  # longer than the timeout, in use all along
            assert http(lab, "p1", UPSTREAM)["body"] == "UPSTREAM"
            time.sleep(0.3)
        assert listed()
        idle = time.monotonic()
        for _ in range(60):  # idle: gone after 2 s; wait at most 6
            if not listed() or time.monotonic() - idle > 6:
                break
            time.sleep(0.1)
        assert not listed()
        assert time.monotonic() - idle > 1.5  # not before its time
        assert http(lab, "p1", UPSTREAM)["body"] == "PORTAL"
    finally:
        short.close()
    with pytest.raises(ValueError, match="garden_dns_timeout"):
        NftFirewall(lan_interface="lan0", portal_ip=ROUTER_LAN, garden_dns_timeout=0)


def test_counters_match_the_bytes_sent_within_two_percent(router: Router) -> None:
    lab = router.lab
    authorize(router, PHONE1)
    router.shaper.apply(ShaperChange(remove=frozenset({key_of(PHONE1).ip})))  # quick transfer
    start = router.firewall.counters()[key_of(PHONE1)]
    tx0, txp0, rx0, rxp0 = lab.link_bytes("p1")
    sent = lab.agent("p1", "send", UPSTREAM, str(TCP_PORT), "3000000", timeout=30)
    assert sent["server_count"] == 3_000_000
    got = lab.agent("p1", "recv", UPSTREAM, str(TCP_PORT), "4000000", timeout=30)
    assert got["received"] == 4_000_000
    tx1, txp1, rx1, rxp1 = lab.link_bytes("p1")
    end = router.firewall.counters()[key_of(PHONE1)]
    # IP bytes on the phone's own interface: link bytes less the 14-byte Ethernet headers.
    ip_up = (tx1 - tx0) - 14 * (txp1 - txp0)
    ip_down = (rx1 - rx0) - 14 * (rxp1 - rxp0)
    up, down = end.bytes_up - start.bytes_up, end.bytes_down - start.bytes_down
    assert abs(up - ip_up) <= 0.02 * ip_up, (up, ip_up)
    assert abs(down - ip_down) <= 0.02 * ip_down, (down, ip_down)
    assert up > 3_000_000 and down > 4_000_000
    # The netlink dump and nft's own listing (the fallback) agree.
    assert router.firewall.counters() == router.firewall._counters_from_listing()


def test_setup_touches_no_other_table_and_keeps_elements(router: Router) -> None:
    lab = router.lab
    other = "table inet other {\n\tchain c {\n\t\ttype filter hook forward priority 10;\n\t}\n}"
    subprocess.run(
        ["ip", "netns", "exec", lab.ns("r"), "nft", "-f", "-"],
        input=other + "\nadd rule inet other c counter accept\n",
        text=True,
        check=True,
        timeout=10,
    )
    try:
        before = lab.exec("r", "nft", "list", "table", "inet", "other").stdout
        authorize(router, PHONE1)
        router.firewall.setup()  # a restart: same table, elements kept
        assert key_of(PHONE1) in router.firewall.state().authorized
        router.firewall.teardown()
        router.firewall.setup()
        assert lab.exec("r", "nft", "list", "table", "inet", "other").stdout == before
        assert router.firewall.state().authorized == frozenset()
    finally:
        lab.exec("r", "nft", "delete", "table", "inet", "other")


EARLIER_TABLE = """
add table inet hotspot
add set inet hotspot auth { type ipv4_addr . ether_addr; }
add set inet hotspot auth_up { type ipv4_addr . ether_addr; counter; }
add set inet hotspot auth_down { type ipv4_addr; counter; }
add set inet hotspot garden_dns { type ipv4_addr; }
add set inet hotspot dns_rate { type ipv4_addr; size 65536; flags dynamic; timeout 1m; }
add chain inet hotspot input { type filter hook input priority filter; policy accept; }
add chain inet hotspot lan_local
add rule inet hotspot input iifname "lan0" jump lan_local
add rule inet hotspot lan_local udp dport 53 update @dns_rate { ip saddr limit rate over 20/second burst 100 packets } drop
add rule inet hotspot lan_local ip daddr @garden_dns accept
"""  # noqa: E501  (the shapes hotspotd made before garden_dns expired and the DNS meter went per MAC)


def test_setup_replaces_sets_an_earlier_version_made_in_another_shape(router: Router) -> None:
    """A router upgraded in place: nft cannot change a set's type or flags ("File exists"),
    so setup() removes the old sets in the same transaction, keeping what must be kept."""
    lab = router.lab
    router.firewall.teardown()
    subprocess.run(
        ["ip", "netns", "exec", lab.ns("r"), "nft", "-f", "-"],
        input=EARLIER_TABLE
        + f"add element inet hotspot auth {{ {PHONE1.ip} . {PHONE1.mac} }}\n"
        + f"add element inet hotspot auth_up {{ {PHONE1.ip} . {PHONE1.mac} }}\n"
        + f"add element inet hotspot auth_down {{ {PHONE1.ip} }}\n"
        + f"add element inet hotspot garden_dns {{ {GARDEN_HOST} }}\n",
        text=True,
        check=True,
        timeout=10,
    )
    router.firewall.setup()
    listing = lab.exec("r", "nft", "list", "table", "inet", "hotspot").stdout
    assert "dns_rate" not in listing and "set dns_meter" in listing
    garden = lab.exec("r", "nft", "list", "set", "inet", "hotspot", "garden_dns").stdout
    assert "timeout 1h" in garden and f"{GARDEN_HOST} expires" in garden, garden  # kept
    assert key_of(PHONE1) in router.firewall.state().authorized
    assert http(lab, "p1")["body"] == "UPSTREAM"
    router.firewall.setup()  # and once more, now from the current shape


def test_nft_program_backend_behaves_the_same(router: Router) -> None:
    lab = router.lab
    cli = NftFirewall(
        lan_interface="lan0",
        portal_ip=ROUTER_LAN,
        portal_port=PORTAL_PORT,
        runner_factory=NftCommand,
    )
    cli.apply(FirewallChange(authorize=frozenset({key_of(PHONE1)})))
    assert http(lab, "p1")["body"] == "UPSTREAM"
    assert key_of(PHONE1) in cli.counters()
    cli.apply(FirewallChange(deauthorize=frozenset({key_of(PHONE1)})))
    # Deleting what is not there is retried against the kernel's state, not an error...
    cli.apply(FirewallChange(deauthorize=frozenset({key_of(PHONE1)})))
    # ...but nft's own failures surface as AdapterError with nft's message.
    with pytest.raises(AdapterError, match="nft failed"):
        NftFirewall(
            lan_interface="lan0", portal_ip=ROUTER_LAN, table="nosuch", runner_factory=NftCommand
        ).counters()


def test_unauthorized_dns_can_be_sent_to_a_restricted_resolver(router: Router) -> None:
    """DESIGN: before login, port 53 goes to the router's restricted resolver, wherever aimed."""
    lab = router.lab
    lab.serve("r", "serve-dns", "5353", str(lab.log("restricted-dns")))
    restricted = NftFirewall(
        lan_interface="lan0", portal_ip=ROUTER_LAN, portal_port=PORTAL_PORT, dns_redirect_port=5353
    )
    try:
        restricted.setup()
        heard = upstream_heard(lab, "10.66.1.2")
        assert lab.agent("p1", "dns", UPSTREAM, "53", timeout=1.5)["answer"]
        assert upstream_heard(lab, "10.66.1.2") == heard
        assert "10.66.1.2" in lab.log_lines("restricted-dns")
        # After login the phone's DNS goes where it is sent.
        restricted.apply(FirewallChange(authorize=frozenset({key_of(PHONE1)})))
        assert lab.agent("p1", "dns", UPSTREAM, "53", timeout=1.5)["answer"]
        assert upstream_heard(lab, "10.66.1.2") == heard + 1
    finally:
        restricted.close()


DNS_BURST = """
import socket, sys, time
target, per_source, sources = sys.argv[1], int(sys.argv[2]), sys.argv[3:] or [None]
family, _, _, _, address = socket.getaddrinfo(target, 53, type=socket.SOCK_DGRAM)[0]
socks = []
for source in sources:
    s = socket.socket(family, socket.SOCK_DGRAM)
    if source:
        s.bind(socket.getaddrinfo(source, 0, type=socket.SOCK_DGRAM)[0][4])
    s.setblocking(False)
    socks.append(s)
answers = 0

def drain(seconds):
    global answers
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for s in socks:
            for _ in range(1000):
                try:
                    s.recvfrom(2048)
                    answers += 1
                except BlockingIOError:
                    break
        time.sleep(0.002)

sent = 0
for i in range(per_source):  # 300 a source in about half a second, reading answers as they come
    for s in socks:
        try:
            s.sendto(b"q%d" % sent, address)
        except OSError:
            pass  # refused: an icmp error came back for an earlier query
        sent += 1
    if i % 10 == 9:
        drain(0.015)
drain(1.5)
print(answers)
"""


def dns_burst(
    lab: Lab, role: str, target: str = ROUTER_LAN, *sources: str, count: int = 300
) -> int:
    """Answers to `count` queries from each source address (default: the phone's own)."""
    proc = lab.exec(role, sys.executable, "-c", DNS_BURST, target, str(count), *sources, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout)


def test_dns_before_login_is_slowed_so_no_tunnel_gets_through(router: Router) -> None:
    """300 queries in half a second: a phone not logged in gets its burst (100) and 20/s."""
    lab = router.lab
    slowed = dns_burst(lab, "p1")
    assert 90 <= slowed <= 140, slowed
    authorize(router, PHONE1)
    assert dns_burst(lab, "p1") >= 295  # logged in: the router's resolver as fast as it answers
    authorize(router, trusted=frozenset({PHONE2.mac}))
    assert dns_burst(lab, "p2") >= 295


def router_link_local(lab: Lab) -> str:
    listing = json.loads(lab.exec("r", "ip", "-6", "-j", "addr", "show", "dev", "lan0").stdout)
    for info in listing[0]["addr_info"]:
        if info["local"].startswith("fe80:"):
            return f"{info['local']}%eth0"
    raise AssertionError(f"lan0 has no link-local address: {listing}")


def test_dns_limit_is_per_device_over_ipv6_and_address_aliases_too(router: Router) -> None:
    """A phone not logged in gets its one limit however many addresses it gives itself, and
    no DNS at all over IPv6 (the router cannot tell who is logged in there); none reaches the
    upstream."""
    lab = router.lab
    assert PHONE1.ip6 is not None
    link_local = router_link_local(lab)
    aliases = [f"10.66.1.{n}" for n in range(20, 24)]
    # Without our table the router answers IPv6 DNS: the test can tell.
    router.firewall.teardown()
    assert lab.agent("p1", "dns", link_local, "53", timeout=1.5)["answer"]
    assert lab.agent("p1", "dns", "fd66::1", "53", timeout=1.5)["answer"]
    router.firewall.setup()
    heard = upstream_heard(lab, PHONE1.ip6) + sum(upstream_heard(lab, a) for a in aliases)
    assert dns_burst(lab, "p1", link_local) == 0
    assert dns_burst(lab, "p1", "fd66::1") == 0
    assert not lab.agent("p1", "dns", UPSTREAM6, "53", timeout=1)["answer"]
    for alias in aliases:
        lab.exec("p1", "ip", "addr", "add", f"{alias}/16", "dev", "eth0", "nodad")
    try:
        # Five addresses, one MAC: 150 queries from each in about half a second get one
        # device's burst (100) and its 20/s, not five times that.
        together = dns_burst(lab, "p1", ROUTER_LAN, PHONE1.ip or "", *aliases, count=150)
        assert 90 <= together <= 150, together
        assert not lab.agent("p1", "dns", UPSTREAM, "53", timeout=1)["answer"]
        now = upstream_heard(lab, PHONE1.ip6) + sum(upstream_heard(lab, a) for a in aliases)
        assert now == heard
    finally:
        for alias in aliases:
            lab.exec("p1", "ip", "addr", "del", f"{alias}/16", "dev", "eth0")
        lab.exec("r", "ip", "neigh", "flush", "dev", "lan0")


def test_dns_limit_for_all_devices_not_logged_in_together(router: Router) -> None:
    """Devices (or one device cycling made-up MACs) share one overall cap before login."""
    lab = router.lab
    capped = NftFirewall(
        lan_interface="lan0", portal_ip=ROUTER_LAN, portal_port=PORTAL_PORT,
        dns_rate_all=RateLimit(20, 60),
    )  # fmt: skip
    try:
        capped.setup()
        command = [sys.executable, "-c", DNS_BURST, ROUTER_LAN, "300"]
        procs = [
            subprocess.Popen(
                ["ip", "netns", "exec", lab.ns(role), *command], stdout=subprocess.PIPE, text=True
            )
            for role in ("p1", "p2")
        ]
        answers = []
        for proc in procs:
            out, _ = proc.communicate(timeout=30)
            answers.append(int(out))
        # Each alone would get its own ~110 (burst 100, 20/s); together they get the cap's
        # burst (60) and 20/s over the second or so the bursts take.
        assert sum(answers) <= 100, answers
        assert min(answers) > 0, answers  # shared, not one starved by the other
    finally:
        capped.close()
    with pytest.raises(ValueError, match="rate limit"):
        RateLimit(0, 10)


def test_a_full_dns_meter_fails_closed(router: Router) -> None:
    """Were the per-device meter full (a flood of made-up MACs), a device it cannot remember
    gets no DNS before login, not unlimited DNS; logged-in devices are not metered."""
    lab = router.lab
    small = NftFirewall(
        lan_interface="lan0", portal_ip=ROUTER_LAN, portal_port=PORTAL_PORT, dns_meter_size=4
    )
    try:
        small.setup()
        made_up = ", ".join(f"02:ee:00:00:00:0{n}" for n in range(4))
        lab.exec("r", "nft", f"add element inet hotspot dns_meter {{ {made_up} }}")
        listing = lab.exec("r", "nft", "list", "set", "inet", "hotspot", "dns_meter").stdout
        assert listing.count("02:ee:") == 4, listing  # full
        assert dns_burst(lab, "p1", count=50) == 0
        small.apply(FirewallChange(authorize=frozenset({key_of(PHONE2)})))
        assert dns_burst(lab, "p2", count=50) == 50
    finally:
        small.close()


@pytest.fixture
def router_ssh(router: Router) -> Iterator[None]:
    """A TCP service on the router, port 2222 on all its addresses: stands in for sshd."""
    server = router.lab.serve("r", "serve-tcp", "2222", str(router.lab.log("router-ssh")))
    try:
        yield
    finally:
        server.kill()
        server.wait(timeout=5)


OPERATOR_ROUTER, OPERATOR_LAPTOP = "10.67.0.1", "10.67.0.2"


@pytest.fixture
def operator_network(router: Router) -> Iterator[str]:
    """The operator's own network (hostapd's second SSID): `op0` on the router, one laptop in
    a namespace of its own, made and removed here. Yields the laptop's role."""
    lab = router.lab
    name = lab.ns("op")
    run("ip", "netns", "add", name)
    try:
        run("ip", "-n", name, "link", "set", "lo", "up")
        run("ip", "-n", lab.ns("r"), "link", "add", "op0", "type", "veth", "peer", "name",
            "eth0", "netns", name)  # fmt: skip
        run("ip", "-n", lab.ns("r"), "addr", "add", f"{OPERATOR_ROUTER}/24", "dev", "op0")
        run("ip", "-n", lab.ns("r"), "link", "set", "op0", "up")
        run("ip", "-n", name, "addr", "add", f"{OPERATOR_LAPTOP}/24", "dev", "eth0")
        run("ip", "-n", name, "link", "set", "eth0", "up")
        run("ip", "-n", name, "route", "add", "default", "via", OPERATOR_ROUTER)
        yield "op"
    finally:
        delete_namespace(name)  # takes op0 with it


def test_phones_reach_only_the_routers_lan_services(router: Router, router_ssh: None) -> None:
    """DHCP, DNS and the portal answer every phone; SSH and the rest none, trusted or not."""
    lab = router.lab

    def to_router(role: str, port: int, address: str = ROUTER_LAN) -> object:
        return lab.agent(role, "connect", address, str(port), timeout=3)["result"]

    assert to_router("p1", PORTAL_PORT) == "connected"
    assert lab.agent("p1", "dns", ROUTER_LAN, "53", timeout=1.5)["answer"]
    assert to_router("p1", 2222) == "refused"  # not logged in
    authorize(router, PHONE1, trusted=frozenset({PHONE2.mac}))
    assert to_router("p1", 2222) == "refused"  # logged in: still a resident, not the operator
    # A trusted MAC passes the portal, but opens no router service: MACs can be cloned. Nor
    # does any other of the router's addresses answer from the LAN.
    assert http(lab, "p2")["body"] == "UPSTREAM"
    assert to_router("p2", 2222) == "refused"
    assert to_router("p2", 2222, ROUTER_WAN) == "refused"
    assert to_router("p1", PORTAL_PORT) == "connected"
    assert lab.agent("p1", "rtt", ROUTER_LAN, "2")["lost"] == 0  # ICMP echo answers
    with_https = NftFirewall(
        lan_interface="lan0", portal_ip=ROUTER_LAN, portal_port=PORTAL_PORT,
        local_tcp_ports=[2222],
    )  # fmt: skip
    try:
        with_https.setup()
        assert to_router("p1", 2222) == "connected"  # e.g. the portal's HTTPS port
    finally:
        with_https.close()
    with pytest.raises(ValueError, match="local_tcp_ports"):
        NftFirewall(lan_interface="lan0", portal_ip=ROUTER_LAN, local_tcp_ports=[70000])


def test_router_admin_services_answer_only_the_operators_interface_or_networks(
    router: Router, router_ssh: None, operator_network: str
) -> None:
    lab = router.lab
    laptop = operator_network

    def ssh(role: str, address: str) -> object:
        answer = lab.agent(role, "connect", address, "2222", timeout=3)
        assert answer["result"] != "refused" or answer["elapsed"] < 1.0, answer  # refused fast
        return answer["result"]

    def firewall(**operator: object) -> NftFirewall:
        fw = NftFirewall(
            lan_interface="lan0", portal_ip=ROUTER_LAN, portal_port=PORTAL_PORT,
            **operator,  # type: ignore[arg-type]
        )  # fmt: skip
        fw.setup()
        return fw

    authorize(router, PHONE1, trusted=frozenset({PHONE2.mac}))
    # Nothing named: the LAN is refused, whatever the MAC; other interfaces are left alone.
    assert ssh("p2", ROUTER_LAN) == "refused"
    assert ssh(laptop, OPERATOR_ROUTER) == "connected"
    assert ssh("up", ROUTER_WAN) == "connected"
    by_interface = firewall(operator_interface="op0")
    try:
        assert ssh(laptop, OPERATOR_ROUTER) == "connected"
        assert ssh(laptop, ROUTER_LAN) == "connected"  # any of the router's addresses
        assert ssh("p2", OPERATOR_ROUTER) == "refused"  # the operator's address, from the LAN
        assert ssh("up", ROUTER_WAN) == "refused"  # the uplink is not the operator's
        assert lab.agent("up", "rtt", ROUTER_WAN, "2")["lost"] == 0  # ICMP still answers
        # The router's own connections out through the uplink still get their replies.
        assert lab.agent("r", "connect", UPSTREAM, str(TCP_PORT))["result"] == "connected"
        assert http(lab, "p1")["body"] == "UPSTREAM"
    finally:
        by_interface.close()
    by_network = firewall(operator_networks=[f"{UPSTREAM}/32"])  # e.g. the office upstream
    try:
        assert ssh("up", ROUTER_WAN) == "connected"
        assert ssh(laptop, OPERATOR_ROUTER) == "refused"  # op0 is not named now
        assert ssh("p2", ROUTER_LAN) == "refused"
    finally:
        by_network.close()
    # Phones are never forwarded into the operator's network, even were it allowed.
    laptop_service = lab.serve(laptop, "serve-tcp", "9200", str(lab.log("op-tcp")))
    into = firewall(operator_interface="op0", local_destinations=["10.67.0.0/24"])
    try:
        answer = lab.agent("p1", "connect", OPERATOR_LAPTOP, "9200", timeout=3)
        assert answer["result"] == "refused", answer
        assert lab.agent(laptop, "connect", OPERATOR_ROUTER, "2222")["result"] == "connected"
    finally:
        into.close()
        laptop_service.kill()
        laptop_service.wait(timeout=5)
    with pytest.raises(ValueError, match="operator interface"):
        NftFirewall(lan_interface="lan0", portal_ip=ROUTER_LAN, operator_interface="lan0")


def test_masquerade_behind_the_uplink_keeps_counting_each_phone(router: Router) -> None:
    """A real uplink (an ISP's modem) has no route back to lan_prefix: the router NATs."""
    lab = router.lab
    natted = NftFirewall(
        lan_interface="lan0", portal_ip=ROUTER_LAN, portal_port=PORTAL_PORT,
        masquerade_interface="wan0",
    )  # fmt: skip
    try:
        natted.setup()
        natted.apply(FirewallChange(authorize=frozenset({key_of(PHONE1)})))
        heard_phone, heard_router = upstream_heard(lab, PHONE1.ip), upstream_heard(lab, ROUTER_WAN)
        answer = http(lab, "p1")
        assert answer["ok"] and answer["body"] == "UPSTREAM"
        assert upstream_heard(lab, ROUTER_WAN) == heard_router + 1
        assert upstream_heard(lab, PHONE1.ip) == heard_phone
        counters = natted.counters()
        assert counters[key_of(PHONE1)].bytes_up > 0 and counters[key_of(PHONE1)].bytes_down > 0
        # unauthorized phones still land on the portal; nothing of theirs is NATed out
        assert http(lab, "p2")["body"] == "PORTAL"
        natted.setup()  # again: the rule is not doubled
        rules = lab.exec("r", "nft", "list", "chain", "inet", "hotspot", "postrouting_nat").stdout
        assert rules.count("masquerade") == 1
    finally:
        natted.close()
    router.firewall.setup()  # without masquerade: the same chain, now empty
    rules = lab.exec("r", "nft", "list", "chain", "inet", "hotspot", "postrouting_nat").stdout
    assert "masquerade" not in rules
    with pytest.raises(ValueError, match="uplink"):
        NftFirewall(lan_interface="lan0", portal_ip=ROUTER_LAN, masquerade_interface="lan0")


def test_ruleset_loaded_at_boot_closes_the_door_before_the_daemon(router: Router) -> None:
    lab = router.lab
    router.firewall.teardown()
    authorize_nothing = router.firewall.ruleset()
    subprocess.run(
        ["ip", "netns", "exec", lab.ns("r"), "nft", "-f", "-"],
        input=authorize_nothing,
        text=True,
        check=True,
        timeout=10,
    )
    assert http(lab, "p1")["body"] == "PORTAL"
    router.firewall.setup()  # the daemon starts: same table, nothing lost, nothing doubled
    authorize(router, PHONE1)
    assert http(lab, "p1")["body"] == "UPSTREAM"
    listing = lab.exec("r", "nft", "list", "chain", "inet", "hotspot", "lan_out").stdout
    assert listing.count("@auth_up") == 1


def test_a_dump_torn_by_a_hash_resize_is_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seen once under load: a multi-message dump, resumed by skipping, after the kernel grew
    the hash table in the background, gave some elements twice and others never."""
    import hotspotd.net.nft_counters as nft_counters

    whole = [(bytes([n]), n) for n in range(100)]
    torn = whole[:43] + whole[20:77]  # as many elements, 23 of them twice, 23 never
    answers = [(torn, False), (whole, True), (whole, False)]
    monkeypatch.setattr(nft_counters, "_dump_once", lambda table, name: answers.pop(0))
    assert nft_counters.dump_set_counters("hotspot", "auth_up") == whole
    assert answers == []  # the torn and the interrupted dumps were both retried
    monkeypatch.setattr(nft_counters, "_dump_once", lambda table, name: (torn, False))
    with pytest.raises(AdapterError, match="inconsistent"):
        nft_counters.dump_set_counters("hotspot", "auth_up")
