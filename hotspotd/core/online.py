"""Who is online, a page at a time: the operator's list of 2,000 devices without loading 2,000.

The order is decided on what is cheap to have for every open session — its id, its address
and the rates the daemon holds in memory from its last two polls — and only the page shown is
loaded with its device, voucher and plan, and what is left on its card. So a page costs about
the same with 20 devices online as with 2,000, and so does the answer on the socket.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session as DB

from hotspotd.core import queries, records

PER_PAGE = 25
MAX_PER_PAGE = 100
MAX_FIND = 40  # characters of a search: a part of an address, MAC, name or code

RatesOf = Callable[[int], tuple[int, int]]  # a session's id → (down, up) bit/s now


class Order(enum.StrEnum):
    BUSIEST = "busiest"  # down and up together, fastest first; then by address
    ADDRESS = "address"


@dataclass(frozen=True)
class Page:
    devices: list[records.OnlineRecord]
    online: int  # every open session
    found: int  # those the search matched (all of them without a search)
    page: int  # the page given, after clamping to the last one
    pages: int
    per_page: int


def page_of(
    db: DB,
    now: datetime,
    rates_of: RatesOf,
    *,
    page: int = 1,
    per_page: int = PER_PAGE,
    order: Order = Order.BUSIEST,
    find: str = "",
) -> Page:
    """One page of the devices online that match `find`, in `order`; a page past the end is
    the last one, so a list that shrank between two clicks still shows something."""
    per_page = min(MAX_PER_PAGE, max(1, per_page))
    find = find.strip()[:MAX_FIND]
    matching = queries.open_matching(db, find)
    online = queries.count_open(db) if find else len(matching)
    pages = max(1, -(-len(matching) // per_page))
    page = min(pages, max(1, page))
    shown = ordered(matching, rates_of, order)[(page - 1) * per_page : page * per_page]
    sessions = queries.with_details(db, [id_ for id_, _ip in shown])
    devices = [
        records.online_record(sessions[id_], now, *rates_of(id_))
        for id_, _ip in shown
        if id_ in sessions
    ]
    return Page(devices, online, len(matching), page, pages, per_page)


def ordered(
    sessions: Sequence[tuple[int, str]], rates_of: RatesOf, order: Order
) -> list[tuple[int, str]]:
    """(id, address) pairs in the page's order; ties by address (as a number), then by id."""

    def by_address(row: tuple[int, str]) -> tuple[int, ...]:
        # the four numbers of a dotted quad: a quarter of the cost of parsing an IPv4Address,
        # which for 2,000 devices was most of the page's time in hotspotd
        return (*map(int, row[1].split(".")), row[0])

    if order is Order.ADDRESS:
        return sorted(sessions, key=by_address)
    return sorted(sessions, key=lambda row: (-sum(rates_of(row[0])), *by_address(row)))


def page_record(found: Page) -> records.OnlinePageRecord:
    return {
        "devices": found.devices,
        "online": found.online,
        "found": found.found,
        "page": found.page,
        "pages": found.pages,
        "per_page": found.per_page,
    }
