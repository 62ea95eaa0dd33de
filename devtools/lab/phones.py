"""The phones: each gets its address by DHCP from the router's dnsmasq, through dhclient with
the lab's own hook, which writes the phone's resolv.conf and a lease summary and never touches
the host's resolv.conf or hostname."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from devtools.lab.layout import PHONES
from devtools.lab.shell import LabError

# The phones' DHCP hook. dhclient runs it with a clean environment and these variables; it sets
# the address and the default route and writes the phone's own resolv.conf
# (/etc/netns/<phone>/resolv.conf, which `ip netns exec` mounts over /etc/resolv.conf) and a
# lease summary. It never touches the host's /etc/resolv.conf or the hostname.
DHCP_HOOK = r"""#!/bin/sh
set -u
ns=$(ip netns identify $$)
case "$ns" in hs-phone[0-9]) ;; *) echo "hook: not in a lab phone ($ns)" >&2; exit 1 ;; esac
state="__STATE__/phones"
case "$reason" in
PREINIT)
    ip link set dev "$interface" up ;;
BOUND|RENEW|REBIND|REBOOT)
    if [ -n "${old_ip_address:-}" ] && [ "$old_ip_address" != "$new_ip_address" ]; then
        ip -4 addr flush dev "$interface"
    fi
    ip addr replace "$new_ip_address/$new_subnet_mask" dev "$interface"
    ip route replace default via "${new_routers%% *}" dev "$interface"
    : > "/etc/netns/$ns/resolv.conf"
    for server in ${new_domain_name_servers:-}; do
        echo "nameserver $server" >> "/etc/netns/$ns/resolv.conf"
    done
    printf '{"address": "%s", "netmask": "%s", "router": "%s", "dns": "%s", %s}\n' \
        "$new_ip_address" "$new_subnet_mask" "${new_routers%% *}" \
        "${new_domain_name_servers:-}" "\"captive_url\": \"${new_default_url:-}\"" \
        > "$state/$ns.json" ;;
EXPIRE|FAIL|RELEASE|STOP)
    ip -4 addr flush dev "$interface"
    rm -f "$state/$ns.json" ;;
esac
exit 0
"""

DHCLIENT_CONF = """\
send host-name "{name}";
request subnet-mask, broadcast-address, routers, domain-name-servers, default-url;
timeout 20;
retry 2;
"""


def write_hook(state: Path) -> Path:
    """The DHCP hook, made for this state directory; dhclient runs it (`-sf`)."""
    hook = state / "bin" / "phone-dhcp-hook"
    hook.write_text(DHCP_HOOK.replace("__STATE__", str(state)))
    hook.chmod(0o755)
    return hook


def start(state: Path, logs: Path) -> None:
    """Every phone asks for a lease at once; returns when all have one (dhclient -1 then goes
    on renewing in the background), raises LabError if one got none within a minute."""
    hook = state / "bin" / "phone-dhcp-hook"
    procs = []
    for phone in PHONES:
        conf = state / "phones" / f"{phone}.dhclient.conf"
        conf.write_text(DHCLIENT_CONF.format(name=phone))
        leases = state / "phones" / f"{phone}.leases"
        pidfile = state / "run" / f"{phone}-dhclient.pid"
        dhclient = ["dhclient", "-1", "-cf", str(conf), "-sf", str(hook), "-lf", str(leases)]
        with (logs / f"{phone}-dhclient.log").open("ab") as log:
            procs.append(
                subprocess.Popen(
                    ["ip", "netns", "exec", phone, *dhclient, "-pf", str(pidfile), "eth0"],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,
                )
            )
    for phone, proc in zip(PHONES, procs, strict=True):
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = -1
        if code != 0 or not (state / "phones" / f"{phone}.json").exists():
            raise LabError(f"{phone} got no DHCP lease: see {logs}")


def lease(state: Path, phone: str) -> dict[str, Any]:
    """The hook's summary of the phone's lease (address, router, dns, captive_url), or {}."""
    path = state / "phones" / f"{phone}.json"
    return dict(json.loads(path.read_text())) if path.exists() else {}
