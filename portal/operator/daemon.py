"""How the operator's pages ask hotspotd for a change, and say its refusals in people's words.

Every kernel action of the operator's UI is one of hotspotd's operator operations, asked as the
signed-in account (`ui:<name>`). A refusal becomes a `Refused` whose message comes from one
table, by the daemon's stable (code, reason), never by its English text; a page may word a few
of them its own way (`also`), e.g. "invalid" on the devices page means a bad MAC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from flask_babel import gettext as _

from hotspotd.control.client import OperatorClient
from hotspotd.control.wire import ControlError
from hotspotd.errors import ClientError
from portal.operator.auth import actor
from portal.web import context


class Refused(Exception):
    """What to tell the operator, already in their words."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# By reason first, then by code: the daemon's (and core's) stable words for what went wrong.
BY_REASON: dict[str, Callable[[], str]] = {
    "unavailable": lambda: _(
        "hotspotd is not answering: nothing can be changed now. Try again in a minute."
    ),
    "denied": lambda: _("hotspotd does not take this from the operator UI's user."),
    "operator_only": lambda: _("hotspotd does not take this from the operator UI's user."),
    "nothing_to_add": lambda: _("Give more time (e.g. 1h) or more data (e.g. 500MB)."),
    "bad_amount": lambda: _("Write time like 30m, 1h or 1d and data like 500MB or 1GB."),
    "revoked": lambda: _("That voucher is revoked."),
    "unknown_code": lambda: _("No voucher has that code. Check it on the card."),
    "typo": lambda: _("No voucher has that code. Check it on the card."),
    "plan_exists": lambda: _("A plan with that name exists already."),
    "plan_retired": lambda: _("That plan is retired already."),
    "unknown_plan": lambda: _("There is no such plan."),
    "not_found": lambda: _("That device is not online any more."),
    "backup_failed": lambda: _(
        "The backup could not be made. Check that the router has free space, then try again."
    ),
}


def said(exc: ControlError | ClientError, also: Mapping[str, str] | None = None) -> str:
    reason, code = exc.reason or "", exc.code
    for key in (reason, code):
        if also and key in also:
            return also[key]
    for key in (reason, code):
        if key in BY_REASON:
            return BY_REASON[key]()
    if code == "invalid":  # core's own check (a price out of range, ...): its words, in English
        why = exc.message if isinstance(exc, ControlError) else str(exc)
        return _("That was refused: %(why)s", why=why)
    return _("That could not be done. Check the form and try again.")


def ask(op: str, *, also: Mapping[str, str] | None = None, **params: Any) -> Any:
    """One operator operation as the signed-in account; a refusal is raised as `Refused`."""
    client = OperatorClient(context.cfg().daemon.control_socket, actor(), timeout=10)
    try:
        return client.call(op, **params)
    except ControlError as exc:
        raise Refused(said(exc, also)) from None
