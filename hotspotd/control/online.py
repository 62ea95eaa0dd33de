"""The `online` operator operation: who is online, all of them or a page at a time.

Here rather than in `ops` (which puts it in its table) to keep each module short. Asked with
no parameters it answers, as it always has, the list of every device online, ordered by
session (what `hotspotctl online` prints, and `--json` as is). Asked with any of `page`,
`per_page`, `order` or `find` it answers one page as an object — `devices` (the same records),
`online`, `found`, `page`, `pages`, `per_page` — the busiest first unless `order` says
"address", and only the devices shown are loaded: what the operator UI's page asks for.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.orm import Session as DB

from hotspotd.control.params import Choice, OptionalInteger, Schema, Text
from hotspotd.core import online, queries, records


class Lister(Protocol):
    """What this operation needs of the daemon (a part of `ops.Service`)."""

    def now(self) -> datetime: ...

    def transaction(self) -> contextlib.AbstractContextManager[DB]: ...

    def rates_of(self, session_id: int) -> tuple[int, int]: ...


PARAMS: Schema = {
    "page": OptionalInteger(1, 10**6),
    "per_page": OptionalInteger(1, online.MAX_PER_PAGE),
    "order": Choice(tuple(online.Order)),
    "find": Text(online.MAX_FIND, required=False),
}


def run(svc: Lister, a: Mapping[str, Any], who: object) -> Any:
    now = svc.now()
    with svc.transaction() as tx:
        if all(value is None for value in a.values()):
            return [
                dict(records.online_record(s, now, *svc.rates_of(s.id)))
                for s in queries.open_sessions(tx, with_details=True)
            ]
        found = online.page_of(
            tx,
            now,
            svc.rates_of,
            page=a["page"] or 1,
            per_page=a["per_page"] or online.PER_PAGE,
            order=online.Order(a["order"] or online.Order.BUSIEST),
            find=a["find"] or "",
        )
        return online.page_record(found)
