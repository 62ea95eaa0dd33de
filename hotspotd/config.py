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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hotspotd.core import units
from hotspotd.errors import ConfigError
from hotspotd.net.addresses import PRIVATE_DESTINATIONS

DEFAULT_PATH = Path("/etc/hotspot/hotspot.toml")
DEFAULT_DATABASE_URL = "sqlite:////var/lib/hotspot/hotspot.db"
PORTAL_USER = "hotspot"  # the residents' portal runs as this user (systemd, the demo lab)
_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")

T = TypeVar("T")


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


class _Table:
    """Reads one TOML table, remembering which keys were used so leftovers are reported."""

    def __init__(self, path: str, prefix: str, data: Mapping[str, Any]) -> None:
        self.path, self.prefix, self.data = path, prefix, data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, reason: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), reason)

    def get(self, name: str, kind: type[T], default: T) -> T:
        self.used.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if kind is int and isinstance(value, bool):
            raise self.fail(name, f"expected an integer, got {value!r}")
        if not isinstance(value, kind):
            raise self.fail(name, f"expected {_type_name(kind)}, got {_type_name(type(value))}")
        return value

    def parsed(self, name: str, parse: Callable[[str], T], default: T, what: str) -> T:
        """A string in human units ("3h", "1GB", "2M"), or a plain integer."""
        self.used.add(name)
        if name not in self.data:
            return default
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise self.fail(name, f"expected {what} as a string, got {_type_name(type(value))}")
        try:
            return parse(str(value))
        except ValueError as exc:
            raise self.fail(name, str(exc)) from None

    def optional(
        self, name: str, parse: Callable[[str], int], default: int | None, what: str
    ) -> int | None:
        value = self.data.get(name)
        if isinstance(value, str) and units.is_none(value):
            self.used.add(name)
            return None
        return self.parsed(name, parse, default, what)

    def table(self, name: str) -> _Table:
        self.used.add(name)
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.fail(name, f"expected a table [{self.key(name)}]")
        return _Table(self.path, self.key(name), value)

    def finish(self) -> None:
        for name in self.data:
            if name not in self.used:
                raise self.fail(name, "unknown key")


def _type_name(kind: type) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", float: "a number"}
    return {**names, list: "a list"}.get(kind, kind.__name__)


def _interface(table: _Table, name: str, default: str | None) -> str | None:
    value = table.get(name, str, default or "")
    if not value:
        if default is None:
            return None
        raise table.fail(name, "must not be empty")
    if not _IFNAME.match(value):
        raise table.fail(name, f"not an interface name: {value!r}")
    return value


def _ports(table: _Table, name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    value = table.get(name, list, list(default))
    if not value:
        raise table.fail(name, "give at least one port, e.g. [80, 443]")
    for port in value:
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise table.fail(name, f"ports are integers from 1 to 65535, got {port!r}")
    return tuple(sorted(set(value)))


def _networks(table: _Table, name: str) -> tuple[ipaddress.IPv4Network, ...]:
    """A list of IPv4 networks ("192.168.1.10/32", or a plain address for /32)."""
    result = []
    for item in table.get(name, list, []):
        if not isinstance(item, str):
            raise table.fail(name, f"expected IPv4 networks as strings, got {item!r}")
        try:
            result.append(ipaddress.IPv4Network(item, strict=True))
        except ValueError as exc:
            raise table.fail(name, f'not an IPv4 network: {exc} (e.g. "192.168.1.10/32")') from None
    return tuple(result)


def parse(data: Mapping[str, Any], source: str) -> Config:
    """Build a `Config` from TOML data; `source` names the file in error messages."""
    root = _Table(source, "", data)

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
    lan = _interface(t, "lan_interface", d_n.lan_interface)
    assert lan is not None
    network = NetworkConfig(
        lan_interface=lan,
        wan_interface=_interface(t, "wan_interface", None),
        lan_prefix=lan_prefix,
        uplink_down_bps=t.parsed("uplink_down", units.parse_rate, d_n.uplink_down_bps, "a rate"),
        uplink_up_bps=t.parsed("uplink_up", units.parse_rate, d_n.uplink_up_bps, "a rate"),
        manage_forwarding=t.get("manage_forwarding", bool, d_n.manage_forwarding),
        masquerade=t.get("masquerade", bool, d_n.masquerade),
        garden_ports=_ports(t, "garden_ports", d_n.garden_ports),
        garden_dns_timeout_s=t.parsed(
            "garden_dns_timeout", units.parse_duration, d_n.garden_dns_timeout_s, "a duration"
        ),
        local_destinations=_networks(t, "local_destinations"),
        operator_interface=_interface(t, "operator_interface", None),
        operator_networks=_networks(t, "operator_networks"),
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
    if not 1 <= op_port <= 65535 or op_port in (port, https_port):
        raise t.fail("port", f"a port from 1 to 65535 of its own, not the portal's: {op_port}")
    op_cert, op_key = t.get("tls_cert", str, "") or None, t.get("tls_key", str, "") or None
    if (op_cert is None) != (op_key is None):
        raise t.fail("tls_key" if op_key is None else "tls_cert", "give tls_cert and tls_key")
    op_secret = t.get("secret_key_file", str, "") or None
    idle = t.parsed("idle_timeout", units.parse_duration, d_o.idle_s, "a duration")
    if not 60 <= idle <= 86400:
        raise t.fail("idle_timeout", "between 1m and 1d")
    operator = OperatorUiConfig(
        port=op_port,
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
