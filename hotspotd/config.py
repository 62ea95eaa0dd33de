"""The configuration: one TOML file, read once into a frozen, typed object.

Read from `$HOTSPOT_CONFIG`, else `/etc/hotspot/hotspot.toml`. An unknown key, a wrong type or
a bad value stops the program at start with the file, the key and the reason (`ConfigError`).
Nothing here runs at import time.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hotspotd.config_values import Table, interface, macs, networks, ports
from hotspotd.core import units
from hotspotd.errors import ConfigError
from hotspotd.net.addresses import PRIVATE_DESTINATIONS

DEFAULT_PATH = Path("/etc/hotspot/hotspot.toml")
DEFAULT_DATABASE_URL = "sqlite:////var/lib/hotspot/hotspot.db"
PORTAL_USER = "hotspot"  # the residents' portal runs as this user (systemd, the demo lab)


@dataclass(frozen=True)
class VillageConfig:
    name: str = "Desa"
    operator: str = "BUMDes"
    message: str = ""
    timezone: str = "Asia/Jakarta"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class NetworkConfig:
    lan_interface: str = "wlan0"
    wan_interface: str | None = None  # None: taken from the default route at start
    lan_prefix: ipaddress.IPv4Network = ipaddress.IPv4Network("10.66.0.0/16")
    uplink_down_bps: int = 20_000_000
    uplink_up_bps: int = 5_000_000
    # hotspotd turns IPv4 forwarding on only once its table is built, and off with --flush,
    # so a router that boots with forwarding off is never an open door before the daemon runs.
    manage_forwarding: bool = True
    # The LAN's private addresses leave through wan_interface as the router's (masquerade).
    # Off only where the upstream routes lan_prefix back to this router itself.
    masquerade: bool = True
    # What a device not logged in may open on a walled-garden address (tcp ports).
    garden_ports: tuple[int, ...] = (80, 443)
    # How long an address dnsmasq's nftset= put in the garden stays after its last use.
    garden_dns_timeout_s: int = 3600
    # Private destinations (PRIVATE_DESTINATIONS) phones may still be forwarded to: a village's
    # own server. Everything else private is refused, as is the LAN itself (phone to phone).
    local_destinations: tuple[ipaddress.IPv4Network, ...] = ()
    # Where the router's admin services (SSH, a web UI) answer: the operator's own interface
    # (hostapd's second SSID) and networks (e.g. an office behind the uplink). Never the LAN,
    # trusted MAC or not. With neither named, interfaces other than the LAN are left alone.
    operator_interface: str | None = None
    operator_networks: tuple[ipaddress.IPv4Network, ...] = ()


@dataclass(frozen=True)
class PortalConfig:
    address: ipaddress.IPv4Address = ipaddress.IPv4Address("10.66.0.1")
    port: int = 8080
    hostname: str = "portal.lan"
    # HTTPS with the operator's certificate (RFC 8908 wants the API over TLS); both or neither.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    https_port: int = 8443
    # Signs the portal's cookies (CSRF token, language). None: a new random key at each start.
    secret_key_file: Path | None = None
    threads: int = 6  # threads per worker: CPU-bound under the GIL, more only add contention
    # Worker processes sharing the listening sockets: one Python process uses one core.
    workers: int = 2
    # Shared by the workers (the URL each phone first asked for); tmpfs, gone at reboot.
    runtime_dir: Path = Path("/run/hotspot-portal")

    @property
    def https(self) -> bool:
        return self.tls_cert is not None


@dataclass(frozen=True)
class OperatorUiConfig:
    """The operator's web UI: HTTPS only, on portal.address, its own port and process."""

    port: int = 8444
    # Its certificate; none given: the portal's. Passwords never cross the Wi-Fi in clear, so
    # without a certificate the operator UI does not start.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    secret_key_file: Path | None = None  # signs its CSRF tokens; None: new at each start
    idle_s: int = 30 * 60  # a signed-in browser idle this long signs in again
    # Who reaches its port from lan_interface (the residents' Wi-Fi): every device (the BUMDes
    # manager's phone is on it; TLS and the password protect the UI), or only `allow_macs`.
    # from_lan = false: no device there; only network.operator_interface and operator_networks,
    # where every router service answers, the UI with them.
    from_lan: bool = True
    allow_macs: tuple[str, ...] = ()

    def certificate(self, portal: PortalConfig) -> tuple[Path, Path] | None:
        if self.tls_cert is not None and self.tls_key is not None:
            return self.tls_cert, self.tls_key
        if portal.tls_cert is not None and portal.tls_key is not None:
            return portal.tls_cert, portal.tls_key
        return None


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = DEFAULT_DATABASE_URL


@dataclass(frozen=True)
class FreeAllowanceConfig:
    enabled: bool = False
    time_s: int | None = 30 * 60
    data_bytes: int | None = 100 * 10**6
    down_bps: int | None = 1_000_000
    up_bps: int | None = 512_000


@dataclass(frozen=True)
class DaemonConfig:
    poll_interval_s: int = 10
    # A session whose phone shows no traffic this long is asked by ARP whether it is still
    # there; twice no answer ends it ("left"), so a MAC+IP clone cannot ride it. None: never.
    away_after_s: int | None = 120
    control_socket: Path = Path("/run/hotspotd/control.sock")
    state_dir: Path = Path("/var/lib/hotspot")
    # The Unix user the operator UI runs as: besides root, the only caller the daemon takes
    # operator operations from. Never the residents' portal's user. None: root only.
    operator_user: str | None = "hotspot-operator"

    @property
    def clock_file(self) -> Path:
        """Where the daemon publishes its clock for the portal and the CLI: beside its socket."""
        return self.control_socket.with_name("clock.json")

    @property
    def lock_file(self) -> Path:
        """Held by the running hotspotd, so a second one refuses to start."""
        return self.control_socket.with_name("hotspotd.lock")


@dataclass(frozen=True)
class Config:
    source: str = "<defaults>"
    village: VillageConfig = field(default_factory=VillageConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    operator: OperatorUiConfig = field(default_factory=OperatorUiConfig)
    portal: PortalConfig = field(default_factory=PortalConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    free: FreeAllowanceConfig = field(default_factory=FreeAllowanceConfig)
    daemon: DaemonConfig = field(default_factory=DaemonConfig)


def parse(data: Mapping[str, Any], source: str) -> Config:
    """Build a `Config` from TOML data; `source` names the file in error messages."""
    root = Table(source, "", data)

    t = root.table("village")
    d_v = VillageConfig()
    timezone = t.get("timezone", str, d_v.timezone)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise t.fail("timezone", f"unknown time zone {timezone!r} (e.g. Asia/Jakarta)") from None
    village = VillageConfig(
        name=t.get("name", str, d_v.name).strip() or d_v.name,
        operator=t.get("operator", str, d_v.operator).strip() or d_v.operator,
        message=t.get("message", str, d_v.message),
        timezone=timezone,
    )
    t.finish()

    t = root.table("network")
    d_n = NetworkConfig()
    prefix_text = t.get("lan_prefix", str, str(d_n.lan_prefix))
    try:
        lan_prefix = ipaddress.IPv4Network(prefix_text, strict=True)
    except ValueError as exc:
        raise t.fail("lan_prefix", f"not an IPv4 network: {exc}") from None
    lan = interface(t, "lan_interface", d_n.lan_interface)
    assert lan is not None
    network = NetworkConfig(
        lan_interface=lan,
        wan_interface=interface(t, "wan_interface", None),
        lan_prefix=lan_prefix,
        uplink_down_bps=t.parsed("uplink_down", units.parse_rate, d_n.uplink_down_bps, "a rate"),
        uplink_up_bps=t.parsed("uplink_up", units.parse_rate, d_n.uplink_up_bps, "a rate"),
        manage_forwarding=t.get("manage_forwarding", bool, d_n.manage_forwarding),
        masquerade=t.get("masquerade", bool, d_n.masquerade),
        garden_ports=ports(t, "garden_ports", d_n.garden_ports),
        garden_dns_timeout_s=t.parsed(
            "garden_dns_timeout", units.parse_duration, d_n.garden_dns_timeout_s, "a duration"
        ),
        local_destinations=networks(t, "local_destinations"),
        operator_interface=interface(t, "operator_interface", None),
        operator_networks=networks(t, "operator_networks"),
    )
    if network.operator_interface is not None and network.operator_interface in (
        network.lan_interface,
        network.wan_interface,
    ):
        raise t.fail(
            "operator_interface",
            "must differ from lan_interface and wan_interface (name the uplink's operators in "
            "operator_networks)",
        )
    for net in network.operator_networks:
        if net.overlaps(lan_prefix):
            raise t.fail(
                "operator_networks",
                f"{net} overlaps lan_prefix: any phone can take an address there",
            )
    for net in network.local_destinations:
        if net.overlaps(lan_prefix):
            raise t.fail(
                "local_destinations", f"{net} is inside lan_prefix: phones never reach each other"
            )
        if not any(net.subnet_of(private) for private in PRIVATE_DESTINATIONS):
            ranges = ", ".join(map(str, PRIVATE_DESTINATIONS))
            raise t.fail(
                "local_destinations",
                f"{net} is not within the private ranges ({ranges}): nothing to allow",
            )
    if not 60 <= network.garden_dns_timeout_s <= 86400:
        raise t.fail("garden_dns_timeout", "between 1m and 1d")
    if network.wan_interface == network.lan_interface:
        raise t.fail("wan_interface", "must differ from lan_interface")
    t.finish()

    t = root.table("portal")
    d_p = PortalConfig()
    address_text = t.get("address", str, str(d_p.address))
    try:
        address = ipaddress.IPv4Address(address_text)
    except ValueError:
        raise t.fail("address", f"not an IPv4 address: {address_text!r}") from None
    if address not in lan_prefix:
        raise t.fail("address", f"{address} is not inside network.lan_prefix {lan_prefix}")
    port = t.get("port", int, d_p.port)
    if not 1 <= port <= 65535:
        raise t.fail("port", f"must be between 1 and 65535, got {port}")
    hostname = t.get("hostname", str, d_p.hostname)
    if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?", hostname):
        raise t.fail("hostname", f"not a host name: {hostname!r}")
    tls_cert = t.get("tls_cert", str, "") or None
    tls_key = t.get("tls_key", str, "") or None
    if (tls_cert is None) != (tls_key is None):
        raise t.fail("tls_key" if tls_key is None else "tls_cert", "give tls_cert and tls_key")
    https_port = t.get("https_port", int, d_p.https_port)
    if not 1 <= https_port <= 65535:
        raise t.fail("https_port", f"must be between 1 and 65535, got {https_port}")
    if tls_cert is not None and https_port == port:
        raise t.fail("https_port", "must differ from port")
    secret = t.get("secret_key_file", str, "") or None
    threads = t.get("threads", int, d_p.threads)
    if not 1 <= threads <= 256:
        raise t.fail("threads", f"must be between 1 and 256, got {threads}")
    workers = t.get("workers", int, d_p.workers)
    if not 1 <= workers <= 64:
        raise t.fail("workers", f"must be between 1 and 64, got {workers}")
    runtime_dir = Path(t.get("runtime_dir", str, str(d_p.runtime_dir)))
    if not runtime_dir.is_absolute():
        raise t.fail("runtime_dir", f"must be an absolute path, got {str(runtime_dir)!r}")
    portal = PortalConfig(
        address=address,
        port=port,
        hostname=hostname,
        tls_cert=Path(tls_cert) if tls_cert else None,
        tls_key=Path(tls_key) if tls_key else None,
        https_port=https_port,
        secret_key_file=Path(secret) if secret else None,
        threads=threads,
        workers=workers,
        runtime_dir=runtime_dir,
    )
    t.finish()

    t = root.table("operator")
    d_o = OperatorUiConfig()
    op_port = t.get("port", int, d_o.port)
    if not 1 <= op_port <= 65535 or op_port in (port, https_port, 53):
        raise t.fail(
            "port", f"a port from 1 to 65535 of its own, not the portal's nor DNS: {op_port}"
        )
    op_cert, op_key = t.get("tls_cert", str, "") or None, t.get("tls_key", str, "") or None
    if (op_cert is None) != (op_key is None):
        raise t.fail("tls_key" if op_key is None else "tls_cert", "give tls_cert and tls_key")
    op_secret = t.get("secret_key_file", str, "") or None
    idle = t.parsed("idle_timeout", units.parse_duration, d_o.idle_s, "a duration")
    if not 60 <= idle <= 86400:
        raise t.fail("idle_timeout", "between 1m and 1d")
    from_lan = t.get("from_lan", bool, d_o.from_lan)
    allow_macs = macs(t, "allow_macs")
    if allow_macs and not from_lan:
        raise t.fail("allow_macs", "names devices on the LAN, but from_lan = false lets none in")
    if not from_lan and network.operator_interface is None and not network.operator_networks:
        raise t.fail(
            "from_lan",
            "false, but neither network.operator_interface nor network.operator_networks is "
            "named: the operator UI would answer nowhere",
        )
    operator = OperatorUiConfig(
        port=op_port,
        from_lan=from_lan,
        allow_macs=allow_macs,
        tls_cert=Path(op_cert) if op_cert else None,
        tls_key=Path(op_key) if op_key else None,
        secret_key_file=Path(op_secret) if op_secret else None,
        idle_s=idle,
    )
    t.finish()

    t = root.table("database")
    url = t.get("url", str, DEFAULT_DATABASE_URL)
    if not re.match(r"^(sqlite|postgresql)(\+\w+)?://", url):
        raise t.fail("url", "expected a sqlite:// or postgresql:// URL")
    database = DatabaseConfig(url=url)
    t.finish()

    t = root.table("free")
    d_f = FreeAllowanceConfig()
    free = FreeAllowanceConfig(
        enabled=t.get("enabled", bool, d_f.enabled),
        time_s=t.optional("time", units.parse_duration, d_f.time_s, "a duration"),
        data_bytes=t.optional("data", units.parse_size, d_f.data_bytes, "a data size"),
        down_bps=t.optional("down", units.parse_rate, d_f.down_bps, "a rate"),
        up_bps=t.optional("up", units.parse_rate, d_f.up_bps, "a rate"),
    )
    t.finish()

    t = root.table("daemon")
    d_d = DaemonConfig()
    poll = t.parsed("poll_interval", units.parse_duration, d_d.poll_interval_s, "a duration")
    if poll > 300:
        raise t.fail("poll_interval", "at most 5m: a power cut loses up to one interval of usage")
    daemon = DaemonConfig(
        poll_interval_s=poll,
        away_after_s=t.optional("away_after", units.parse_duration, d_d.away_after_s, "a duration"),
        control_socket=Path(t.get("control_socket", str, str(d_d.control_socket))),
        state_dir=Path(t.get("state_dir", str, str(d_d.state_dir))),
        operator_user=t.get("operator_user", str, d_d.operator_user or "") or None,
    )
    if daemon.operator_user == PORTAL_USER:
        raise t.fail("operator_user", f"must not be {PORTAL_USER!r}, the residents' portal's user")
    t.finish()

    root.finish()
    return Config(
        source=source,
        village=village,
        network=network,
        portal=portal,
        operator=operator,
        database=database,
        free=free,
        daemon=daemon,
    )


def config_path(explicit: str | os.PathLike[str] | None = None) -> tuple[Path, bool]:
    """The file to read, and whether it was asked for (then it must exist)."""
    if explicit:
        return Path(explicit), True
    env = os.environ.get("HOTSPOT_CONFIG")
    if env:
        return Path(env), True
    return DEFAULT_PATH, False


def load(explicit: str | os.PathLike[str] | None = None) -> Config:
    """Read the configuration once. Without a file at the default place, the defaults hold."""
    path, required = config_path(explicit)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if required:
            raise ConfigError(str(path), None, "file not found") from None
        return Config()
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(path), None, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), None, f"not valid TOML: {exc}") from None
    return parse(data, str(path))


def detect_wan_interface() -> str | None:
    """The interface of the IPv4 default route, for when the file leaves it out."""
    import netifaces  # imported here: only the daemon needs it, and only at start

    gateways: Any = netifaces.gateways()
    default = gateways.get("default", {}).get(netifaces.AF_INET)
    return str(default[1]) if default else None
