"""The operator's UI in the lab: its Unix user and self-signed certificate, made by the same
recipe as scripts/install (scripts/lib/accounts.sh), its first admin with a random password, and
`hotspot-operator` itself in hs-router over HTTPS on the router's LAN address.

The key is root:hotspot-operator 0640, so the operator UI reads it and the residents' portal
(user hotspot, not in that group) does not. The admin's password goes to hotspotctl on stdin,
never on a command line, and is kept only in lab.json (0600) for the demo's text and the tests.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import ssl
from dataclasses import dataclass
from pathlib import Path

from devtools.lab.layout import LAN_ADDR, PORTAL_HOST, REPO
from devtools.lab.shell import LabError, run

ACCOUNTS = REPO / "scripts" / "lib" / "accounts.sh"
USER = "hotspot-operator"
PORT = 8444
ADMIN = "admin"


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    @property
    def der(self) -> bytes:
        return ssl.PEM_cert_to_DER_cert(self.cert.read_text())

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the certificate, `AB:CD:...` as browsers and hotspotctl show it."""
        digest = hashlib.sha256(self.der).hexdigest().upper()
        return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))

    @property
    def spki_sha256(self) -> str:
        """base64 SHA-256 of the public key, what Chromium's --ignore-certificate-errors-spki-list
        takes: a browser that trusts this one key and no other self-signed certificate."""
        pem = run("openssl", "x509", "-in", str(self.cert), "-noout", "-pubkey").stdout
        der = base64.b64decode(re.sub(r"-----[^-]+-----|\s", "", pem))
        return base64.b64encode(hashlib.sha256(der).digest()).decode()


def make_accounts() -> None:
    """Group and user hotspot and user hotspot-operator, as scripts/install makes them."""
    run("bash", str(ACCOUNTS), "accounts")


def make_certificate(state: Path, group: str | None) -> Certificate:
    """A self-signed certificate for portal.lan and the router's address, in the state dir."""
    pair = Certificate(state / "operator.crt", state / "operator.key")
    run("bash", str(ACCOUNTS), "certificate", str(pair.key), str(pair.cert), PORTAL_HOST,
        LAN_ADDR, *((group,) if group else ()))  # fmt: skip
    if group is None:  # the operator UI runs as root: nobody else's, whatever the dir's group
        pair.key.chmod(0o600)
    return pair


def add_admin(hotspotctl_path: str, config: Path) -> str:
    """The lab's admin account with a new random password, which is returned."""
    password = secrets.token_urlsafe(15)
    add_account(hotspotctl_path, config, ADMIN, "admin", password)
    return password


def add_account(hotspotctl_path: str, config: Path, name: str, role: str, password: str) -> None:
    """`hotspotctl operator add` with the password on stdin (a pipe: only we can read it)."""
    run(hotspotctl_path, "--config", str(config), "operator", "add", name, "--role", role,
        "--password-file", "/dev/stdin", input=password + "\n")  # fmt: skip


def url(host: str = PORTAL_HOST) -> str:
    return f"https://{host}:{PORT}/"


def readable_by(user: str, path: Path) -> bool:
    """Whether that Unix user (with its groups) may open the file."""
    probe = run("setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups",
                "head", "-c", "1", str(path), check=False)  # fmt: skip
    return probe.returncode == 0


def check_key(pair: Certificate, operator_user: str, portal_user: str) -> None:
    """The operator UI reads its key; the residents' portal does not."""
    if operator_user != "root" and not readable_by(operator_user, pair.key):
        raise LabError(f"{operator_user} cannot read {pair.key}")
    if portal_user != "root" and readable_by(portal_user, pair.key):
        raise LabError(f"the portal's user {portal_user} can read {pair.key}")
