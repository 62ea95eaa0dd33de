"""Where everything in the lab is: the clone's paths, the namespaces, interfaces, addresses and
names, and the host commands a build needs. Plain constants, shared by every other module."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STATE = REPO / "var" / "lab"

ROUTER = "hs-router"
UPSTREAM = "hs-net"
PHONES = ("hs-phone1", "hs-phone2", "hs-phone3")
NAMESPACES = (ROUTER, UPSTREAM, *PHONES)

LAN_IF = "br-lan"
WAN_IF = "wan0"
LAN_ADDR = "10.66.0.1"
LAN_PREFIX = "10.66.0.0/16"
DHCP_RANGE = ("10.66.0.10", "10.66.0.250")
WAN_ROUTER = "198.18.0.1"
NET_DNS = "198.18.0.2"
NET_WEB = "198.18.0.10"
NET_GARDEN = "198.18.0.20"
PORTAL_PORT = 8080
PORTAL_HOST = "portal.lan"
TEST_HOST = "berita.example"
GARDEN_HOST = "sukamaju.desa.example"
# The OS captive probes' hosts: hs-net answers them as the real servers do, so a phone's
# login sheet closes by itself once it is online.
PROBE_HOSTS = (
    "connectivitycheck.gstatic.com",
    "clients3.google.com",
    "www.google.com",
    "captive.apple.com",
    "www.msftconnecttest.com",
    "detectportal.firefox.com",
)
PHONE_MAC = "02:66:00:00:00:{:02x}"

REQUIRED_TOOLS = ("ip", "nft", "tc", "dnsmasq", "dhclient", "setpriv", "openssl")
