"""The refusals every surface shares: `Refusal`, and the page for each error of the daemon.

A view that cannot do what was asked raises a `Refusal` (a status and a message for people);
each surface's error handler renders it in its own templates. A daemon's error answer becomes
one here, chosen by its stable (code, reason) in one table, never by its English text.
"""

from __future__ import annotations

from collections.abc import Callable

from flask_babel import gettext as _

from hotspotd.control import ControlError


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
