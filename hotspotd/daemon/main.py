"""hotspotd: the root daemon. Keeps the kernel in step with the database, and answers the socket.

`main` builds the kernel adapters and the service, `serve` starts the control socket, the
DHCP sniffer and the jobs. SIGTERM stops it and leaves authorized devices forwarding, so a
restart never cuts a paid user; `hotspotd --flush` removes our table and classes on purpose.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from ipaddress import IPv4Address
from typing import Any

from hotspotd import config as config_mod
from hotspotd.control.server import ControlServer
from hotspotd.core import db
from hotspotd.core.ports import Firewall, Shaper
from hotspotd.daemon.jobs import Ticker, interval_jobs, reschedule_after_a_jump, schedule
from hotspotd.daemon.service import Hotspotd, MacOf, Presence
from hotspotd.errors import HotspotError
from hotspotd.instance import hold_instance_lock
from hotspotd.net.forwarding import set_forwarding

log = logging.getLogger("hotspotd")


def uplink_for_masquerade(cfg: config_mod.Config) -> str | None:
    """The uplink to masquerade behind: wan_interface, else the default route's interface."""
    if not cfg.network.masquerade:
        return None
    wan = cfg.network.wan_interface or config_mod.detect_wan_interface()
    if wan is None or wan == cfg.network.lan_interface:
        log.warning(
            "no uplink to masquerade behind (set network.wan_interface; the default route "
            "is missing or on the LAN): phones' traffic leaves with their own addresses"
        )
        return None
    return wan


def firewall_settings(cfg: config_mod.Config) -> dict[str, Any]:
    """The `Ruleset`'s settings from the config (checked again there)."""
    return {
        "lan_interface": cfg.network.lan_interface,
        "portal_ip": cfg.portal.address,
        "portal_port": cfg.portal.port,
        "masquerade_interface": uplink_for_masquerade(cfg),
        # the router's own services a phone may reach: DHCP, DNS and the portal's ports
        "local_tcp_ports": (cfg.portal.https_port,) if cfg.portal.https else (),
        "garden_ports": cfg.network.garden_ports,
        "garden_dns_timeout": cfg.network.garden_dns_timeout_s,
        "local_destinations": cfg.network.local_destinations,
        "operator_interface": cfg.network.operator_interface,
        "operator_networks": cfg.network.operator_networks,
        # ... and the operator UI's port: from every device, only allow_macs, or none
        "operator_ui_port": cfg.operator.port if cfg.operator.from_lan else None,
        "operator_ui_macs": cfg.operator.allow_macs,
    }


def build_adapters(cfg: config_mod.Config) -> tuple[Firewall, Shaper, MacOf]:
    from hotspotd.net.firewall import NftFirewall
    from hotspotd.net.shaper import TcShaper

    firewall = NftFirewall(**firewall_settings(cfg))
    shaper = TcShaper(lan_interface=cfg.network.lan_interface, lan_prefix=cfg.network.lan_prefix)
    return firewall, shaper, _mac_lookup(cfg)


def _presence(cfg: config_mod.Config) -> Presence:
    from hotspotd.net import neighbours

    return neighbours.NeighbourTable(cfg.network.lan_interface).present


def _mac_lookup(cfg: config_mod.Config) -> MacOf:
    from hotspotd.net import neighbours

    finder = neighbours.NeighbourTable(cfg.network.lan_interface)

    def mac_of(ip: IPv4Address) -> str | None:
        return finder.mac_of(ip)

    return mac_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hotspotd", description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default $HOTSPOT_CONFIG or /etc/hotspot)")
    parser.add_argument(
        "--flush", action="store_true", help="remove our nftables table and tc classes, then exit"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping; authorized devices keep forwarding", signum)
        stop.set()

    # First thing: a SIGTERM during start-up still ends cleanly, after the kernel is rebuilt.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # APScheduler says "Running job ..." at INFO every poll: the journal would be nothing else.
    logging.getLogger("apscheduler").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        cfg = config_mod.load(args.config)
        # One hotspotd at a time: a second one would take over the socket, and both would
        # charge online time. Held until this process ends, however it ends.
        instance_lock = hold_instance_lock(cfg.daemon.lock_file)  # noqa: F841 (kept open)
        firewall, shaper, mac_of = build_adapters(cfg)
        if args.flush:
            if cfg.network.manage_forwarding:
                set_forwarding(False)  # close the door before the table that guards it goes
            firewall.teardown()
            shaper.teardown()
            log.info("removed the hotspot table and shaping; every device is cut off")
            return 0
        engine = db.make_engine(cfg.database.url)
        daemon = Hotspotd(cfg, engine, firewall, shaper, mac_of, present=_presence(cfg))
        daemon.start()
    except HotspotError as exc:
        print(f"hotspotd: {exc}", file=sys.stderr)
        return 1
    return serve(daemon, stop)


def serve(daemon: Hotspotd, stop: threading.Event) -> int:
    from apscheduler.schedulers.background import BackgroundScheduler

    server = ControlServer(daemon.cfg.daemon.control_socket, daemon.handle)
    server.start()
    sniffer = None
    try:
        from hotspotd.net.dhcp_sniffer import DhcpSniffer

        sniffer = DhcpSniffer(
            daemon.cfg.network.lan_interface,
            lambda s: daemon.on_dhcp(s.mac, s.hostname, s.vendor_class),
        )
        sniffer.start()
    except ImportError:  # pragma: no cover - scapy is a dependency
        log.warning("scapy missing: no DHCP names")
    scheduler = BackgroundScheduler(timezone=daemon.tz)
    schedule(daemon, scheduler)
    scheduler.start()
    daemon.on_clock_jump = lambda: reschedule_after_a_jump(scheduler)
    ticker = Ticker(interval_jobs(daemon), daemon.clock.monotonic)
    ticker.start(stop)
    log.info("serving on %s", daemon.cfg.daemon.control_socket)
    stop.wait()
    ticker.join()
    scheduler.shutdown(wait=True)
    server.stop()
    if sniffer is not None:
        sniffer.stop()
    with daemon.lock:
        with contextlib.suppress(Exception):
            daemon.poll()  # the last counters, so a clean stop loses nothing
    for adapter in (daemon.firewall, daemon.shaper):
        close = getattr(adapter, "close", None)
        if close is not None:
            close()
    return 0


def run() -> None:
    sys.exit(main())
