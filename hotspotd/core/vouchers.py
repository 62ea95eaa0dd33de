"""Vouchers: made in batches, looked up by code, revoked. The caller owns the transaction.

States: unused → active (first use starts the validity clock) → expired / used up / revoked.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from hotspotd.core import accounting, audit, codes, plans
from hotspotd.core.models import AuditEvent, Voucher, VoucherBatch, VoucherState
from hotspotd.errors import Conflict, InvalidInput, NotFound, VoucherRejected, VoucherTypo

MAX_BATCH = 10_000
MAX_BATCH_NAME = 64
MAX_NOTE = 200
_MAX_TRIES = 20


class CheckState(enum.StrEnum):
    """What `voucher check` can say of a typed code."""

    TYPO = "typo"
    UNKNOWN = "unknown"
    UNUSED = "unused"
    ACTIVE = "active"
    EXPIRED = "expired"
    USED_UP = "used_up"
    REVOKED = "revoked"


_MESSAGES = {
    CheckState.UNUSED: "not used yet",
    CheckState.ACTIVE: "in use",
    CheckState.EXPIRED: "its validity is over",
    CheckState.USED_UP: "its time or data is used up",
    CheckState.REVOKED: "revoked by the operator",
}


@dataclass(frozen=True)
class CheckResult:
    state: CheckState
    message: str
    voucher: Voucher | None = None
    standing: accounting.Standing | None = None
    takeovers: Sequence[AuditEvent] = ()  # other devices taking the card over, newest first


def make_batch(
    db: Session,
    *,
    plan_name: str,
    count: int,
    created_by: str,
    now: datetime,
    batch_name: str | None = None,
    kind: codes.CodeKind = codes.CodeKind.ALNUM,
    note: str | None = None,
    zone: tzinfo = UTC,
) -> tuple[VoucherBatch, list[Voucher]]:
    """Make `count` new vouchers for a plan, with codes unique in the database.

    A batch without a name is named after its plan and the time in `zone`, the village's
    (the one the operator reads on the clock on the wall and on the batch list).
    """
    if not 1 <= count <= MAX_BATCH:
        raise InvalidInput(f"count must be between 1 and {MAX_BATCH}")
    plan = plans.find(db, plan_name)
    if plan.retired_at is not None:
        raise Conflict(
            f"plan {plan.name!r} is retired; make vouchers for a current plan",
            reason="plan_retired",
        )
    if batch_name is None:
        batch_name = f"{plan.name} {now.astimezone(zone):%Y-%m-%d %H:%M:%S}"
    batch_name = " ".join(batch_name.split())
    if not batch_name or len(batch_name) > MAX_BATCH_NAME:
        raise InvalidInput(f"a batch name has 1 to {MAX_BATCH_NAME} characters")
    note = clean_note(note)
    if db.scalar(select(VoucherBatch.id).where(VoucherBatch.name == batch_name)) is not None:
        raise Conflict(f"a batch named {batch_name!r} exists already", reason="batch_exists")

    batch = VoucherBatch(
        name=batch_name,
        plan=plan,
        count=count,
        code_kind=kind.value,
        created_by=created_by,
        created_at=now,
        note=note,
    )
    db.add(batch)
    new_codes = _unique_codes(db, count, kind)
    vouchers = [
        Voucher(
            code=code,
            batch=batch,
            plan=plan,
            price_rp=plan.price_rp,
            state=VoucherState.UNUSED,
            created_at=now,
        )
        for code in new_codes
    ]
    db.add_all(vouchers)
    audit.record(db, now, created_by, "voucher.make", batch_name, f"{count} × {plan.name}")
    db.flush()
    return batch, vouchers


def clean_note(note: str | None) -> str | None:
    """A batch's note with its spaces tidied; empty is no note, too long is refused."""
    if note is None:
        return None
    note = " ".join(note.split())
    if len(note) > MAX_NOTE:
        raise InvalidInput(f"a note has at most {MAX_NOTE} characters", reason="note_too_long")
    return note or None


def _unique_codes(db: Session, count: int, kind: codes.CodeKind) -> list[str]:
    """Fresh codes that clash neither with each other nor with the database."""
    made: set[str] = set()
    for _ in range(_MAX_TRIES):
        wanted = count - len(made)
        if wanted == 0:
            break
        candidates = {codes.make(kind) for _ in range(wanted)} - made
        taken: set[str] = set()
        chunk = sorted(candidates)
        for i in range(0, len(chunk), 500):
            taken.update(
                db.scalars(select(Voucher.code).where(Voucher.code.in_(chunk[i : i + 500])))
            )
        made |= candidates - taken
    if len(made) < count:  # pragma: no cover - 31**8 codes make this practically impossible
        raise Conflict(
            "could not find enough unused codes; try a smaller batch", reason="no_codes_left"
        )
    return sorted(made)


def find(db: Session, text: str) -> Voucher:
    """The voucher for a typed code. A typo is refused before the database is asked."""
    checked = codes.check(text)
    if not checked.ok or checked.code is None:
        raise VoucherTypo(f"that code has a typo: {checked.detail}")
    voucher = db.scalar(select(Voucher).where(Voucher.code == checked.code))
    if voucher is None:
        raise NotFound("no voucher has that code", reason="unknown_code")
    return voucher


def allowance_of(voucher: Voucher) -> accounting.Allowance:
    """The plan's limits plus whatever was given on top (extend, top-up)."""
    base = plans.allowance(voucher.plan)

    def plus(limit: int | None, extra: int) -> int | None:
        return None if limit is None else limit + extra

    return accounting.Allowance(
        validity_s=plus(base.validity_s, voucher.extra_seconds),
        time_s=plus(base.time_s, voucher.extra_seconds),
        data_bytes=plus(base.data_bytes, voucher.extra_bytes),
        idle_s=base.idle_s,
    )


def usage_of(voucher: Voucher) -> accounting.Usage:
    return accounting.Usage(voucher.first_used_at, voucher.used_seconds, voucher.used_bytes)


def redeem(db: Session, voucher: Voucher, now: datetime) -> Voucher:
    """First use: the voucher becomes active and its validity clock starts. Idempotent."""
    state = state_now(voucher, now)
    if state not in (VoucherState.UNUSED, VoucherState.ACTIVE):
        raise VoucherRejected(state.value, _MESSAGES[CheckState(state.value)])
    if voucher.state is VoucherState.UNUSED:
        voucher.state = VoucherState.ACTIVE
        voucher.first_used_at = now
        audit.record(db, now, "resident", "voucher.redeem", voucher.code)
        db.flush()
    return voucher


def charge(voucher: Voucher, *, seconds: int, bytes_used: int) -> None:
    """Add online seconds and bytes to a voucher: every device on it draws from one allowance."""
    usage = accounting.accrue(usage_of(voucher), seconds=seconds, bytes_used=bytes_used)
    voucher.used_seconds = usage.used_seconds
    voucher.used_bytes = usage.used_bytes


def standing_of(voucher: Voucher, now: datetime) -> accounting.Standing:
    return accounting.standing(allowance_of(voucher), usage_of(voucher), now)


def state_now(voucher: Voucher, now: datetime, *, clock_trusted: bool = True) -> VoucherState:
    return accounting.voucher_state(
        voucher.state,
        allowance_of(voucher),
        usage_of(voucher),
        now,
        clock_trusted=clock_trusted,
    )


def check(db: Session, text: str, now: datetime) -> CheckResult:
    """Everything `voucher check` and the portal need to tell a resident about a code."""
    checked = codes.check(text)
    if not checked.ok or checked.code is None:
        return CheckResult(CheckState.TYPO, checked.detail)
    voucher = db.scalar(select(Voucher).where(Voucher.code == checked.code))
    if voucher is None:
        return CheckResult(CheckState.UNKNOWN, "no voucher has that code")
    standing = standing_of(voucher, now)
    state = CheckState(state_now(voucher, now).value)
    takeovers = db.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == "voucher.takeover", AuditEvent.subject == voucher.code)
        .order_by(AuditEvent.at.desc(), AuditEvent.id.desc())
    ).all()
    return CheckResult(state, _MESSAGES[state], voucher, standing, takeovers)


def revoke(db: Session, text: str, *, actor: str, now: datetime) -> Voucher:
    """Stop a voucher for good (a lost or stolen card); its sessions end at the next reconcile."""
    voucher = find(db, text)
    if voucher.state is VoucherState.REVOKED:
        raise Conflict("that voucher is revoked already", reason="revoked")
    voucher.state = VoucherState.REVOKED
    voucher.revoked_at = now
    voucher.ended_at = voucher.ended_at or now
    audit.record(db, now, actor, "voucher.revoke", voucher.code)
    db.flush()
    return voucher


def revoke_batch(db: Session, batch_id: int, *, actor: str, now: datetime) -> list[Voucher]:
    """Revoke every card of a batch that is still unused or in use (a stolen stack of cards);
    those used up, expired or revoked already stay as they are."""
    batch = db.get(VoucherBatch, batch_id)
    if batch is None:
        raise NotFound("no such batch", reason="unknown_batch")
    live = db.scalars(
        select(Voucher).where(
            Voucher.batch_id == batch.id,
            Voucher.state.in_([VoucherState.UNUSED, VoucherState.ACTIVE]),
        )
    )
    return [revoke(db, v.code, actor=actor, now=now) for v in live.all()]


def listing(
    db: Session,
    *,
    plan_name: str | None = None,
    batch_name: str | None = None,
    state: VoucherState | None = None,
    limit: int = 1000,
) -> Sequence[Voucher]:
    stmt = select(Voucher).join(Voucher.plan).join(Voucher.batch)
    if plan_name is not None:
        stmt = stmt.where(Voucher.plan_id == plans.find(db, plan_name).id)
    if batch_name is not None:
        batch_id = db.scalar(select(VoucherBatch.id).where(VoucherBatch.name == batch_name))
        if batch_id is None:
            raise NotFound(f"no batch named {batch_name!r}", reason="unknown_batch")
        stmt = stmt.where(Voucher.batch_id == batch_id)
    if state is not None:
        stmt = stmt.where(Voucher.state == state)
    stmt = stmt.order_by(Voucher.created_at.desc(), Voucher.id).limit(limit)
    return db.scalars(stmt).all()
