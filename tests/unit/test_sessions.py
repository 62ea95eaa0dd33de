"""Sessions in the database: login rules, shared allowance, counters, enforcement, desired state."""

from __future__ import annotations

from datetime import timedelta
from ipaddress import IPv4Address
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session as DB

from hotspotd.core import desired, enforcement, login, metering, plans, sessions, vouchers
from hotspotd.core.models import VoucherState
from hotspotd.core.plans import PlanTerms
from hotspotd.core.ports import Counters, DeviceKey, Rate
from hotspotd.core.sessions import FreePolicy
from hotspotd.errors import NotFound, VoucherRejected, VoucherTypo
from tests.conftest import NOW

TZ = ZoneInfo("Asia/Jakarta")
FREE = FreePolicy(
    enabled=True, time_s=1800, data_bytes=100_000_000, down_bps=1_000_000, up_bps=512_000
)
IP1, IP2, IP3 = (IPv4Address(f"10.66.0.{n}") for n in (11, 12, 13))
MAC1, MAC2, MAC3 = (f"02:00:00:00:00:0{n}" for n in (1, 2, 3))


def make(db: DB, name: str = "Harian", count: int = 1, **terms: int) -> list[str]:
    base = dict(
        price_rp=5000,
        validity_s=86400,
        time_s=3 * 3600,
        data_bytes=10**9,
        down_bps=2_000_000,
        up_bps=1_000_000,
        devices=1,
        idle_s=900,
    )
    base.update(terms)
    plans.add(db, name, PlanTerms(**base), NOW)
    _, made = vouchers.make_batch(db, plan_name=name, count=count, created_by="op", now=NOW)
    return [v.code for v in made]


def test_login_starts_voucher_and_is_kept_on_relogin(db: DB) -> None:
    (code,) = make(db)
    first = login.login_voucher(db, ip=IP1, mac=MAC1, code=code.lower(), now=NOW)
    assert not first.resumed and first.session.voucher is not None
    assert first.session.voucher.state is VoucherState.ACTIVE
    again = login.login_voucher(db, ip=IP1, mac=MAC1.upper(), code=code, now=NOW)
    assert again.resumed and again.session.id == first.session.id


def test_bad_codes_are_refused(db: DB) -> None:
    (code,) = make(db)
    with pytest.raises(VoucherTypo):
        login.login_voucher(
            db, ip=IP1, mac=MAC1, code=code[:-1] + ("2" if code[-1] != "2" else "3"), now=NOW
        )
    vouchers.revoke(db, code, actor="op", now=NOW)
    with pytest.raises(VoucherRejected):
        login.login_voucher(db, ip=IP1, mac=MAC1, code=code, now=NOW)


def test_device_limit_newest_takes_over_from_longest_unseen(db: DB) -> None:
    (code,) = make(db, devices=2)
    a = login.login_voucher(db, ip=IP1, mac=MAC1, code=code, now=NOW).session
    b = login.login_voucher(db, ip=IP2, mac=MAC2, code=code, now=NOW + timedelta(seconds=5))
    a.last_activity_at = NOW + timedelta(minutes=3)  # a is active, b went quiet
    c = login.login_voucher(db, ip=IP3, mac=MAC3, code=code, now=NOW + timedelta(minutes=4))
    assert [s.id for s in c.ended] == [b.session.id]
    assert b.session.end_reason == "replaced" and a.ended_at is None


def test_randomized_mac_keeps_exactly_what_was_left(db: DB) -> None:
    (code,) = make(db)
    old = login.login_voucher(db, ip=IP1, mac=MAC1, code=code, now=NOW).session
    metering.charge(db, {DeviceKey(IP1, MAC1): Counters(100_000, 400_000)}, NOW, 600)
    new = login.login_voucher(db, ip=IP2, mac=MAC2, code=code, now=NOW + timedelta(minutes=11))
    assert old.end_reason == "replaced"
    left = vouchers.standing_of(new.session.voucher, NOW + timedelta(minutes=11))  # type: ignore[arg-type]
    assert left.data_left == 10**9 - 500_000
    assert left.seconds_left == 3 * 3600 - 600


def test_address_taken_by_another_device_ends_the_old_session(db: DB) -> None:
    c1, c2 = make(db, count=2)
    old = login.login_voucher(db, ip=IP1, mac=MAC1, code=c1, now=NOW).session
    new = login.login_voucher(db, ip=IP1, mac=MAC2, code=c2, now=NOW)
    assert old.end_reason == "lease" and new.ended == [old]


def test_charge_shares_one_allowance_and_counts_time_once(db: DB) -> None:
    (code,) = make(db, devices=2)
    login.login_voucher(db, ip=IP1, mac=MAC1, code=code, now=NOW)
    login.login_voucher(db, ip=IP2, mac=MAC2, code=code, now=NOW)
    counters = {DeviceKey(IP1, MAC1): Counters(1000, 9000), DeviceKey(IP2, MAC2): Counters(50, 950)}
    report = metering.charge(db, counters, NOW + timedelta(seconds=10), 10)
    assert (report.sessions, report.bytes_up, report.bytes_down) == (2, 1050, 9950)
    v = vouchers.find(db, code)
    assert v.used_bytes == 11_000 and v.used_seconds == 10  # two devices, one clock
    # the next poll charges only the rise
    counters = {DeviceKey(IP1, MAC1): Counters(1500, 9000), DeviceKey(IP2, MAC2): Counters(50, 950)}
    metering.charge(db, counters, NOW + timedelta(seconds=20), 10)
    assert v.used_bytes == 11_500 and v.used_seconds == 20


def test_counters_that_went_backwards_are_not_lost_or_double_counted(db: DB) -> None:
    (code,) = make(db)
    s = login.login_voucher(db, ip=IP1, mac=MAC1, code=code, now=NOW).session
    key = DeviceKey(IP1, MAC1)
    metering.charge(db, {key: Counters(5000, 5000)}, NOW, 10)
    report = metering.charge(db, {key: Counters(300, 700)}, NOW, 10)  # table rebuilt
    assert report.resets == 1
    assert (s.bytes_up, s.bytes_down) == (5300, 5700)
    # rebuilt on purpose at start: the daemon re-baselines, then counts from zero exactly
    metering.rebaseline(db, [key])
    metering.charge(db, {key: Counters(100, 100)}, NOW, 10)
    assert (s.bytes_up, s.bytes_down) == (5400, 5800)


def test_enforce_each_reason(db: DB) -> None:
    codes_ = make(db, count=4)
    key = [DeviceKey(IPv4Address(f"10.66.1.{n}"), f"02:00:00:00:01:0{n}") for n in range(4)]
    ss = [
        login.login_voucher(db, ip=k.ip, mac=k.mac, code=c, now=NOW).session
        for k, c in zip(key, codes_, strict=True)
    ]
    metering.charge(db, {key[1]: Counters(10**9, 0)}, NOW, 0)  # data used up
    for s in ss:
        s.last_activity_at = NOW + timedelta(hours=1)
    ss[2].last_activity_at = NOW  # idle
    vouchers.revoke(db, codes_[3], actor="op", now=NOW)
    ended = dict(
        (s.id, r)
        for s, r in enforcement.enforce(db, NOW + timedelta(hours=1, minutes=5), policy=FREE, tz=TZ)
    )
    assert ended == {ss[1].id: "data", ss[2].id: "idle", ss[3].id: "revoked"}
    assert ss[1].voucher.state is VoucherState.USED_UP  # type: ignore[union-attr]
    assert ss[2].voucher.state is VoucherState.ACTIVE  # idle ends the session, not the voucher
    later = NOW + timedelta(days=1, minutes=1)
    ended = enforcement.enforce(db, later, policy=FREE, tz=TZ)
    assert [(s.id, r) for s, r in ended] == [(ss[0].id, "validity")]
    assert ss[0].voucher.state is VoucherState.EXPIRED  # type: ignore[union-attr]


def test_validity_waits_for_ntp(db: DB) -> None:
    (code,) = make(db, idle_s=None)  # type: ignore[arg-type]
    s = login.login_voucher(db, ip=IP1, mac=MAC1, code=code, now=NOW).session
    from datetime import UTC, datetime

    boot_1970 = datetime(1970, 1, 1, 0, 5, tzinfo=UTC)
    assert enforcement.enforce(db, boot_1970, policy=FREE, tz=TZ) == []
    assert s.ended_at is None


def test_free_allowance_per_device_per_local_day(db: DB) -> None:
    with pytest.raises(sessions.Forbidden):
        login.login_free(db, ip=IP1, mac=MAC1, now=NOW, policy=FreePolicy(), tz=TZ)
    s = login.login_free(db, ip=IP1, mac=MAC1, now=NOW, policy=FREE, tz=TZ).session
    metering.charge(db, {DeviceKey(IP1, MAC1): Counters(0, 0)}, NOW, 1800)
    ended = enforcement.enforce(db, NOW + timedelta(minutes=30), policy=FREE, tz=TZ)
    assert [(x.id, r) for x, r in ended] == [(s.id, "time")]
    with pytest.raises(VoucherRejected, match="tomorrow"):
        login.login_free(db, ip=IP1, mac=MAC1, now=NOW + timedelta(hours=1), policy=FREE, tz=TZ)
    # another phone still has its own allowance
    login.login_free(db, ip=IP2, mac=MAC2, now=NOW + timedelta(hours=1), policy=FREE, tz=TZ)
    # NOW is 10:00 in Jakarta; after local midnight (17:00 UTC) the first phone may come back
    next_day = NOW + timedelta(hours=14, minutes=1)
    login.login_free(db, ip=IP1, mac=MAC1, now=next_day, policy=FREE, tz=TZ)


def test_desired_state_from_the_database(db: DB) -> None:
    c1, c2 = make(db, count=2)
    login.login_voucher(db, ip=IP1, mac=MAC1, code=c1, now=NOW)
    login.login_free(db, ip=IP2, mac=MAC2, now=NOW, policy=FREE, tz=TZ)
    sessions.set_flag(db, mac="02:00:00:00:00:aa", flag="trusted", value=True, actor="op", now=NOW)
    login.login_voucher(db, ip=IP3, mac=MAC3, code=c2, now=NOW)
    sessions.set_flag(db, mac=MAC3, flag="blocked", value=True, actor="op", now=NOW)
    want = desired.state(db, garden=[IPv4Address("10.66.0.1")], policy=FREE)
    assert want.authorized == {
        DeviceKey(IP1, MAC1): Rate(2_000_000, 1_000_000),
        DeviceKey(IP2, MAC2): Rate(1_000_000, 512_000),
    }
    assert want.trusted == {"02:00:00:00:00:aa"} and want.blocked == {MAC3}
    assert want.garden == {IPv4Address("10.66.0.1")}


def test_logout_status_and_extend(db: DB) -> None:
    (code,) = make(db)
    login.login_voucher(db, ip=IP1, mac=MAC1, code=code, now=NOW)
    st = sessions.status(db, ip=IP1, now=NOW, policy=FREE, tz=TZ)
    assert (st.plan, st.seconds_left, st.data_left, st.devices) == ("Harian", 10800, 10**9, 1)
    sessions.extend(db, code=code, seconds=3600, data_bytes=10**8, actor="op", now=NOW)
    st = sessions.status(db, ip=IP1, now=NOW, policy=FREE, tz=TZ)
    assert (st.seconds_left, st.data_left) == (14400, 1_100_000_000)
    login.logout(db, ip=IP1, now=NOW)
    with pytest.raises(NotFound):
        sessions.status(db, ip=IP1, now=NOW, policy=FREE, tz=TZ)
    with pytest.raises(NotFound):
        login.logout(db, ip=IP1, now=NOW)


def test_free_policy_from_config_takes_the_free_table() -> None:
    from hotspotd.config import FreeAllowanceConfig

    cfg = FreeAllowanceConfig(
        enabled=True, time_s=1800, data_bytes=100_000_000, down_bps=1_000_000, up_bps=512_000
    )
    assert FreePolicy.from_config(cfg) == FREE
    assert FreePolicy.from_config(FreeAllowanceConfig(enabled=False, time_s=None)) == FreePolicy(
        False, None, 100 * 10**6, 1_000_000, 512_000
    )
