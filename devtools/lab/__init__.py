"""The demo lab: a whole village hotspot in network namespaces, built by `scripts/demo`.

    hs-phone1 ┐                                   ┌ hs-net: 198.18.0.2  DNS (dnsmasq)
    hs-phone2 ├─ br-lan [hs-router] wan0 ─ eth0 ──┤         198.18.0.10 web: berita.example
    hs-phone3 ┘  10.66.0.1/16    198.18.0.1       └         198.18.0.20 web: sukamaju.desa.example

The router runs the real programs as in production: hotspotd (nftables table, tc classes,
control socket), dnsmasq (DHCP with option 114, DNS forwarded only to hs-net's resolver, the
walled garden by name with `nftset=`), hotspot-portal (waitress, as user `hotspot`) and
hotspot-operator (the operator's UI over HTTPS on port 8444, as user `hotspot-operator`, with a
self-signed certificate for portal.lan and a first admin whose random password lab.json keeps,
0600). The phones get their addresses by DHCP (dhclient with our own hook, which never touches
the host's resolv.conf or hostname). hs-net is the lab's "internet": a resolver that knows a
few names and a web server; nothing in the lab reaches any other address. Its 198.18.0.0/24 (the
benchmarking range) is outside the private ranges the firewall never forwards phones to, so the
lab needs no network.local_destinations.

Everything the lab writes lives in `var/lab/` of the clone, plus `/etc/netns/hs-phoneN/`
(the phones' resolv.conf). `down()` stops every process inside our namespaces (found by
namespace, so it also works after a crash), deletes the namespaces and those files.

Run from the clone's root as `python -m devtools.lab up|down|json` (devtools is not installed).
Stdlib only at import time, so `python3 -m devtools.lab down` works without the venv.
Used by scripts/demo and tests/e2e, which import what they need from here.

    layout     names, addresses and paths         shell      commands, waiting for servers
    topology   namespaces and veths; down()       upstream   hs-net's web server
    phones     DHCP clients and their hook        seed       demo plans, vouchers, content
    operator   the operator UI's user, certificate and first admin
    build      the Lab: builds and describes      __main__   the command line
"""

from __future__ import annotations

from devtools.lab import operator
from devtools.lab.build import Lab, load_running
from devtools.lab.layout import (
    GARDEN_HOST,
    LAN_ADDR,
    NET_DNS,
    NET_GARDEN,
    NET_WEB,
    PHONES,
    PORTAL_HOST,
    REQUIRED_TOOLS,
    ROUTER,
    STATE,
    TEST_HOST,
    UPSTREAM,
)
from devtools.lab.shell import LabError, in_ns, run
from devtools.lab.topology import down

__all__ = [
    "GARDEN_HOST",
    "LAN_ADDR",
    "NET_DNS",
    "NET_GARDEN",
    "NET_WEB",
    "PHONES",
    "PORTAL_HOST",
    "REQUIRED_TOOLS",
    "ROUTER",
    "STATE",
    "TEST_HOST",
    "UPSTREAM",
    "Lab",
    "LabError",
    "down",
    "in_ns",
    "load_running",
    "operator",
    "run",
]
