"""The nft text `Ruleset` builds: the operator UI's port from the LAN (the kernel test is
tests/netns/test_operator_reach.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hotspotd import config
from hotspotd.daemon.main import firewall_settings
from hotspotd.net.ruleset import Ruleset

BASE = {"lan_interface": "wlan0", "portal_ip": "10.66.0.1", "portal_port": 8080}


def lan_local(rules: Ruleset) -> list[str]:
    prefix = "add rule inet hotspot lan_local "
    return [line[len(prefix) :] for line in rules.text().splitlines() if line.startswith(prefix)]


def accepted_tcp_ports(rules: Ruleset) -> set[int]:
    (line,) = [r for r in lan_local(rules) if r.startswith("tcp dport {") and r.endswith("accept")]
    return {int(p) for p in line.removeprefix("tcp dport {").removesuffix("} accept").split(",")}


def test_without_the_operator_port_the_lan_reaches_only_dns_and_the_portal() -> None:
    rules = Ruleset(**BASE, local_tcp_ports=[8443])  # type: ignore[arg-type]
    assert accepted_tcp_ports(rules) == {53, 8080, 8443}
    assert not any("8444" in r for r in lan_local(rules))


def test_the_operator_port_is_open_to_every_lan_device_by_default() -> None:
    rules = Ruleset(**BASE, operator_ui_port=8444)  # type: ignore[arg-type]
    assert accepted_tcp_ports(rules) == {53, 8080, 8444}
    assert not any("ether saddr !=" in r and "8444" in r for r in lan_local(rules))


def test_with_macs_named_every_other_device_is_refused_before_established() -> None:
    rules = Ruleset(
        **BASE,  # type: ignore[arg-type]
        operator_ui_port=8444,
        operator_ui_macs=["02:AA:00:00:00:01", "02-aa-00-00-00-02", "02:aa:00:00:00:01"],
    )
    chain = lan_local(rules)
    only = "tcp dport 8444 ether saddr != { 02:aa:00:00:00:01, 02:aa:00:00:00:02 } jump refuse"
    assert chain.count(only) == 1  # normalized, each MAC once
    # Evaluated on every packet: before the established accept and before the port's accept.
    assert chain.index(only) < chain.index("ct state established,related accept")
    assert accepted_tcp_ports(rules) == {53, 8080, 8444}
    # The portal's and DNS's rules do not mention the MACs: residents keep them.
    assert sum("02:aa:00:00:00:01" in r for r in chain) == 1


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"operator_ui_port": 8080}, "port of its own"),  # the portal's
        ({"operator_ui_port": 53}, "port of its own"),
        ({"operator_ui_port": 70000}, "port of its own"),
        ({"operator_ui_port": True}, "port of its own"),
        ({"operator_ui_port": 8444, "operator_ui_macs": ["02:aa:00:00:00:01 } accept"]}, "MAC"),
        ({"operator_ui_port": 8444, "operator_ui_macs": ['02:aa:00:00:00:1"']}, "MAC"),
        ({"operator_ui_macs": ["02:aa:00:00:00:01"]}, "without operator_ui_port"),
    ],
)
def test_values_are_checked_before_they_reach_the_text(
    settings: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        Ruleset(**BASE, **settings)  # type: ignore[arg-type]


def test_the_daemon_builds_the_ruleset_from_the_operator_section() -> None:
    cfg = replace(config.Config(), network=replace(config.NetworkConfig(), masquerade=False))
    assert 8444 in accepted_tcp_ports(Ruleset(**firewall_settings(cfg)))
    only = replace(cfg.operator, allow_macs=("02:aa:00:00:00:01",))
    chain = lan_local(Ruleset(**firewall_settings(replace(cfg, operator=only))))
    assert "tcp dport 8444 ether saddr != { 02:aa:00:00:00:01 } jump refuse" in chain
    closed = replace(cfg.operator, from_lan=False)
    rules = Ruleset(**firewall_settings(replace(cfg, operator=closed)))
    assert 8444 not in accepted_tcp_ports(rules)
