"""Operator accounts: argon2id passwords, sign-in with backoff, web sessions, the last admin."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

import pytest
from argon2 import PasswordHasher, Type
from argon2.exceptions import VerifyMismatchError
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as DB

from hotspotd.core import db as dbmod
from hotspotd.core import operators
from hotspotd.core.models import AuditEvent, LoginFailure, Operator, OperatorSession, Role
from hotspotd.core.operators import LoginRefused
from hotspotd.errors import Conflict, InvalidInput, NotFound
from tests.conftest import NOW

PW = "kopi-tubruk-pagi"
ADDR = "10.66.0.5"


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


@pytest.fixture(autouse=True)
def cheap_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id at its smallest cost, for speed, but where a test asks for the real one."""
    if "real_hashing" not in request.fixturenames:
        cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID)
        monkeypatch.setattr(operators, "_HASHER", cheap)


@pytest.fixture
def real_hashing() -> None:
    assert operators._HASHER.type is Type.ID


@pytest.fixture
def siti(db: DB) -> Operator:
    op = operators.add(db, "Siti", Role.ADMIN, PW, actor="cli:root", now=NOW)
    db.commit()
    return op


def refused(
    db: DB, username: str, password: str, *, address: str = ADDR, at: datetime = NOW
) -> LoginRefused:
    with pytest.raises(LoginRefused) as caught:
        operators.log_in(db, username, password, address=address, now=at)
    return caught.value


# ---------------------------------------------------------------- passwords and accounts


def test_hash_is_argon2id_salted_and_verifies(real_hashing: None) -> None:
    first, second = operators.hash_password(PW), operators.hash_password(PW)
    assert first.startswith("$argon2id$") and first != second  # salted
    assert PW not in first
    hasher = PasswordHasher()
    assert hasher.verify(first, PW)
    with pytest.raises(VerifyMismatchError):
        hasher.verify(first, PW + "x")


def test_add_stores_lowercase_hash_and_audits_without_the_password(db: DB, siti: Operator) -> None:
    assert (siti.username, siti.role, siti.created_at, siti.disabled_at) == (
        "siti",
        Role.ADMIN,
        NOW,
        None,
    )
    assert siti.password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(siti.password_hash, PW)
    assert operators.find(db, "SITI") is siti
    event = db.scalars(select(AuditEvent)).one()
    assert (event.actor, event.action, event.subject) == ("cli:root", "operator.add", "siti")
    assert PW not in event.detail


@pytest.mark.parametrize("name", ["", "a b", "ümit", "x" * 65, "bu/siti", "cli:root"])
def test_bad_usernames_are_refused(db: DB, name: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        operators.add(db, name, Role.OPERATOR, PW, actor="t", now=NOW)
    assert caught.value.reason == "bad_username"


def test_username_rules_allow_letters_digits_dot_dash_underscore(db: DB) -> None:
    op = operators.add(db, "Pak.Budi_2-x", Role.KOMINFO, PW, actor="t", now=NOW)
    assert op.username == "pak.budi_2-x"
    assert operators.add(db, "a" * 64, Role.OPERATOR, PW, actor="t", now=NOW).username == "a" * 64


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short-pw", "weak_password"),
        ("x" * (operators.MIN_PASSWORD - 1), "weak_password"),
        ("a" * 20, "weak_password"),
        ("BuSiti2026", "weak_password"),  # the username, in another case
        ("p" * 2 + "q" * (operators.MAX_PASSWORD), "password_too_long"),
    ],
)
def test_weak_passwords_are_refused(db: DB, password: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        operators.add(db, "busiti2026", Role.OPERATOR, password, actor="t", now=NOW)
    assert caught.value.reason == reason
    assert db.scalars(select(Operator)).all() == []


def test_a_name_is_unique_whatever_its_case(db: DB, siti: Operator) -> None:
    with pytest.raises(Conflict) as caught:
        operators.add(db, "SiTi", Role.OPERATOR, PW, actor="t", now=NOW)
    assert caught.value.reason == "operator_exists"


def test_find_unknown_and_list_all(db: DB, siti: Operator) -> None:
    with pytest.raises(NotFound) as caught:
        operators.find(db, "nobody")
    assert caught.value.reason == "unknown_operator"
    operators.add(db, "andi", Role.OPERATOR, PW, actor="t", now=NOW)
    assert [o.username for o in operators.list_all(db)] == ["andi", "siti"]


# ---------------------------------------------------------------- signing in


def test_log_in_gives_a_token_whose_hash_alone_is_stored(db: DB, siti: Operator) -> None:
    op, token = operators.log_in(db, "SITI", PW, address=ADDR, now=NOW)
    assert op is siti and len(token) >= 43
    row = db.scalars(select(OperatorSession)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in row.token_hash
    assert (row.address, row.created_at, row.last_seen_at, row.ended_at) == (ADDR, NOW, NOW, None)
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "operator.login")).one()
    assert (event.actor, event.subject) == ("siti", "siti") and ADDR in event.detail
    _, other = operators.log_in(db, "siti", PW, address=ADDR, now=NOW)
    assert other != token


def test_wrong_password_unknown_user_and_disabled_get_the_same_refusal(
    db: DB, siti: Operator
) -> None:
    operators.add(db, "andi", Role.OPERATOR, PW, actor="t", now=NOW)
    operators.disable(db, "andi", actor="t", now=NOW)
    db.commit()
    answers = [
        refused(db, "siti", "wrong-password-1", address="10.66.0.1"),
        refused(db, "nobody", PW, address="10.66.0.2"),
        refused(db, "andi", PW, address="10.66.0.3"),  # the right password, disabled
    ]
    assert {(e.status, e.code, e.reason, str(e)) for e in answers} == {
        (401, "login_refused", "bad_credentials", "wrong username or password")
    }
    failed = db.scalars(
        select(AuditEvent).where(AuditEvent.action == "operator.login_failed")
    ).all()
    assert [(e.actor, e.subject) for e in failed] == [
        ("siti", "siti"),
        ("nobody", "nobody"),
        ("andi", "andi"),
    ]
    assert all(e.detail.startswith("from 10.66.0.") for e in failed)
    texts = " ".join(f"{e.actor} {e.subject} {e.detail}" for e in db.scalars(select(AuditEvent)))
    assert PW not in texts and "wrong-password-1" not in texts


def test_a_refusal_outlives_the_callers_rollback(engine: Engine, siti: Operator) -> None:
    """The web app's transaction rolls back on the exception; the count must stay."""
    maker = dbmod.make_sessionmaker(engine)
    for _ in range(operators.FREE_FAILURES):
        with pytest.raises(LoginRefused), maker.begin() as s:
            operators.log_in(s, "siti", "not-the-password", address=ADDR, now=NOW)
    with maker() as s:
        assert s.scalar(select(func.count()).select_from(LoginFailure)) == 6  # user + address
        assert refused(s, "siti", PW).reason == "slow_down"


def test_anonymous_and_odd_names_are_audited_safely(db: DB) -> None:
    refused(db, "", PW)
    refused(db, "cli:root\nfake", PW, address="10.66.0.9")
    events = db.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.actor, e.subject) for e in events] == [
        ("anonymous", "anonymous"),
        ("anonymous", "cli:root?fake"),
    ]


def test_backoff_per_account_grows_lifts_with_time_and_is_never_permanent(
    db: DB, siti: Operator
) -> None:
    # a different address each time: only the account's count applies
    for i in range(operators.FREE_FAILURES):
        assert (
            refused(db, "siti", "bad-password", address=f"10.66.1.{i}").reason == "bad_credentials"
        )
    slow = refused(db, "siti", PW, address="10.66.2.1")
    assert (slow.reason, slow.retry_after) == ("slow_down", 1)
    assert "try again in 1 seconds" in str(slow)
    # time lifts it, and the next failure doubles the wait
    assert refused(db, "siti", "bad-password", address="10.66.1.9", at=later(1)).reason == (
        "bad_credentials"
    )
    assert refused(db, "siti", PW, address="10.66.2.1", at=later(2)).retry_after == 1
    assert refused(db, "siti", PW, address="10.66.2.1", at=later(1)).retry_after == 2
    # many failures: the wait stops growing at MAX_DELAY_S
    at = later(10)
    for i in range(12):
        at = at + timedelta(seconds=operators.MAX_DELAY_S)
        refused(db, "siti", "bad-password", address=f"10.66.3.{i}", at=at)
    assert refused(db, "siti", PW, address="10.66.2.1", at=at).retry_after == operators.MAX_DELAY_S
    # the slow-down checked no password, counted nothing: waiting it out lets the admin in
    op, _ = operators.log_in(
        db, "siti", PW, address="10.66.2.1", now=at + timedelta(seconds=operators.MAX_DELAY_S)
    )
    assert op is siti


def test_backoff_per_address_covers_every_name(db: DB, siti: Operator) -> None:
    for name in ("andi", "budi", "citra"):
        refused(db, name, "guess-guess", address="10.66.0.66")
    slow = refused(db, "siti", PW, address="10.66.0.66")
    assert (slow.reason, slow.retry_after) == ("slow_down", 1)
    op, _ = operators.log_in(db, "siti", PW, address="10.66.0.67", now=NOW)  # another address
    assert op is siti


def test_a_success_clears_the_accounts_and_the_addresses_count(db: DB, siti: Operator) -> None:
    for _ in range(operators.FREE_FAILURES - 1):
        refused(db, "siti", "bad-password")
    operators.log_in(db, "siti", PW, address=ADDR, now=NOW)
    assert db.scalars(select(LoginFailure)).all() == []
    for _ in range(operators.FREE_FAILURES - 1):
        refused(db, "siti", "bad-password")
    assert operators.log_in(db, "siti", PW, address=ADDR, now=NOW)[0] is siti  # 2 free again


def test_old_failures_are_pruned(db: DB, siti: Operator) -> None:
    for i in range(5):
        refused(db, "siti", "bad-password", at=later(i * 60))
    assert db.scalar(select(func.count()).select_from(LoginFailure)) == 10
    much_later = later(operators.FAILURE_WINDOW_S + 5 * 60)
    refused(db, "andi", "bad-password", address="10.66.0.8", at=much_later)
    keys = db.scalars(select(LoginFailure.key)).all()
    assert sorted(keys) == ["addr:10.66.0.8", "user:andi"]
    assert operators.log_in(db, "siti", PW, address=ADDR, now=much_later)[0] is siti


def test_a_clock_set_back_does_not_stretch_the_wait(db: DB, siti: Operator) -> None:
    for _ in range(operators.FREE_FAILURES):
        refused(db, "siti", "bad-password", at=later(3600))
    assert refused(db, "siti", PW, at=NOW).retry_after == 1


def test_an_old_hash_is_rehashed_at_sign_in(db: DB, siti: Operator, real_hashing: None) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID)
    siti.password_hash = weak.hash(PW)
    db.commit()
    operators.log_in(db, "siti", PW, address=ADDR, now=NOW)
    assert siti.password_hash.startswith("$argon2id$")
    assert f"m={RFC_9106_LOW_MEMORY.memory_cost}" in siti.password_hash
    assert PasswordHasher().verify(siti.password_hash, PW)


# ---------------------------------------------------------------- sessions


def test_session_of_follows_activity_and_ends_when_idle(db: DB, siti: Operator) -> None:
    _, token = operators.log_in(db, "siti", PW, address=ADDR, now=NOW)
    idle = operators.IDLE_TIMEOUT_S
    assert operators.session_of(db, token, now=later(idle - 1)) is siti
    # seen at idle-1: the clock starts again from there
    assert operators.session_of(db, token, now=later(2 * idle - 2)) is siti
    assert operators.session_of(db, token, now=later(3 * idle)) is None
    # ended for good: coming back sooner does not revive it
    assert operators.session_of(db, token, now=later(2 * idle)) is None
    row = db.scalars(select(OperatorSession)).one()
    assert row.ended_at == later(3 * idle)
    assert operators.session_of(db, "", now=NOW) is None
    assert operators.session_of(db, "not-a-token", now=NOW) is None


def test_session_of_with_a_shorter_idle_limit(db: DB, siti: Operator) -> None:
    _, token = operators.log_in(db, "siti", PW, address=ADDR, now=NOW)
    assert operators.session_of(db, token, now=later(61), idle_s=60) is None


def test_log_out_ends_that_session_only(db: DB, siti: Operator) -> None:
    _, phone = operators.log_in(db, "siti", PW, address=ADDR, now=NOW)
    _, laptop = operators.log_in(db, "siti", PW, address="10.66.0.6", now=NOW)
    operators.log_out(db, phone, now=later(5))
    assert operators.session_of(db, phone, now=later(6)) is None
    assert operators.session_of(db, laptop, now=later(6)) is siti
    operators.log_out(db, phone, now=later(7))  # again: nothing more
    logouts = db.scalars(select(AuditEvent).where(AuditEvent.action == "operator.logout")).all()
    assert [(e.actor, e.subject, e.detail) for e in logouts] == [("siti", "siti", f"from {ADDR}")]


def test_end_sessions_keeps_the_one_asked(db: DB, siti: Operator) -> None:
    tokens = [operators.log_in(db, "siti", PW, address=ADDR, now=NOW)[1] for _ in range(3)]
    assert operators.end_sessions(db, siti, now=later(1), keep=tokens[0]) == 2
    assert [operators.session_of(db, t, now=later(2)) for t in tokens] == [siti, None, None]
    assert operators.end_sessions(db, siti, now=later(3)) == 1
    assert operators.session_of(db, tokens[0], now=later(4)) is None


def test_a_new_password_ends_the_sessions_and_replaces_the_old(db: DB, siti: Operator) -> None:
    _, token = operators.log_in(db, "siti", PW, address=ADDR, now=NOW)
    new = "teh-manis-sore-hari"
    operators.set_password(db, "siti", new, actor="cli:root", now=later(1))
    assert operators.session_of(db, token, now=later(2)) is None
    assert refused(db, "siti", PW).reason == "bad_credentials"
    assert operators.log_in(db, "siti", new, address=ADDR, now=later(3))[0] is siti
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "operator.passwd")).one()
    assert event.subject == "siti" and "1 web session" in event.detail
    assert new not in event.detail and PW not in event.detail
    with pytest.raises(InvalidInput, match="at least"):
        operators.set_password(db, "siti", "short", actor="t", now=NOW)


def test_disable_ends_sessions_and_enable_lets_back_in(db: DB, siti: Operator) -> None:
    operators.add(db, "andi", Role.OPERATOR, PW, actor="t", now=NOW)
    _, token = operators.log_in(db, "andi", PW, address=ADDR, now=NOW)
    operators.disable(db, "andi", actor="cli:root", now=later(1))
    assert operators.find(db, "andi").disabled_at == later(1)
    assert operators.session_of(db, token, now=later(2)) is None
    assert refused(db, "andi", PW, address="10.66.0.7").reason == "bad_credentials"
    operators.enable(db, "andi", actor="cli:root", now=later(3))
    assert operators.find(db, "andi").disabled_at is None
    assert operators.session_of(db, token, now=later(4)) is None  # ended sessions stay ended
    assert operators.log_in(db, "andi", PW, address="10.66.0.8", now=later(4))[0].username == "andi"
    actions = db.scalars(
        select(AuditEvent.action).where(AuditEvent.subject == "andi").order_by(AuditEvent.id)
    ).all()
    assert "operator.disable" in actions and "operator.enable" in actions


def test_a_session_whose_account_is_disabled_is_refused(db: DB, siti: Operator) -> None:
    operators.add(db, "andi", Role.OPERATOR, PW, actor="t", now=NOW)
    _, token = operators.log_in(db, "andi", PW, address=ADDR, now=NOW)
    operators.find(db, "andi").disabled_at = NOW  # even without disable()'s ending
    assert operators.session_of(db, token, now=later(1)) is None


def test_the_last_enabled_admin_cannot_be_disabled(db: DB, siti: Operator) -> None:
    operators.add(db, "andi", Role.OPERATOR, PW, actor="t", now=NOW)
    with pytest.raises(Conflict) as caught:
        operators.disable(db, "siti", actor="t", now=NOW)
    assert caught.value.reason == "last_admin"
    assert siti.disabled_at is None
    operators.add(db, "budi", Role.ADMIN, PW, actor="t", now=NOW)
    operators.disable(db, "siti", actor="t", now=NOW)  # another admin is left
    with pytest.raises(Conflict, match="last enabled admin"):
        operators.disable(db, "budi", actor="t", now=NOW)
    operators.enable(db, "siti", actor="t", now=NOW)
    operators.disable(db, "budi", actor="t", now=NOW)
    assert [o.username for o in operators.list_all(db) if o.disabled_at is None] == [
        "andi",
        "siti",
    ]


def test_old_web_sessions_are_deleted_at_a_sign_in_and_live_ones_kept(
    db: DB, siti: Operator
) -> None:
    keep = operators.SESSION_KEEP_S
    _, ended = operators.log_in(db, "siti", PW, address=ADDR, now=NOW)
    operators.log_out(db, ended, now=later(60))
    _, idle = operators.log_in(db, "siti", PW, address=ADDR, now=later(120))
    _, recent = operators.log_in(db, "siti", PW, address=ADDR, now=later(keep - 3600))
    db.commit()
    assert db.scalar(select(func.count()).select_from(OperatorSession)) == 3

    _, new = operators.log_in(db, "siti", PW, address=ADDR, now=later(keep + 3600))
    db.commit()
    left = set(db.scalars(select(OperatorSession.token_hash)))
    digest = operators._digest
    # the ended one and the one idle for a month went; the recent one and the new one stay
    assert left == {digest(recent), digest(new)}
    assert digest(ended) not in left and digest(idle) not in left
    assert operators.session_of(db, recent, now=later(keep + 3600), idle_s=keep) is not None
