"""The admin's operator operations: the settings in force, and a backup made now.

Here rather than in `ops` (which puts them in its table) to keep each module short. Both are
operations of hotspotd because it is the one that may do them in one place: it writes and audits
a setting in one transaction and puts it in the kernel before it answers (a new free speed
reaches the phones already on the free allowance), and as root it writes a backup where only the
operator UI's group may read it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session as DB

from hotspotd import config as config_mod
from hotspotd.backup import BackupError, DatabaseBusy, on_demand
from hotspotd.control.params import Changes, Field, Text
from hotspotd.core import audit, settings
from hotspotd.errors import Conflict, DatabaseNotReady

log = logging.getLogger("hotspotd.control")


class Admin(Protocol):
    """What these operations need of the daemon (a part of `ops.Service`)."""

    cfg: config_mod.Config
    settings: settings.Live

    def now(self) -> datetime: ...

    def transaction(self) -> contextlib.AbstractContextManager[DB]: ...

    def reconcile(self) -> Any: ...

    def enforce(self) -> list[tuple[Any, str]]: ...


class Asker(Protocol):
    @property
    def actor(self) -> str: ...


def settings_set(svc: Admin, a: Mapping[str, Any], who: Asker) -> dict[str, Any]:
    """Set some settings (text in the config's units) or put them back to the default (null);
    the free sessions get the new limits and speed before the answer goes back."""
    with svc.transaction() as tx:
        now = svc.now()
        settings.change(tx, a["changes"], defaults=svc.settings.defaults, actor=who.actor,
                        now=now)  # fmt: skip
        answer = settings.record(svc.settings.get(tx))
    svc.enforce()  # free allowance off, or a smaller one already used up: those sessions end
    svc.reconcile()  # a new free speed for the phones on it
    return answer


def backup_now(svc: Admin, a: Mapping[str, Any], who: Asker) -> dict[str, Any]:
    """A backup in the state folder's backups, readable by the operator UI's group only."""
    now = svc.now()
    try:
        dest = on_demand(svc.cfg, now)
    except (BackupError, DatabaseBusy, DatabaseNotReady) as exc:
        raise Conflict(str(exc), reason="backup_failed") from None
    with svc.transaction() as tx:
        audit.record(tx, now, who.actor, "backup.make", dest.name)
    return {"name": dest.name, "size": dest.stat().st_size}


SETTINGS_PARAMS: Mapping[str, Field] = {
    "changes": Changes(
        {key: Text(settings.MESSAGE_MAX * 2, required=False) for key in settings.SPECS}
    )
}
