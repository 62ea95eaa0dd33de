"""The config file: typed, frozen, and every mistake named by file, key and reason."""

from __future__ import annotations

import dataclasses
import ipaddress
from pathlib import Path

import pytest

from hotspotd import config
from hotspotd.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "config" / "hotspot.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hotspot.toml"
    path.write_text(text)
    return path


def test_example_file_parses_into_the_documented_values() -> None:
    cfg = config.load(EXAMPLE)
    assert cfg.village.name == "Desa Sukamaju"
    assert cfg.village.tz.key == "Asia/Jakarta"
    assert cfg.network.lan_interface == "wlan0"
    assert cfg.network.wan_interface is None
    assert cfg.network.uplink_down_bps == 20_000_000
    assert cfg.network.garden_ports == (80, 443)
    assert cfg.network.garden_dns_timeout_s == 3600
    assert cfg.network.local_destinations == ()
    assert cfg.network.operator_interface is None and cfg.network.operator_networks == ()
    assert cfg.portal.address == ipaddress.IPv4Address("10.66.0.1")
    assert cfg.free.enabled is False
    assert cfg.free.time_s == 1800 and cfg.free.data_bytes == 100_000_000
    assert cfg.daemon.poll_interval_s == 10
    assert cfg.database.url.startswith("sqlite:////var/lib/hotspot/")


def test_config_is_frozen() -> None:
    cfg = config.load(EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.village.name = "x"  # type: ignore[misc]


def test_missing_default_file_gives_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HOTSPOT_CONFIG", raising=False)
    monkeypatch.setattr(config, "DEFAULT_PATH", tmp_path / "absent.toml")
    assert config.load() == config.Config()


def test_env_variable_names_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write(tmp_path, '[village]\ntimezone = "Asia/Jayapura"\n')
    monkeypatch.setenv("HOTSPOT_CONFIG", str(path))
    assert config.load().village.timezone == "Asia/Jayapura"
    assert config.load().source == str(path)


def test_named_file_that_is_missing_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOTSPOT_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"nope\.toml: file not found"):
        config.load()


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[village]\nnmae = "x"\n', "village.nmae", "unknown key"),
        ('colour = "red"\n', "colour", "unknown key"),
        ("[village]\nname = 5\n", "village.name", "expected a string, got an integer"),
        ('[village]\ntimezone = "Asia/Bandung"\n', "village.timezone", "unknown time zone"),
        ('[network]\nuplink_down = "fast"\n', "network.uplink_down", "not a rate"),
        (
            '[network]\nlan_interface = "eth0; rm -rf /"\n',
            "network.lan_interface",
            "not an interface",
        ),
        (
            '[network]\nlan_interface = "eth0"\nwan_interface = "eth0"\n',
            "network.wan_interface",
            "must differ",
        ),
        ('[network]\nlan_prefix = "10.66.0.1/16"\n', "network.lan_prefix", "not an IPv4 network"),
        ("[portal]\nport = 70000\n", "portal.port", "between 1 and 65535"),
        ('[portal]\nport = "80"\n', "portal.port", "expected an integer"),
        ('[portal]\naddress = "192.168.9.1"\n', "portal.address", "not inside network.lan_prefix"),
        ('[database]\nurl = "mysql://x"\n', "database.url", "sqlite:// or postgresql://"),
        ("[free]\nenabled = 1\n", "free.enabled", "expected true or false"),
        ('[free]\ndata = "lots"\n', "free.data", "not a data size"),
        ('[daemon]\npoll_interval = "1h"\n', "daemon.poll_interval", "at most 5m"),
        ("village = 3\n", "village", "expected a table"),
        ('[portal]\ntls_cert = "/c.pem"\n', "portal.tls_key", "give tls_cert and tls_key"),
        ("[portal]\nhttps_port = 0\n", "portal.https_port", "between 1 and 65535"),
        (
            '[portal]\ntls_cert = "/c"\ntls_key = "/k"\nhttps_port = 8080\n',
            "portal.https_port",
            "must differ from port",
        ),
        ("[portal]\nthreads = 0\n", "portal.threads", "between 1 and 256"),
        ("[portal]\nworkers = 0\n", "portal.workers", "between 1 and 64"),
        ('[network]\nmasquerade = "yes"\n', "network.masquerade", "expected"),
        ('[portal]\nruntime_dir = "run"\n', "portal.runtime_dir", "absolute path"),
        ("[network]\ngarden_ports = []\n", "network.garden_ports", "at least one port"),
        ('[network]\ngarden_ports = ["80"]\n', "network.garden_ports", "integers from 1"),
        ("[network]\ngarden_ports = 80\n", "network.garden_ports", "expected a list"),
        ('[network]\ngarden_dns_timeout = "10s"\n', "network.garden_dns_timeout", "between 1m"),
        (
            '[network]\nlocal_destinations = ["192.168.1.300/32"]\n',
            "network.local_destinations",
            "not an IPv4 network",
        ),
        (
            '[network]\nlocal_destinations = ["192.168.1.10/24"]\n',
            "network.local_destinations",
            "host bits set",
        ),
        ("[network]\nlocal_destinations = [10]\n", "network.local_destinations", "as strings"),
        (
            '[network]\nlocal_destinations = ["8.8.8.8"]\n',
            "network.local_destinations",
            "not within the private ranges",
        ),
        (
            '[network]\nlocal_destinations = ["10.66.3.0/24"]\n',
            "network.local_destinations",
            "inside lan_prefix",
        ),
        (
            '[network]\noperator_interface = "wlan0"\n',
            "network.operator_interface",
            "must differ from lan_interface",
        ),
        (
            '[network]\noperator_interface = "wlan1; ssh"\n',
            "network.operator_interface",
            "not an interface name",
        ),
        (
            '[network]\noperator_networks = ["10.66.0.0/24"]\n',
            "network.operator_networks",
            "overlaps lan_prefix",
        ),
        (
            '[network]\noperator_networks = ["10.67.0.1/24"]\n',
            "network.operator_networks",
            "host bits set",
        ),
    ],
)
def test_bad_values_name_file_key_and_reason(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        config.load(path)
    err = caught.value
    assert err.path == str(path)
    assert err.key == key
    assert reason in err.reason
    message = str(err)
    assert message.startswith(f"{path}: {key}: ") and "\n" not in message


def test_not_toml_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "[village\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(path)


def test_limits_may_be_none(tmp_path: Path) -> None:
    path = write(tmp_path, '[free]\nenabled = true\ntime = "none"\ndata = "2GB"\ndown = "none"\n')
    free = config.load(path).free
    assert free.enabled and free.time_s is None and free.data_bytes == 2 * 10**9
    assert free.down_bps is None


def test_portal_https_and_secret_key_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[portal]\ntls_cert = "/etc/hotspot/p.crt"\ntls_key = "/etc/hotspot/p.key"\n'
        'https_port = 9443\nsecret_key_file = "/var/lib/hotspot/s"\n',
    )
    portal = config.load(path).portal
    assert portal.https and portal.tls_cert == Path("/etc/hotspot/p.crt")
    assert portal.tls_key == Path("/etc/hotspot/p.key") and portal.https_port == 9443
    assert portal.secret_key_file == Path("/var/lib/hotspot/s")
    assert not config.Config().portal.https


def test_local_destinations_are_networks(tmp_path: Path) -> None:
    path = write(tmp_path, '[network]\nlocal_destinations = ["192.168.1.10", "172.20.0.0/16"]\n')
    assert config.load(path).network.local_destinations == (
        ipaddress.IPv4Network("192.168.1.10/32"),
        ipaddress.IPv4Network("172.20.0.0/16"),
    )


def test_operator_interface_and_networks(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[network]\noperator_interface = "wlan0_1"\noperator_networks = ["192.168.1.0/24"]\n',
    )
    network = config.load(path).network
    assert network.operator_interface == "wlan0_1"
    assert network.operator_networks == (ipaddress.IPv4Network("192.168.1.0/24"),)


def test_operator_ui_from_the_lan_by_default_or_only_some_macs(tmp_path: Path) -> None:
    assert config.load(EXAMPLE).operator.from_lan is True
    assert config.load(EXAMPLE).operator.allow_macs == ()
    path = write(
        tmp_path,
        '[operator]\nallow_macs = ["02:AA:00:00:00:01", "02-aa-00-00-00-02", '
        '"02:aa:00:00:00:01"]\n',
    )
    assert config.load(path).operator.allow_macs == ("02:aa:00:00:00:01", "02:aa:00:00:00:02")
    path = write(
        tmp_path, '[network]\noperator_interface = "wlan1"\n[operator]\nfrom_lan = false\n'
    )
    assert config.load(path).operator.from_lan is False


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ('[operator]\nallow_macs = ["02:aa:00:00:00"]\n', "operator.allow_macs", "not a MAC"),
        ('[operator]\nallow_macs = ["02:aa:00:00:00:01 }"]\n', "operator.allow_macs", "not a MAC"),
        ("[operator]\nallow_macs = [2]\n", "operator.allow_macs", "as strings"),
        ('[operator]\nallow_macs = "02:aa:00:00:00:01"\n', "operator.allow_macs", "a list"),
        ('[operator]\nallow_macs = ["01:00:5e:00:00:01"]\n', "operator.allow_macs", "group"),
        ('[operator]\nfrom_lan = "no"\n', "operator.from_lan", "true or false"),
        ("[operator]\nfrom_lan = false\n", "operator.from_lan", "answer nowhere"),
        (
            '[network]\noperator_interface = "wlan1"\n[operator]\nfrom_lan = false\n'
            'allow_macs = ["02:aa:00:00:00:01"]\n',
            "operator.allow_macs",
            "lets none in",
        ),
        ("[operator]\nport = 53\n", "operator.port", "nor DNS"),
    ],
)
def test_operator_ui_reach_mistakes_are_named(
    tmp_path: Path, text: str, key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text))
    assert caught.value.key == key
    assert reason in caught.value.reason
