"""scripts/install, the systemd units and the dnsmasq example, checked by the real tools.

The installer runs twice into a temporary root (`--root`): that is the honest test of "safe to
run twice" without making accounts or touching the machine's /etc. The units are checked by
`systemd-analyze verify` and `systemd-analyze security --offline`; the dnsmasq example by
`dnsmasq --test`. In CI (CI=true) a missing tool fails these tests instead of skipping them.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from setuptools import find_namespace_packages

from tests.conftest import require

REPO = Path(__file__).resolve().parents[2]
INSTALL = REPO / "scripts" / "install"
UNITS = ("hotspotd.service", "hotspot-portal.service", "hotspot-operator.service")


def _run(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
        check=False,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------- scripts/install


@pytest.mark.network
def test_install_into_a_root_twice_keeps_the_operators_files(tmp_path: Path) -> None:
    require(
        _run("python3", "-c", "import venv, ensurepip").returncode == 0,
        "needs python3 with venv and ensurepip (Debian: python3-venv)",
    )
    root = tmp_path / "root"
    real_etc_before = Path("/etc/hotspot").exists()

    first = _run(INSTALL, "--root", root)
    assert first.returncode == 0, first.stderr
    etc = root / "etc" / "hotspot"
    state = root / "var" / "lib" / "hotspot"

    # Examples in place, with modes that keep secrets from other users.
    example = (REPO / "config" / "hotspot.example.toml").read_text()
    assert (etc / "hotspot.toml").read_text() == example
    assert _mode(etc / "hotspot.toml") == 0o640
    assert (etc / "dnsmasq.conf").read_text() == (REPO / "config/dnsmasq.conf.example").read_text()
    hostapd = (etc / "hostapd.conf").read_text()
    assert _mode(etc / "hostapd.conf") == 0o600
    assert "ganti-kata-sandi-operator" not in hostapd  # never the passphrase from the source
    passphrase = re.search(r"^wpa_passphrase=(\S+)$", hostapd, re.M)
    assert passphrase and 8 <= len(passphrase.group(1)) <= 63
    assert passphrase.group(1) in first.stdout  # the operator is told it once

    # The operator UI's certificate: self-signed for the portal's name, its key private.
    cert = (etc / "operator.crt").read_text()
    assert cert.startswith("-----BEGIN CERTIFICATE-----") and _mode(etc / "operator.key") == 0o640
    text = _run("openssl", "x509", "-in", etc / "operator.crt", "-noout", "-subject", "-ext",
                "subjectAltName").stdout  # fmt: skip
    assert "CN = portal.lan" in text and "DNS:portal.lan" in text and "IP Address:10.66.0.1" in text
    assert "made the operator UI's certificate" in first.stdout

    assert _mode(etc) == 0o750
    assert _mode(state) == 0o2770  # setgid: files stay in group hotspot for the portal
    assert _mode(state / "media") == 0o2770
    for unit in UNITS:
        installed = root / "etc" / "systemd" / "system" / unit
        assert installed.read_text() == (REPO / "systemd" / unit).read_text()
    # Forwarding off at boot: hotspotd turns it on once its table is built.
    sysctl = (root / "etc" / "sysctl.d" / "90-hotspot.conf").read_text()
    assert re.search(r"^net\.ipv4\.ip_forward = 0$", sysctl, re.M)
    assert "skipped systemctl daemon-reload" in first.stdout
    assert "no user or group made" in first.stdout

    # The console scripts are relative links into the venv and work from the installed copy.
    ctl = root / "usr" / "local" / "bin" / "hotspotctl"
    assert ctl.is_symlink()
    assert os.readlink(ctl) == "../../../opt/hotspot/venv/bin/hotspotctl"
    config = tmp_path / "check.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "check.db"}"\n')
    upgraded = _run(ctl, "--config", config, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "revision" in upgraded.stdout
    assert "hotspot" in _run(ctl, "--version").stdout

    # The wheel pip built ships every file the portal reads besides its code: each surface's
    # templates (portal/residents/templates/...), the static files, the translations.
    site = next((root / "opt" / "hotspot" / "venv" / "lib").glob("python3*/site-packages"))
    data = {
        path.relative_to(REPO).as_posix()
        for path in (REPO / "portal").rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc")
    }
    assert "portal/residents/templates/welcome.html" in data
    assert not sorted(name for name in data if not (site / name).is_file())

    # The operator edits the config and hostapd; an old unit is lying around; run again.
    (etc / "hotspot.toml").write_text('[village]\nname = "Desa Operator"\n')
    (etc / "hostapd.conf").write_text(hostapd.replace(passphrase.group(1), "operator-chose-this"))
    (root / "etc" / "systemd" / "system" / "hotspotd.service").write_text("[Service]\n")
    os.chmod(state, 0o755)

    second = _run(INSTALL, "--root", root)
    assert second.returncode == 0, second.stderr
    assert (etc / "hotspot.toml").read_text() == '[village]\nname = "Desa Operator"\n'
    assert "wpa_passphrase=operator-chose-this" in (etc / "hostapd.conf").read_text()
    assert "kept" in second.stdout and "passphrase:" not in second.stdout
    assert (etc / "operator.crt").read_text() == cert  # made once, never replaced
    for unit in UNITS:  # units are ours: replaced
        installed = root / "etc" / "systemd" / "system" / unit
        assert installed.read_text() == (REPO / "systemd" / unit).read_text()
    assert _mode(state) == 0o2770  # repaired
    assert _run(ctl, "--version").returncode == 0

    # Nothing leaked onto the machine itself.
    assert Path("/etc/hotspot").exists() == real_etc_before


# Runs scripts/install for real (no --root) where the machine cannot see it: a private mount
# namespace with an overlay over every folder it writes, a plain file in place of the forwarding
# sysctl, and no systemd in sight. The overlays' upper folders, kept in the test's tmp_path, show
# afterwards exactly what it changed.
SYSTEM_SCRIPT = r"""
set -eu
upper=$1 repo=$2
for d in etc opt usr/local var/lib var/log; do
    n=${d//\//_}
    mkdir -p "$upper/u/$n" "$upper/w/$n"
    mount -t overlay overlay -o "lowerdir=/$d,upperdir=$upper/u/$n,workdir=$upper/w/$n" "/$d"
done
if [ -d /run/systemd ]; then mount -t tmpfs tmpfs /run/systemd; fi
echo 0 >"$upper/ip_forward"  # a stand-in: nothing here may switch the machine's forwarding
mount --bind "$upper/ip_forward" /proc/sys/net/ipv4/ip_forward
"$repo/scripts/install"
"$repo/scripts/install"
echo "--- as the portal"
runuser -u hotspot -- /usr/local/bin/hotspotctl plan add Harian --price 5000
runuser -u hotspot -- /usr/local/bin/hotspotctl plan list
stat -c '%n %U:%G %a' /etc/hotspot /etc/hotspot/hotspot.toml /var/lib/hotspot \
    /var/lib/hotspot/hotspot.db /etc/hotspot/operator.key
"""


@pytest.mark.network
def test_install_on_the_system_changes_only_what_it_should(tmp_path: Path) -> None:
    require(os.geteuid() == 0, "needs root")
    require(shutil.which("unshare") is not None, "needs unshare (util-linux)")
    probe = _run(
        "unshare", "-m", "--propagation", "private", "sh", "-c",
        f"mkdir -p {tmp_path}/p/u {tmp_path}/p/w && mount -t overlay overlay -o "
        f"lowerdir=/opt,upperdir={tmp_path}/p/u,workdir={tmp_path}/p/w /opt",
    )  # fmt: skip
    require(probe.returncode == 0, f"needs overlay mounts in a namespace: {probe.stderr}")

    script = tmp_path / "system.sh"
    script.write_text(SYSTEM_SCRIPT)
    upper = tmp_path / "o"
    result = _run(
        "unshare", "-m", "--propagation", "private", "bash", script, upper, REPO,
        env={"HOTSPOT_CONFIG": "/etc/hotspot/hotspot.toml"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    # Made once, found by the second run; a machine that has the account already makes none.
    had_group = subprocess.run(["getent", "group", "hotspot"], capture_output=True).returncode == 0
    had_user = subprocess.run(["getent", "passwd", "hotspot"], capture_output=True).returncode == 0
    assert out.count("made group hotspot") == (0 if had_group else 1)
    assert len(re.findall(r"^install: made user hotspot$", out, re.M)) == (0 if had_user else 1)
    had_ui = subprocess.run(["getent", "passwd", "hotspot-operator"], capture_output=True)
    made_ui = re.findall(r"^install: made user hotspot-operator$", out, re.M)
    assert len(made_ui) == (0 if had_ui.returncode == 0 else 1)
    assert "/etc/hotspot/operator.key root:hotspot-operator 640" in out
    assert "skipped systemctl daemon-reload" in out
    assert "upgraded from empty" in out and "already at revision" in out
    assert "added plan 'Harian'" in out  # user hotspot writes the database root made
    assert "/etc/hotspot root:hotspot 750" in out
    assert "/etc/hotspot/hotspot.toml root:hotspot 640" in out
    assert "/var/lib/hotspot root:hotspot 2770" in out
    assert "/var/lib/hotspot/hotspot.db root:hotspot 660" in out

    changed = upper / "u"
    passwd = Path("/etc/passwd" if had_user else changed / "etc" / "passwd").read_text()
    assert re.search(r"^hotspot:x:\d+:\d+:[^:]*:/var/lib/hotspot:/usr/sbin/nologin$", passwd, re.M)
    assert (changed / "etc" / "systemd" / "system" / "hotspotd.service").exists()
    assert (changed / "opt" / "hotspot" / "venv" / "bin" / "hotspotctl").exists()
    # Nothing outside the folders the installer owns, apart from the accounts and sysctl.
    touched_etc = {p.relative_to(changed / "etc").parts[0] for p in (changed / "etc").iterdir()}
    allowed = {"hotspot", "systemd", "sysctl.d", "passwd", "group", "shadow", "gshadow",
               "passwd-", "group-", "shadow-", "gshadow-", ".pwd.lock", "subuid", "subgid",
               "subuid-", "subgid-"}  # fmt: skip
    assert touched_etc <= allowed, touched_etc - allowed
    assert {p.name for p in (changed / "usr_local").iterdir()} == {"bin"}
    assert {p.name for p in (changed / "var_lib").iterdir()} == {"hotspot"}
    assert (upper / "ip_forward").read_text() == "0\n"  # not applied while installing


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--root"], "--root needs a directory"), (["--bogus"], "unknown argument: --bogus")],
)
def test_install_refuses_bad_arguments(args: list[str], message: str) -> None:
    result = _run(INSTALL, *args)
    assert result.returncode != 0
    assert message in result.stderr


# ---------------------------------------------------------------- systemd units


def _units_with_stub_binaries(tmp_path: Path) -> list[Path]:
    """Copies of the units whose ExecStart points at a stub: verify wants it to exist."""
    stub = tmp_path / "bin" / "stub"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n")
    stub.chmod(0o755)
    copies = []
    for unit in UNITS:
        text = (REPO / "systemd" / unit).read_text()
        assert re.search(r"^ExecStart=/usr/local/bin/\S+$", text, re.M)
        copy = tmp_path / unit
        execstart = re.compile(r"^ExecStart=/usr/local/bin/\S+$", re.M)
        copy.write_text(execstart.sub(f"ExecStart={stub}", text))
        copies.append(copy)
    return copies


def _require_systemd_analyze() -> None:
    require(
        shutil.which("systemd-analyze") is not None,
        "needs systemd-analyze (Debian package: systemd)",
    )


def test_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    _require_systemd_analyze()
    copies = _units_with_stub_binaries(tmp_path)
    result = _run("systemd-analyze", "verify", "--man=no", "--generators=no", *copies)
    # An unknown or misspelt key is only a warning with exit status 0: any output is a failure.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_verify_catches_a_misspelt_key(tmp_path: Path) -> None:
    """The check above can fail: a unit with a typo makes systemd-analyze say so."""
    _require_systemd_analyze()
    copy = _units_with_stub_binaries(tmp_path)[0]
    copy.write_text(copy.read_text().replace("ProtectSystem=strict", "ProtectSystm=strict"))
    result = _run("systemd-analyze", "verify", "--man=no", "--generators=no", copy)
    assert "ProtectSystm" in result.stderr


@pytest.mark.parametrize(("unit", "threshold"), [(UNITS[0], 30), (UNITS[1], 20), (UNITS[2], 20)])
def test_units_stay_hardened(tmp_path: Path, unit: str, threshold: int) -> None:
    """systemd's own exposure score (0-100 here, 2.6 shown as 26): no hardening quietly lost."""
    _require_systemd_analyze()
    copy = next(c for c in _units_with_stub_binaries(tmp_path) if c.name == unit)
    result = _run(
        "systemd-analyze",
        "security",
        "--offline=yes",
        "--no-pager",
        f"--threshold={threshold}",
        copy,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr


def _unit_values(unit: str, key: str) -> list[str]:
    text = (REPO / "systemd" / unit).read_text()
    return re.findall(rf"^{key}=(.*)$", text, re.M)


def test_daemon_unit_bounds_root_to_two_capabilities_and_keeps_the_network() -> None:
    assert _unit_values(UNITS[0], "CapabilityBoundingSet") == ["CAP_NET_ADMIN CAP_NET_RAW"]
    families = set(_unit_values(UNITS[0], "RestrictAddressFamilies")[0].split())
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK", "AF_PACKET"}
    assert not _unit_values(UNITS[0], "PrivateNetwork")
    assert _unit_values(UNITS[0], "RuntimeDirectory") == ["hotspotd"]
    assert _unit_values(UNITS[0], "RuntimeDirectoryPreserve") == ["yes"]
    assert _unit_values(UNITS[0], "Group") == ["hotspot"]
    # hotspotd switches IPv4 forwarding itself: that one tunable stays writable.
    assert _unit_values(UNITS[0], "ProtectKernelTunables") == ["yes"]
    assert _unit_values(UNITS[0], "ReadWritePaths") == ["/proc/sys/net/ipv4/ip_forward"]


def test_portal_unit_has_no_capabilities_and_reaches_the_state_dir() -> None:
    assert _unit_values(UNITS[1], "User") == ["hotspot"]
    assert _unit_values(UNITS[1], "CapabilityBoundingSet") == [""]
    assert _unit_values(UNITS[1], "ReadWritePaths") == ["/var/lib/hotspot"]
    assert "hotspot" in _unit_values(UNITS[1], "SupplementaryGroups")[0].split()


def test_operator_unit_runs_as_its_own_user_the_daemon_can_tell_apart() -> None:
    assert _unit_values(UNITS[2], "User") == ["hotspot-operator"]  # never the portal's hotspot
    assert _unit_values(UNITS[2], "ExecStart") == ["/usr/local/bin/hotspot-operator"]
    assert _unit_values(UNITS[2], "CapabilityBoundingSet") == [""]
    assert "hotspot" in _unit_values(UNITS[2], "SupplementaryGroups")[0].split()
    from hotspotd import config

    assert config.DaemonConfig().operator_user == "hotspot-operator"


# ---------------------------------------------------------------- dnsmasq and hostapd examples


def _require_dnsmasq() -> None:
    require(shutil.which("dnsmasq") is not None, "needs dnsmasq (Debian: dnsmasq-base)")


def test_dnsmasq_example_passes_dnsmasq_test() -> None:
    _require_dnsmasq()
    result = _run("dnsmasq", "--test", f"--conf-file={REPO / 'config/dnsmasq.conf.example'}")
    assert result.returncode == 0, result.stderr
    assert "syntax check OK" in result.stderr + result.stdout


def test_dnsmasq_test_catches_a_broken_line(tmp_path: Path) -> None:
    _require_dnsmasq()
    broken = tmp_path / "dnsmasq.conf"
    example = (REPO / "config/dnsmasq.conf.example").read_text()
    broken.write_text(example.replace("dhcp-range=set:residents,10.66.0.10", "dhcp-range=x,"))
    assert _run("dnsmasq", "--test", f"--conf-file={broken}").returncode != 0


def test_dnsmasq_accepts_the_ipv6_captive_option_once_switched_on(tmp_path: Path) -> None:
    _require_dnsmasq()
    conf = tmp_path / "dnsmasq.conf"
    example = (REPO / "config/dnsmasq.conf.example").read_text()
    switched_on = example.replace(
        "#dhcp-option=tag:residents,option6:103,", "dhcp-option=tag:residents,option6:103,"
    )
    assert switched_on != example
    conf.write_text(switched_on)
    assert _run("dnsmasq", "--test", f"--conf-file={conf}").returncode == 0


def test_dnsmasq_example_fills_the_firewalls_garden_set() -> None:
    """The nftset= line must name the set hotspotd's firewall creates, exactly."""
    from hotspotd.net.firewall import NftFirewall

    ruleset = NftFirewall(lan_interface="wlan0", portal_ip="10.66.0.1")._ruleset()
    example = (REPO / "config/dnsmasq.conf.example").read_text()
    targets = set(re.findall(r"^nftset=/[^/]+/4#inet#(\w+)#(\w+)$", example, re.M))
    assert targets == {("hotspot", "garden_dns")}
    assert (
        "add set inet hotspot garden_dns { type ipv4_addr; flags dynamic, timeout; timeout 3600s; }"
        in ruleset
    )
    # Answered here and never forwarded; option 114 for every client; no ping delay.
    for line in ("address=/portal.lan/10.66.0.1", "local=/portal.lan/", "no-ping"):
        assert re.search(rf"^{re.escape(line)}$", example, re.M), line

    # The captive API's URI, the same everywhere it is announced, on the portal's HTTPS port.
    from hotspotd.config import PortalConfig

    uri = f"https://{PortalConfig.hostname}:{PortalConfig.https_port}/api/captive"
    assert re.findall(r'^dhcp-option-force=tag:residents,114,"([^"]+)"$', example, re.M) == [uri]
    assert re.findall(r'^#dhcp-option=tag:residents,option6:103,"([^"]+)"$', example, re.M) == [uri]
    radvd = (REPO / "config/radvd.conf.example").read_text()
    assert re.findall(r'^\s*AdvCaptivePortalAPI "([^"]+)";$', radvd, re.M) == [uri]


def _settings(part: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in part.splitlines() if line and line[0] != "#")
    return {key: value for key, value in pairs}


def test_hostapd_example_isolates_residents_and_locks_the_operator_network() -> None:
    text = (REPO / "config/hostapd.conf.example").read_text()
    residents, operator = text.split("\nbss=", 1)
    res, op = _settings(residents), _settings("bss=" + operator)
    assert res["ap_isolate"] == "1" and res["wpa"] == "0"
    assert op["wpa"] == "2" and op["rsn_pairwise"] == "CCMP" and op["wpa_key_mgmt"] == "WPA-PSK"
    assert op["wpa_passphrase"] == "ganti-kata-sandi-operator"  # what scripts/install replaces
    # hostapd reads a comment after a value as part of the value.
    assert all("#" not in value for value in [*res.values(), *op.values()])


def test_hostapd_example_offers_wifi_enhanced_open_in_transition_mode() -> None:
    """Uncommented as its own text says, the OWE network pairs with the open one both ways."""
    text = (REPO / "config/hostapd.conf.example").read_text()
    block = text.split("# ---- Wi-Fi Enhanced Open", 1)[1].split("# ---- the operator's", 1)[0]
    lines = [ln[1:] for ln in block.splitlines() if ln.startswith("#") and ln[1:2].isalpha()]
    pairing = _settings("\n".join(ln for ln in lines[:2]))
    owe = _settings("\n".join(lines[2:]))
    assert pairing == {"bridge": "br-lan", "owe_transition_ifname": "wlan0_owe"}
    assert owe["bss"] == "wlan0_owe" and owe["owe_transition_ifname"] == "wlan0"
    assert owe["wpa_key_mgmt"] == "OWE" and owe["ieee80211w"] == "2"  # OWE requires PMF
    assert owe["ignore_broadcast_ssid"] == "1" and owe["ap_isolate"] == "1"
    assert owe["bridge"] == pairing["bridge"]


# ---------------------------------------------------------------- what the package holds


def test_the_package_holds_hotspotd_and_portal_but_never_the_lab() -> None:
    """setup.cfg's package selection, as setuptools applies it to this tree: the demo lab in
    devtools/ (root, namespaces, demo data) stays in the clone and never reaches a router."""
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    include = cfg["options.packages.find"]["include"].split()
    packages = find_namespace_packages(where=str(REPO), include=include)
    assert {p.split(".")[0] for p in packages} == {"hotspotd", "portal"}
    assert (REPO / "devtools" / "lab" / "__main__.py").exists()  # it does exist, just not here
    assert not (REPO / "hotspotd" / "lab.py").exists()
