"""What the portal's views share: the device asking, its session, asking the daemon, refusals."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from ipaddress import IPv4Address
from typing import Any

from flask import current_app, g, render_template, request
from flask_babel import gettext as _
from sqlalchemy.orm import Session as DB

from hotspotd.clock import Clock
from hotspotd.config import Config
from hotspotd.control import ControlClient, ControlError
from hotspotd.core import codes, plans, sessions
from hotspotd.errors import NotFound
from portal import i18n, security
from portal.online import OnlineAddresses


class Refusal(Exception):
    """A request the portal answers with a page that says why (always a 4xx or 503)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        form: str | None = None,
        retry_after: int = 0,
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.form = form  # which form to show again under the message: "login", "topup"
        self.retry_after = retry_after
        self.reason = reason  # the daemon's reason, when the refusal is the daemon's


def cfg() -> Config:
    config: Config = current_app.config["HOTSPOT"]
    return config


def db() -> DB:
    if "db" not in g:
        g.db = current_app.extensions["hotspot.sessionmaker"]()
    session: DB = g.db
    return session


def clock() -> Clock:
    the_clock: Clock = current_app.extensions["hotspot.clock"]
    return the_clock


def now() -> datetime:
    return clock().now()


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
    """Whether this address has an open session: from the in-memory set (see portal.online)."""
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
            policy=current_app.extensions["hotspot.free"],
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
    """One daemon operation; its error answer becomes a Refusal with a page for people."""
    client: ControlClient = current_app.extensions["hotspot.control"]
    online: OnlineAddresses = current_app.extensions["hotspot.online"]
    try:
        return client.call(op, **params)
    except ControlError as exc:
        raise refusal_of(exc, form) from None
    finally:
        online.forget()


def refusal_of(exc: ControlError, form: str | None) -> Refusal:
    """The page for a daemon's refusal, chosen by its stable (code, reason), never its text."""
    if exc.code == "throttled":
        wait = int(exc.extra.get("retry_after", 600))
        minutes = max(1, (wait + 59) // 60)
        return Refusal(
            429,
            _(
                "Too many wrong codes from this phone. Please wait %(minutes)d minutes, "
                "then try again.",
                minutes=minutes,
            ),
            retry_after=wait,
            reason=exc.reason,
        )
    found = REFUSALS.get((exc.code, exc.reason)) or REFUSALS_BY_CODE.get(exc.code)
    if found is None:
        return Refusal(503, unavailable(), reason=exc.reason)
    status, message, form_again = found
    return Refusal(status, message(), form=form if form_again else None, reason=exc.reason)


def unavailable() -> str:
    return _("The hotspot service is not running right now. Please try again in a minute.")


_Message = Callable[[], str]

# (the daemon's error code, its reason) -> (HTTP status, the page's message, whether the form
# comes back under it). One table: a core message can be reworded without touching the portal.
REFUSALS: dict[tuple[str, str], tuple[int, _Message, bool]] = {
    ("typo", "typo"): (
        400, lambda: _("This code has a typo: one character is wrong or two are swapped."), True
    ),
    ("not_found", "unknown_code"): (
        403, lambda: _("No voucher has this code. Please check the card."), True
    ),
    ("not_found", "not_logged_in"): (
        409, lambda: _("This phone is not logged in any more."), False
    ),
    ("voucher_rejected", "expired"): (403, lambda: _("This voucher's validity is over."), True),
    ("voucher_rejected", "used_up"): (
        403, lambda: _("This voucher's time or data is used up."), True
    ),
    ("voucher_rejected", "revoked"): (
        403, lambda: _("This voucher was cancelled by the operator."), True
    ),
    ("voucher_rejected", "free_used_up"): (
        403, lambda: _("Today's free internet is used up. Come back tomorrow."), False
    ),
    ("forbidden", "device_blocked"): (403, lambda: _("This phone is blocked by the operator."),
                                      False),
    ("forbidden", "free_not_offered"): (403, lambda: _("Free internet is not offered here."),
                                        False),
    ("no_mac", "no_mac"): (
        409,
        lambda: _("The router does not know this phone yet. Wait a moment and try again."),
        True,
    ),
    ("conflict", "has_voucher"): (
        409, lambda: _("This phone is already online with a voucher."), False
    ),
    ("conflict", "same_card"): (409, lambda: _("That is the code you are already using."), True),
    ("conflict", "free_no_topup"): (409, lambda: _("Free internet cannot be topped up."), True),
    ("conflict", "card_in_use"): (
        409, lambda: _("That code is in use already. Log in with it instead."), True
    ),
}  # fmt: skip

# A reason this portal does not know yet still gets a fitting page.
REFUSALS_BY_CODE: dict[str, tuple[int, _Message, bool]] = {
    "not_found": (403, lambda: _("No voucher has this code. Please check the card."), True),
    "voucher_rejected": (403, lambda: _("This voucher cannot be used."), True),
    "forbidden": (403, lambda: _("This phone is blocked by the operator."), False),
    "conflict": (409, lambda: _("That code is in use already. Log in with it instead."), True),
    "invalid": (400, lambda: _("That request was not understood."), True),
    "typo": (400, lambda: _("This code has a typo: one character is wrong or two are swapped."),
             True),
}  # fmt: skip


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
    cache: dict[tuple[str, str], tuple[float, str]] = current_app.extensions.setdefault(
        "hotspot.pages", {}
    )
    key = (name, i18n.select_locale())
    now_s = clock().monotonic()
    with _plans_lock:
        hit = cache.get(key)
    if hit is None or now_s - hit[0] >= _PLANS_TTL_S:
        g.csrf_placeholder = True
        try:
            html = render_template(template, **context())
        finally:
            g.pop("csrf_placeholder", None)
        hit = (now_s, html)
        with _plans_lock:
            cache[key] = hit
    return hit[1].replace(security.PLACEHOLDER, security.csrf_token())
