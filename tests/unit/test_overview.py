"""The dashboard's day: today is the village's local day, sales are cards first used today."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from hotspotd.core import login, overview, plans, sessions, vouchers
from hotspotd.core.plans import PlanTerms

WIB = ZoneInfo("Asia/Jakarta")


def test_today_counts_the_local_day_only(db: Session) -> None:
    # 23:30 WIB on 2 Dec is 16:30 UTC; the village's 3 Dec begins 30 minutes later
    late = datetime(2026, 12, 2, 16, 30, tzinfo=UTC)
    plans.add(db, "Harian", PlanTerms(price_rp=5000, validity_s=86400), late)
    _, made = vouchers.make_batch(db, plan_name="Harian", count=3, created_by="t", now=late)
    login.login_voucher(db, ip=IPv4Address("10.66.0.11"), mac="02:00:00:00:00:01",
                        code=made[0].code, now=late)  # fmt: skip
    next_day = late + timedelta(hours=1)  # 00:30 WIB, 3 Dec
    login.login_voucher(db, ip=IPv4Address("10.66.0.12"), mac="02:00:00:00:00:02",
                        code=made[1].code, now=next_day)  # fmt: skip
    free = sessions.FreePolicy(True, 1800, None, None, None)
    login.login_free(db, ip=IPv4Address("10.66.0.13"), mac="02:00:00:00:00:03", now=next_day,
                     policy=free, tz=WIB)  # fmt: skip
    seen = overview.today(db, next_day, WIB)
    assert seen.online == 3  # the first one is still on, from yesterday
    assert (seen.sessions, seen.devices, seen.free_devices) == (2, 2, 1)
    assert (seen.vouchers_used, seen.sales_rp) == (1, 5000)  # yesterday's sale stays there
    yesterday = overview.today(db, late, WIB)
    assert (yesterday.vouchers_used, yesterday.sales_rp, yesterday.sessions) == (1, 5000, 1)
