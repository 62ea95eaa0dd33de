"""What the residents' views share: the device asking, its session, asking the daemon."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from flask import current_app, g, render_template, request
from flask_babel import gettext as _

from hotspotd.config import Config
from hotspotd.core import codes, plans, sessions
from hotspotd.errors import NotFound
from portal.residents.online import OnlineAddresses
from portal.web import daemon_client, i18n, security, settings
from portal.web.context import cfg, clock, db, now
from portal.web.errors import Refusal


def device_ip() -> IPv4Address | None:
    """The phone's own address (the firewall's DNAT keeps it), if it is on the hotspot's LAN."""
    try:
        ip = IPv4Address(request.remote_addr or "")
    except ValueError:
        return None
    return ip if ip in cfg().network.lan_prefix else None


def require_device() -> IPv4Address:
    ip = device_ip()
    if ip is None:
        raise Refusal(403, _("This works only on the hotspot's Wi-Fi."))
    return ip


def logged_in(ip: IPv4Address | None) -> bool:
    """Whether this address has an open session: from the in-memory set (residents.online)."""
    if ip is None:
        return False
    online: OnlineAddresses = current_app.extensions["hotspot.online"]
    return ip in online


def status_of(ip: IPv4Address | None) -> sessions.Status | None:
    """This device's session, read through the core (no daemon round trip)."""
    if ip is None or not logged_in(ip):
        return None
    try:
        return sessions.status(
            db(),
            ip=ip,
            now=now(),
            policy=settings.current().free,
            tz=cfg().village.tz,
        )
    except NotFound:
        return None


def portal_url_of(config: Config, path: str = "/") -> str:
    p = config.portal
    port = "" if p.port == 80 else f":{p.port}"
    return f"http://{p.hostname}{port}{path}"


def portal_url(path: str = "/") -> str:
    return portal_url_of(cfg(), path)


def https_url(path: str = "/") -> str:
    p = cfg().portal
    if not p.https:
        return portal_url(path)
    port = "" if p.https_port == 443 else f":{p.https_port}"
    return f"https://{p.hostname}{port}{path}"


def typo_message(check: codes.CodeCheck) -> str:
    if check.problem is codes.CodeProblem.EMPTY:
        return _("Please type the code from your voucher card.")
    if check.problem is codes.CodeProblem.LENGTH:
        return _("A code has 9 letters and digits, or 11 digits. Please check it.")
    if check.problem is codes.CodeProblem.CHARACTER:
        return _("Codes never contain 0, O, 1, I or L. Please check the card again.")
    return _("This code has a typo: one character is wrong or two are swapped.")


def ask(op: str, form: str | None = None, **params: Any) -> Any:
    """One daemon operation (portal.web.daemon_client); the online set is read again after it,
    since the daemon may have changed it."""
    online: OnlineAddresses = current_app.extensions["hotspot.online"]
    try:
        return daemon_client.ask(op, form, **params)
    finally:
        online.forget()


@dataclass(frozen=True)
class PlanCard:
    name: str
    price_rp: int
    time_s: int | None
    data_bytes: int | None
    validity_s: int | None


_PLANS_TTL_S = 30.0
_plans_lock = threading.Lock()


def plan_cards() -> list[PlanCard]:
    """The plans on sale, kept for half a minute: every phone's welcome page shows them, and
    200 phones after a power cut should not make 200 identical queries."""
    cache: dict[str, Any] = current_app.extensions.setdefault("hotspot.plans", {})
    with _plans_lock:
        if "at" in cache and clock().monotonic() - cache["at"] < _PLANS_TTL_S:
            cards: list[PlanCard] = cache["cards"]
            return cards
    cards = [
        PlanCard(p.name, p.price_rp, p.time_s, p.data_bytes, p.validity_s)
        for p, _n, _u in plans.listing(db())
    ]
    with _plans_lock:
        cache.update(at=clock().monotonic(), cards=cards)
    return cards


def kept_page(name: str, template: str, context: Callable[[], dict[str, object]]) -> str:
    """A page that is the same for every phone not logged in, rendered once per language and
    kept as long as the plan cards; only the CSRF token is put in per phone.

    After a power cut every phone asks for the welcome page at once: rendering it each time
    would cost more than everything else the request does.
    """
    cache: dict[tuple[str, str], tuple[float, object, str]] = current_app.extensions.setdefault(
        "hotspot.pages", {}
    )
    key = (name, i18n.select_locale())
    now_s = clock().monotonic()
    in_force = settings.current()  # a new name or message shows at once, not in 30 s
    with _plans_lock:
        hit = cache.get(key)
    if hit is None or now_s - hit[0] >= _PLANS_TTL_S or hit[1] != in_force:
        g.csrf_placeholder = True
        try:
            html = render_template(template, **context())
        finally:
            g.pop("csrf_placeholder", None)
        hit = (now_s, in_force, html)
        with _plans_lock:
            cache[key] = hit
    return hit[2].replace(security.PLACEHOLDER, security.csrf_token())
