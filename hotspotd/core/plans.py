"""Plans ("paket"): what a voucher buys. The caller owns the transaction."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotspotd.core import audit
from hotspotd.core.accounting import Allowance
from hotspotd.core.models import Plan, Voucher, VoucherState
from hotspotd.errors import Conflict, InvalidInput, NotFound

MAX_PRICE_RP = 100_000_000


DEFAULT_IDLE_S = 15 * 60  # what `plan add` (and the operator UI) sets when no idle is given


@dataclass(frozen=True)
class PlanTerms:
    """A plan's terms; every limit may be None (no limit)."""

    price_rp: int
    validity_s: int | None = None
    time_s: int | None = None
    data_bytes: int | None = None
    down_bps: int | None = None
    up_bps: int | None = None
    devices: int | None = None
    idle_s: int | None = None

    def validate(self) -> None:
        if not 0 <= self.price_rp <= MAX_PRICE_RP:
            raise InvalidInput(f"price must be between 0 and {MAX_PRICE_RP} rupiah")
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "price_rp" and value is not None and value <= 0:
                raise InvalidInput(f"{f.name} must be more than zero, or none")
        if self.devices is not None and self.devices > 100:
            raise InvalidInput("devices per voucher must be at most 100")


def allowance(plan: Plan) -> Allowance:
    return Allowance(
        validity_s=plan.validity_s,
        time_s=plan.time_s,
        data_bytes=plan.data_bytes,
        idle_s=plan.idle_s,
    )


def _check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name:
        raise InvalidInput("a plan needs a name")
    if len(name) > 64:
        raise InvalidInput("a plan name has at most 64 characters")
    return name


def find(db: Session, name: str, *, include_retired: bool = True) -> Plan:
    wanted = " ".join(name.split())
    plan = db.scalar(select(Plan).where(func.lower(Plan.name) == wanted.lower()))
    if plan is None or (plan.retired_at is not None and not include_retired):
        raise NotFound(f"no plan named {wanted!r}", reason="unknown_plan")
    return plan


def add(
    db: Session, name: str, terms: PlanTerms, now: datetime, *, actor: str | None = None
) -> Plan:
    name = _check_name(name)
    terms.validate()
    if db.scalar(select(Plan.id).where(func.lower(Plan.name) == name.lower())) is not None:
        raise Conflict(f"a plan named {name!r} exists already", reason="plan_exists")
    plan = Plan(name=name, created_at=now, **_columns(terms))
    db.add(plan)
    if actor is not None:
        said = ", ".join(f"{k}={v}" for k, v in _columns(terms).items() if v is not None)
        audit.record(db, now, actor, "plan.add", name, said)
    db.flush()
    return plan


def edit(
    db: Session,
    name: str,
    changes: dict[str, int | None],
    new_name: str | None,
    *,
    actor: str,
    now: datetime,
) -> Plan:
    """Change some terms. Cards already printed keep their price; limits follow the plan."""
    plan = find(db, name)
    old_name = plan.name
    current = PlanTerms(**{f.name: getattr(plan, f.name) for f in fields(PlanTerms)})
    unknown = set(changes) - {f.name for f in fields(PlanTerms)}
    if unknown:
        raise InvalidInput(f"unknown plan terms: {', '.join(sorted(unknown))}")
    terms = PlanTerms(**{**_columns(current), **changes})  # type: ignore[arg-type]
    terms.validate()
    if new_name is not None:
        new_name = _check_name(new_name)
        clash = db.scalar(
            select(Plan.id).where(func.lower(Plan.name) == new_name.lower(), Plan.id != plan.id)
        )
        if clash is not None:
            raise Conflict(f"a plan named {new_name!r} exists already", reason="plan_exists")
        plan.name = new_name
    for key, value in _columns(terms).items():
        setattr(plan, key, value)
    said = [f"name={new_name}"] if new_name is not None and new_name != old_name else []
    said += [f"{k}={v}" for k, v in sorted(changes.items())]
    audit.record(db, now, actor, "plan.edit", old_name, ", ".join(said))
    db.flush()
    return plan


def retire(db: Session, name: str, now: datetime, *, actor: str | None = None) -> Plan:
    """No new vouchers for this plan; vouchers already made stay good."""
    plan = find(db, name)
    if plan.retired_at is not None:
        raise Conflict(f"plan {plan.name!r} is retired already", reason="plan_retired")
    plan.retired_at = now
    if actor is not None:
        audit.record(db, now, actor, "plan.retire", plan.name)
    db.flush()
    return plan


def listing(db: Session, *, include_retired: bool = False) -> list[tuple[Plan, int, int]]:
    """Plans with their count of unused and active vouchers."""
    stmt = select(Plan).order_by(Plan.price_rp, Plan.name)
    if not include_retired:
        stmt = stmt.where(Plan.retired_at.is_(None))
    plans = list(db.scalars(stmt))
    counts = {
        (plan_id, state): n
        for plan_id, state, n in db.execute(
            select(Voucher.plan_id, Voucher.state, func.count())
            .where(Voucher.state.in_([VoucherState.UNUSED, VoucherState.ACTIVE]))
            .group_by(Voucher.plan_id, Voucher.state)
        )
    }
    return [
        (
            p,
            counts.get((p.id, VoucherState.UNUSED), 0),
            counts.get((p.id, VoucherState.ACTIVE), 0),
        )
        for p in plans
    ]


def _columns(terms: PlanTerms) -> dict[str, int | None]:
    return {f.name: getattr(terms, f.name) for f in fields(terms)}
