"""Operator accounts for the local web UI: passwords, sign-in with backoff, web sessions.

Passwords are kept as argon2id hashes, never in the clear, never in the audit log. A sign-in
hands back a random token for the browser's cookie; the database keeps only its sha256, so a
copy of the database (a backup on a USB stick) opens no session.

Refused sign-ins slow the next try down, per account and per address, from the failures kept
in `login_failure` (a restart forgets nothing): `FREE_FAILURES` are free, then each waits
twice as long as the last, up to `MAX_DELAY_S`. Never a lock for good, so no one can shut the
admin out by guessing at the admin's name. A success clears both counts.

The caller owns the transaction, with one exception: a refused `log_in` commits its failure
and audit rows before it raises, since the caller's rollback on the exception would otherwise
undo the backoff it is there for.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session as DB

from hotspotd.core import audit
from hotspotd.core.models import LoginFailure, Operator, OperatorSession, Role
from hotspotd.errors import ClientError, Conflict, InvalidInput, NotFound

MIN_PASSWORD = 10  # characters
MAX_PASSWORD = 1024  # a form can post megabytes; no one types this much
IDLE_TIMEOUT_S = 30 * 60  # a web session idle this long ends
FREE_FAILURES = 3  # refused sign-ins before the first wait
MAX_DELAY_S = 15 * 60  # the longest wait, however many failures
FAILURE_WINDOW_S = 24 * 3600  # failures older than this are forgotten, and pruned
SESSION_KEEP_S = 30 * 24 * 3600  # web sessions over (or idle) this long are deleted at a sign-in

USERNAME = re.compile(r"[A-Za-z0-9._-]{1,64}")
ADDRESS_LENGTH = 45  # the longest IPv6 text form

_HASHER = PasswordHasher()  # argon2id, RFC 9106's low-memory profile


class LoginRefused(ClientError):
    """A sign-in refused: "bad_credentials" (one message for a wrong name, a wrong password
    and a disabled account: no telling which names exist) or "slow_down" (`retry_after`)."""

    status = 401
    code = "login_refused"
    reason = "bad_credentials"

    def __init__(
        self,
        message: str = "wrong username or password",
        *,
        reason: str | None = None,
        retry_after: int = 0,
    ) -> None:
        super().__init__(message, reason=reason)
        self.retry_after = retry_after


# ---------------------------------------------------------------- passwords and names


def hash_password(password: str) -> str:
    """The argon2id hash of a password, salted, in the PHC string form."""
    return _HASHER.hash(password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    """A hash no password matches: an unknown name costs as long to refuse as a wrong password."""
    return hash_password(secrets.token_urlsafe(32))


def _username(username: str) -> str:
    name = username.strip()
    if not USERNAME.fullmatch(name):
        raise InvalidInput(
            "a username has 1 to 64 letters, digits, '.', '_' or '-'", reason="bad_username"
        )
    return name.lower()


def _check_password(password: str, username: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"a password has at least {MIN_PASSWORD} characters", reason="weak_password"
        )
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(
            f"a password has at most {MAX_PASSWORD} characters", reason="password_too_long"
        )
    if len(set(password)) == 1:
        raise InvalidInput(
            "a password of one character repeated is too weak", reason="weak_password"
        )
    if password.casefold() == username.casefold():
        raise InvalidInput("the password must not be the username", reason="weak_password")


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# ---------------------------------------------------------------- accounts


def find(db: DB, username: str) -> Operator:
    """The account by name, any case; NotFound(reason="unknown_operator")."""
    name = username.strip().lower()
    found = db.scalars(select(Operator).where(Operator.username == name)).one_or_none()
    if found is None:
        raise NotFound(f"no operator named {_printable(username)!r}", reason="unknown_operator")
    return found


def list_all(db: DB) -> Sequence[Operator]:
    """Every account, disabled ones too, by name."""
    return db.scalars(select(Operator).order_by(Operator.username)).all()


def add(db: DB, username: str, role: Role, password: str, *, actor: str, now: datetime) -> Operator:
    """A new account; names are unique whatever their case, and kept in lower case."""
    name = _username(username)
    role = Role(role)
    _check_password(password, name)
    if db.scalars(select(Operator.id).where(Operator.username == name)).first() is not None:
        raise Conflict(f"an operator named {name!r} exists already", reason="operator_exists")
    operator = Operator(
        username=name, password_hash=hash_password(password), role=role, created_at=now
    )
    db.add(operator)
    db.flush()
    audit.record(db, now, actor, "operator.add", name, f"role {role.value}")
    return operator


def set_password(db: DB, username: str, password: str, *, actor: str, now: datetime) -> Operator:
    """A new password; every web session of the account ends (sign in again with it)."""
    operator = find(db, username)
    _check_password(password, operator.username)
    operator.password_hash = hash_password(password)
    ended = end_sessions(db, operator, now=now)
    audit.record(
        db, now, actor, "operator.passwd", operator.username, f"ended {ended} web session(s)"
    )
    db.flush()
    return operator


def _enabled_admins(db: DB) -> int:
    return (
        db.scalar(
            select(func.count())
            .select_from(Operator)
            .where(Operator.role == Role.ADMIN, Operator.disabled_at.is_(None))
        )
        or 0
    )


def disable(db: DB, username: str, *, actor: str, now: datetime) -> Operator:
    """The account can no longer sign in and its web sessions end; the last admin stays."""
    operator = find(db, username)
    if operator.disabled_at is not None:
        return operator
    if operator.role == Role.ADMIN and _enabled_admins(db) <= 1:
        raise Conflict(
            f"{operator.username!r} is the last enabled admin: add or enable another admin first",
            reason="last_admin",
        )
    operator.disabled_at = now
    ended = end_sessions(db, operator, now=now)
    audit.record(
        db, now, actor, "operator.disable", operator.username, f"ended {ended} web session(s)"
    )
    db.flush()
    return operator


def enable(db: DB, username: str, *, actor: str, now: datetime) -> Operator:
    """A disabled account may sign in again, with the password it had."""
    operator = find(db, username)
    if operator.disabled_at is None:
        return operator
    operator.disabled_at = None
    audit.record(db, now, actor, "operator.enable", operator.username)
    db.flush()
    return operator


# ---------------------------------------------------------------- backoff


def _delay(failures: int) -> int:
    """Seconds to wait after the last of `failures` refused sign-ins."""
    if failures < FREE_FAILURES:
        return 0
    return int(min(2 ** min(failures - FREE_FAILURES, 20), MAX_DELAY_S))


def _wait(db: DB, key: str, now: datetime) -> int:
    since = now - timedelta(seconds=FAILURE_WINDOW_S)
    count, last = db.execute(
        select(func.count(), func.max(LoginFailure.at)).where(
            LoginFailure.key == key, LoginFailure.at >= since
        )
    ).one()
    delay = _delay(count)
    if not delay or last is None:
        return 0
    last_at: datetime = min(last, now)  # a clock set back must not stretch the wait
    left = (last_at - now).total_seconds() + delay
    return max(0, math.ceil(left))


def _keys(name: str, address: str) -> tuple[str, str]:
    return f"user:{name[:64]}", f"addr:{address[:ADDRESS_LENGTH]}"


# ---------------------------------------------------------------- sign-in and sessions


def log_in(
    db: DB, username: str, password: str, *, address: str, now: datetime
) -> tuple[Operator, str]:
    """Sign in: the account and a new session token, or LoginRefused.

    Only the token's sha256 is stored. A refusal is audited and counted for the backoff (and
    committed); a refusal to wait ("slow_down") is neither, and checks no password.
    """
    name = username.strip().lower()
    keys = _keys(name, address)
    db.execute(
        delete(LoginFailure).where(LoginFailure.at < now - timedelta(seconds=FAILURE_WINDOW_S))
    )
    wait = max(_wait(db, key, now) for key in keys)
    if wait:
        raise LoginRefused(
            f"too many failed sign-ins: try again in {wait} seconds",
            reason="slow_down",
            retry_after=wait,
        )
    operator = None
    if USERNAME.fullmatch(name):
        operator = db.scalars(select(Operator).where(Operator.username == name)).one_or_none()
    long = len(password) > MAX_PASSWORD
    good = _verify(operator.password_hash if operator else _dummy_hash(), "" if long else password)
    actor = name if USERNAME.fullmatch(name) else "anonymous"
    subject = _printable(username.strip())[:64] or "anonymous"
    if operator is None or long or not good or operator.disabled_at is not None:
        why = (
            "unknown operator"
            if operator is None
            else "wrong password"
            if long or not good
            else "account disabled"
        )
        for key in keys:
            db.add(LoginFailure(key=key, at=now))
        audit.record(db, now, actor, "operator.login_failed", subject, f"from {address}: {why}")
        db.commit()  # the caller rolls back on the refusal: the backoff must stay
        raise LoginRefused()

    db.execute(delete(LoginFailure).where(LoginFailure.key.in_(keys)))
    _prune_sessions(db, now)
    if _HASHER.check_needs_rehash(operator.password_hash):
        operator.password_hash = hash_password(password)
    token = secrets.token_urlsafe(32)
    db.add(
        OperatorSession(
            operator_id=operator.id,
            token_hash=_digest(token),
            address=address[:ADDRESS_LENGTH],
            created_at=now,
            last_seen_at=now,
        )
    )
    audit.record(db, now, operator.username, "operator.login", operator.username, f"from {address}")
    db.flush()
    return operator, token


def _prune_sessions(db: DB, now: datetime) -> int:
    """Delete the web sessions over, or idle, for `SESSION_KEEP_S`: only a sign-in adds a row,
    so pruning at each bounds the table by the sign-ins of a month (the audit log keeps who
    signed in when). How many went."""
    before = now - timedelta(seconds=SESSION_KEEP_S)
    gone = db.execute(
        delete(OperatorSession).where(
            (OperatorSession.ended_at < before)
            | (OperatorSession.ended_at.is_(None) & (OperatorSession.last_seen_at < before))
        )
    )
    return int(getattr(gone, "rowcount", 0) or 0)


def _live(db: DB, token: str) -> OperatorSession | None:
    if not token:
        return None
    return db.scalars(
        select(OperatorSession).where(
            OperatorSession.token_hash == _digest(token), OperatorSession.ended_at.is_(None)
        )
    ).one_or_none()


def session_of(
    db: DB, token: str, *, now: datetime, idle_s: int = IDLE_TIMEOUT_S
) -> Operator | None:
    """The account behind a live session token, or None: unknown, ended, idle longer than
    `idle_s` (it ends now) or its account disabled. A live one is seen now."""
    row = _live(db, token)
    if row is None:
        return None
    if row.operator.disabled_at is not None or (now - row.last_seen_at).total_seconds() > idle_s:
        row.ended_at = now
        db.flush()
        return None
    row.last_seen_at = max(row.last_seen_at, now)
    db.flush()
    return row.operator


def log_out(db: DB, token: str, *, now: datetime) -> None:
    """End that session (nothing to do when it is unknown or over)."""
    row = _live(db, token)
    if row is None:
        return
    row.ended_at = now
    name = row.operator.username
    audit.record(db, now, name, "operator.logout", name, f"from {row.address}")
    db.flush()


def end_sessions(db: DB, operator: Operator, *, now: datetime, keep: str | None = None) -> int:
    """End the account's live web sessions but the one of `keep` (a token); how many ended."""
    query = select(OperatorSession).where(
        OperatorSession.operator_id == operator.id, OperatorSession.ended_at.is_(None)
    )
    if keep is not None:
        query = query.where(OperatorSession.token_hash != _digest(keep))
    rows = db.scalars(query).all()
    for row in rows:
        row.ended_at = now
    db.flush()
    return len(rows)
