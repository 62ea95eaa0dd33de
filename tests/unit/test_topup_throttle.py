"""Top-up with a second card, and the wrong-code throttle, in the core and through the daemon."""

# ruff: noqa: F811  (pytest fixtures imported from test_daemon are used as parameters)

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from sqlalchemy import Engine, select

from hotspotd import config
from hotspotd.control import ControlError
from hotspotd.control.server import ControlServer
from hotspotd.core import codes, login, plans, sessions, vouchers
from hotspotd.core import db as dbmod
from hotspotd.core.models import AuditEvent, VoucherState
from hotspotd.core.plans import PlanTerms
from hotspotd.core.throttle import GuessThrottle, ThrottlePolicy
from hotspotd.errors import Conflict, NotFound, VoucherRejected, VoucherTypo
from tests.conftest import NOW
from tests.unit.test_daemon import PHONE1, PHONE2, Rig, cfg, codes_, rig  # noqa: F401


def typo_of(code: str) -> str:
    wrong = "2" if code[0] != "2" else "3"
    return wrong + code[1:]


# -- throttle, pure -------------------------------------------------------------------------


def test_five_wrong_codes_in_ten_minutes_stop_a_device_until_the_first_ages_out() -> None:
    t = GuessThrottle()
    for i in range(5):
        assert t.retry_after("a", 100.0 + i) == 0
        t.miss("a", 100.0 + i)
    assert t.retry_after("a", 105.0) == 595  # the first miss (at 100) leaves at 700
    assert t.retry_after("b", 105.0) == 0  # another device is not punished
    assert t.retry_after("a", 699.0) == 1
    assert t.retry_after("a", 700.0) == 0
    t.miss("a", 700.0)
    assert t.retry_after("a", 700.5) == 1  # five again: 101..104 and 700, until 101 leaves
    assert t.retry_after("a", 701.0) == 0


def test_overall_limit_catches_a_guesser_who_changes_identity() -> None:
    t = GuessThrottle(ThrottlePolicy(per_device=5, overall=10, window_s=600))
    for i in range(10):
        t.miss(f"mac-{i}", float(i))
    assert t.guessing(10.0) == 590
    assert t.retry_after("fresh-device", 10.0) == 0  # a device of its own is not refused
    assert t.guessing(599.5) == 1
    assert t.guessing(600.0) == 0


def test_memory_is_bounded() -> None:
    t = GuessThrottle(ThrottlePolicy(max_devices=100))
    for i in range(1000):
        t.miss(f"d{i}", float(i) / 1000)
    assert len(t._devices) == 100
    assert len(t._overall) == t.policy.overall


# -- top-up, core ---------------------------------------------------------------------------


@pytest.fixture
def tx(engine: Engine):  # type: ignore[no-untyped-def]
    with dbmod.make_sessionmaker(engine).begin() as s:
        plans.add(s, "Jam", PlanTerms(price_rp=2000, validity_s=86400, time_s=3600,
                                      data_bytes=1_000_000_000, devices=2), NOW)  # fmt: skip
        plans.add(s, "Seminggu", PlanTerms(price_rp=20000, validity_s=7 * 86400,
                                           data_bytes=5_000_000_000), NOW)  # fmt: skip
        plans.add(s, "Bebas", PlanTerms(price_rp=30000, validity_s=7 * 86400), NOW)
        yield s


def card(tx, plan: str) -> str:  # type: ignore[no-untyped-def]
    import secrets

    _, (v,) = vouchers.make_batch(
        tx, plan_name=plan, count=1, created_by="t", now=NOW, batch_name=secrets.token_hex(4)
    )
    return v.code


def test_top_up_adds_the_cards_time_and_data_and_uses_the_card_up(tx) -> None:  # type: ignore[no-untyped-def]
    first, second = card(tx, "Jam"), card(tx, "Jam")
    login.login_voucher(tx, ip=PHONE1.ip, mac=PHONE1.mac, code=first, now=NOW)
    done = login.top_up(tx, ip=PHONE1.ip, code=codes.display(second).lower(), now=NOW)
    assert (done.seconds, done.data_bytes) == (3600, 1_000_000_000)
    st = vouchers.standing_of(done.voucher, NOW)
    assert st.seconds_left == 7200 and st.data_left == 2_000_000_000
    assert done.added.state is VoucherState.USED_UP and done.added.first_used_at == NOW
    event = tx.scalar(select(AuditEvent).where(AuditEvent.action == "voucher.topup"))
    assert event is not None and event.subject == second and first in event.detail
    # the card cannot be used again, neither to log in nor to top up
    with pytest.raises(VoucherRejected) as caught:
        login.login_voucher(tx, ip=PHONE2.ip, mac=PHONE2.mac, code=second, now=NOW)
    assert caught.value.state == "used_up"
    with pytest.raises(VoucherRejected):
        login.top_up(tx, ip=PHONE1.ip, code=second, now=NOW)


def test_top_up_with_a_plan_without_online_time_adds_its_validity(tx) -> None:  # type: ignore[no-untyped-def]
    first, week = card(tx, "Jam"), card(tx, "Seminggu")
    login.login_voucher(tx, ip=PHONE1.ip, mac=PHONE1.mac, code=first, now=NOW)
    done = login.top_up(tx, ip=PHONE1.ip, code=week, now=NOW)
    assert done.seconds == 7 * 86400 and done.data_bytes == 5_000_000_000


def test_a_card_without_a_limit_is_not_added_as_nothing(tx) -> None:  # type: ignore[no-untyped-def]
    first, unlimited = card(tx, "Jam"), card(tx, "Bebas")
    login.login_voucher(tx, ip=PHONE1.ip, mac=PHONE1.mac, code=first, now=NOW)
    with pytest.raises(sessions.WiderCard):
        login.top_up(tx, ip=PHONE1.ip, code=unlimited, now=NOW)
    assert vouchers.find(tx, unlimited).state is VoucherState.UNUSED  # nothing was spent


def test_top_up_refusals(tx) -> None:  # type: ignore[no-untyped-def]
    first, other, revoked = card(tx, "Jam"), card(tx, "Jam"), card(tx, "Jam")
    with pytest.raises(sessions.NotLoggedIn):
        login.top_up(tx, ip=PHONE1.ip, code=other, now=NOW)
    login.login_voucher(tx, ip=PHONE1.ip, mac=PHONE1.mac, code=first, now=NOW)
    with pytest.raises(Conflict, match="already in use on this device"):
        login.top_up(tx, ip=PHONE1.ip, code=first, now=NOW)
    with pytest.raises(VoucherTypo):
        login.top_up(tx, ip=PHONE1.ip, code=typo_of(other), now=NOW)
    with pytest.raises(NotFound):
        login.top_up(tx, ip=PHONE1.ip, code=codes.make(), now=NOW)
    vouchers.revoke(tx, revoked, actor="t", now=NOW)
    with pytest.raises(VoucherRejected) as caught:
        login.top_up(tx, ip=PHONE1.ip, code=revoked, now=NOW)
    assert caught.value.state == "revoked"
    login.login_voucher(tx, ip=PHONE2.ip, mac=PHONE2.mac, code=other, now=NOW)
    with pytest.raises(Conflict, match="in use already"):
        login.top_up(tx, ip=PHONE1.ip, code=other, now=NOW)


def test_free_session_cannot_be_topped_up(tx) -> None:  # type: ignore[no-untyped-def]
    policy = sessions.FreePolicy(enabled=True, time_s=600)
    login.login_free(tx, ip=PHONE1.ip, mac=PHONE1.mac, now=NOW, policy=policy, tz=NOW.tzinfo)  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="free allowance"):
        login.top_up(tx, ip=PHONE1.ip, code=card(tx, "Jam"), now=NOW)


# -- through the daemon ---------------------------------------------------------------------


def test_op_topup_through_the_daemon(rig: Rig, codes_: list[str]) -> None:
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    st = rig.call("topup", ip=str(PHONE1.ip), code=codes_[1])
    assert st["seconds_left"] == 7200 and st["data_left"] == 20_000_000  # type: ignore[index]
    with pytest.raises(NotFound):
        rig.call("topup", ip=str(PHONE2.ip), code=codes_[2])


def test_daemon_throttles_wrong_codes_per_device_and_typos_count(
    rig: Rig, codes_: list[str]
) -> None:
    ip = str(PHONE1.ip)
    for _ in range(2):
        with pytest.raises(VoucherTypo):
            rig.call("login", ip=ip, code=typo_of(codes_[0]))
    assert rig.call("wrong_code", ip=ip) == {"misses": 3}  # a typo the portal caught itself
    with pytest.raises(NotFound):
        rig.call("login", ip=ip, code=codes.make())
    with pytest.raises(NotFound):
        rig.call("topup", ip=ip, code=codes.make())  # not logged in: not a wrong code
    with pytest.raises(NotFound):
        rig.call("login", ip=ip, code=codes.make())
    with pytest.raises(ControlError) as caught:  # even a good code waits now
        rig.call("login", ip=ip, code=codes_[0])
    assert caught.value.code == "throttled" and caught.value.extra["retry_after"] == 600
    assert rig.fw.state().authorized == frozenset()
    # the other phone is not affected, and after ten minutes the first may try again
    assert rig.call("login", ip=str(PHONE2.ip), code=codes_[1])["plan"] == "Harian"  # type: ignore[index]
    rig.clock.advance(minutes=10)
    assert rig.call("login", ip=ip, code=codes_[0])["plan"] == "Harian"  # type: ignore[index]


def test_throttled_answer_on_the_socket_carries_retry_after(rig: Rig) -> None:
    from hotspotd.control.server import ControlServer, Peer

    portal = Peer(pid=2, uid=999, gid=999)  # the residents' portal's user
    server = ControlServer.__new__(ControlServer)
    server.handler = rig.d.handle
    for _ in range(5):
        server.answer(b'{"op":"wrong_code","ip":"10.66.0.11"}', portal)
    answer = server.answer(b'{"op":"wrong_code","ip":"10.66.0.11"}', portal)
    assert answer["ok"] is False and answer["error"] == "throttled"
    assert answer["retry_after"] == 600


def test_ten_phones_typing_badly_never_lock_out_a_good_card(rig: Rig, codes_: list[str]) -> None:
    """The review's attack: 10 MACs x 5 wrong codes made a third phone's valid card wait."""
    for i in range(10):
        ip = f"10.66.0.{100 + i}"
        rig.macs[IPv4Address(ip)] = f"02:00:00:00:01:{i:02x}"
        for _ in range(5):
            with pytest.raises(NotFound):
                rig.call("login", ip=ip, code=codes.make())
    assert rig.d.guesses.guessing(rig.d.clock.monotonic()) > 0  # the hotspot is guessed at
    # a wrong code from anyone is now told to wait...
    with pytest.raises(ControlError) as caught:
        rig.call("login", ip=str(PHONE2.ip), code=codes.make())
    assert caught.value.code == "throttled"
    # ...but a good card logs in, and the operator can see it did while guessing went on
    assert rig.call("login", ip=str(PHONE1.ip), code=codes_[0])["plan"] == "Harian"  # type: ignore[index]
    assert rig.fw.state().authorized == {PHONE1}
    with dbmod.make_sessionmaker(rig.d.engine)() as db:
        event = db.scalar(select(AuditEvent).where(AuditEvent.action == "voucher.guess_window"))
        assert event is not None and event.subject == PHONE1.mac


def test_a_card_without_a_data_limit_onto_a_limited_one_switches_to_it(
    rig: Rig, codes_: list[str], engine: Engine
) -> None:
    """Before, its unlimited data was added as 0 bytes."""
    with dbmod.make_sessionmaker(engine).begin() as db:
        plans.add(db, "Bebas", PlanTerms(price_rp=20000, validity_s=86400), NOW)
        _, (card,) = vouchers.make_batch(db, plan_name="Bebas", count=1, created_by="t", now=NOW)
        wide = card.code
    rig.call("login", ip=str(PHONE1.ip), code=codes_[0])
    got = rig.call("topup", ip=str(PHONE1.ip), code=wide)
    assert got["switched"] is True and got["plan"] == "Bebas"  # type: ignore[index]
    assert got["data_left"] is None  # type: ignore[index]
    with dbmod.make_sessionmaker(engine)() as db:
        old = vouchers.find(db, codes_[0])
        assert old.state is VoucherState.ACTIVE  # what was left of it is kept for later
    # a limited card onto a limited one is still added up
    rig.call("login", ip=str(PHONE2.ip), code=codes_[1])
    got = rig.call("topup", ip=str(PHONE2.ip), code=codes_[2])
    assert got["switched"] is False and got["data_left"] == 20_000_000  # type: ignore[index]


def test_the_portal_says_the_phone_is_on_the_new_card(
    rig: Rig, codes_: list[str], engine: Engine, cfg: config.Config
) -> None:
    from portal.app import create_app
    from tests.unit.test_portal import Phone

    with dbmod.make_sessionmaker(engine).begin() as db:
        plans.add(db, "Bebas", PlanTerms(price_rp=20000, validity_s=86400), NOW)
        _, (card,) = vouchers.make_batch(db, plan_name="Bebas", count=1, created_by="t", now=NOW)
        wide = card.code
    server = ControlServer(cfg.daemon.control_socket, rig.d.handle, group=None)
    server.start()
    try:
        phone = Phone(create_app(cfg, {"TESTING": True}, clock=rig.clock), str(PHONE1.ip))
        assert phone.post("/login", {"code": codes_[0]}).status_code == 303
        done = phone.post("/topup", {"code": wide})
        assert done.headers["Location"] == "/status?switched=1"
        page = phone.get("/status?switched=1").get_data(as_text=True)
        assert "Sekarang Anda memakai kartu baru" in page and "Bebas" in page
    finally:
        server.stop()
