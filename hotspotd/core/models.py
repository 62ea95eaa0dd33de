"""The database schema, SQLAlchemy 2 typed models.

Portable on purpose: nothing SQLite-only, so the same models run on PostgreSQL. Times are
timezone-aware UTC (`UTCDateTime`), money is whole Rupiah, bytes and seconds are integers.
Every change to these models comes with an Alembic migration in `hotspotd/migrations/`.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC, always returns an aware datetime; refuses naive ones on the way in."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC time")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 (SQLAlchemy reads it)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
    )


class VoucherState(enum.StrEnum):
    UNUSED = "unused"
    ACTIVE = "active"
    EXPIRED = "expired"
    USED_UP = "used_up"
    REVOKED = "revoked"


class SessionKind(enum.StrEnum):
    VOUCHER = "voucher"
    FREE = "free"


class Role(enum.StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    KOMINFO = "kominfo"


class Plan(Base):
    """A "paket": what a voucher buys. A limit of None means no limit."""

    __tablename__ = "plan"
    __table_args__ = (
        CheckConstraint("price_rp >= 0", name="price_not_negative"),
        CheckConstraint("validity_s IS NULL OR validity_s > 0", name="validity_positive"),
        CheckConstraint("time_s IS NULL OR time_s > 0", name="time_positive"),
        CheckConstraint("data_bytes IS NULL OR data_bytes > 0", name="data_positive"),
        CheckConstraint("down_bps IS NULL OR down_bps > 0", name="down_positive"),
        CheckConstraint("up_bps IS NULL OR up_bps > 0", name="up_positive"),
        CheckConstraint("devices IS NULL OR devices > 0", name="devices_positive"),
        CheckConstraint("idle_s IS NULL OR idle_s > 0", name="idle_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    price_rp: Mapped[int]
    validity_s: Mapped[int | None]  # counted from first use
    time_s: Mapped[int | None]  # online time allowance
    data_bytes: Mapped[int | None] = mapped_column(BigInteger)
    down_bps: Mapped[int | None] = mapped_column(BigInteger)
    up_bps: Mapped[int | None] = mapped_column(BigInteger)
    devices: Mapped[int | None]  # devices at once on one voucher
    idle_s: Mapped[int | None]  # a session idle this long ends
    created_at: Mapped[datetime]
    retired_at: Mapped[datetime | None]


class VoucherBatch(Base):
    __tablename__ = "voucher_batch"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id"))
    count: Mapped[int]
    code_kind: Mapped[str] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(String(200))  # whose stack, where it is sold

    plan: Mapped[Plan] = relationship()


class Voucher(Base):
    """A code sold on a card. Its time and data belong to it, shared by all its devices."""

    __tablename__ = "voucher"
    __table_args__ = (
        CheckConstraint("used_seconds >= 0", name="used_seconds_not_negative"),
        CheckConstraint("used_bytes >= 0", name="used_bytes_not_negative"),
        Index("ix_voucher_state", "state"),  # newest first within a state: the card list
        Index("ix_voucher_state_batch", "state", "batch_id"),  # unused cards per batch
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("voucher_batch.id"), index=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("plan.id"), index=True)
    price_rp: Mapped[int]  # as printed on the card; booked as a sale at first use
    state: Mapped[VoucherState] = mapped_column(
        _enum(VoucherState, "voucher_state"), default=VoucherState.UNUSED
    )
    created_at: Mapped[datetime]
    first_used_at: Mapped[datetime | None]
    used_seconds: Mapped[int] = mapped_column(default=0)
    used_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Given on top of the plan by the operator (`extend`) or by topping up with another code.
    extra_seconds: Mapped[int] = mapped_column(default=0, server_default="0")
    extra_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    ended_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    plan: Mapped[Plan] = relationship()
    batch: Mapped[VoucherBatch] = relationship()


class Device(Base):
    """A phone or laptop seen on the LAN, by MAC (which may be randomized per network)."""

    __tablename__ = "device"

    id: Mapped[int] = mapped_column(primary_key=True)
    mac: Mapped[str] = mapped_column(String(17), unique=True)
    hostname: Mapped[str | None] = mapped_column(String(64))
    vendor_class: Mapped[str | None] = mapped_column(String(64))
    trusted: Mapped[bool] = mapped_column(default=False)
    blocked: Mapped[bool] = mapped_column(default=False)
    note: Mapped[str | None] = mapped_column(String(200))
    first_seen_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]


class Session(Base):
    """One device online on one voucher (or on the free allowance), from login to its end."""

    __tablename__ = "session"
    __table_args__ = (
        CheckConstraint(
            "(kind = 'voucher' AND voucher_id IS NOT NULL) OR (kind = 'free')",
            name="voucher_session_has_voucher",
        ),
        Index("ix_session_open", "ended_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[SessionKind] = mapped_column(_enum(SessionKind, "session_kind"))
    voucher_id: Mapped[int | None] = mapped_column(ForeignKey("voucher.id"), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("device.id"), index=True)
    ip: Mapped[str] = mapped_column(String(15))
    mac: Mapped[str] = mapped_column(String(17))
    started_at: Mapped[datetime]
    last_activity_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(16))
    bytes_up: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_down: Mapped[int] = mapped_column(BigInteger, default=0)
    seconds: Mapped[int] = mapped_column(default=0, server_default="0")  # online seconds
    # The kernel's counters for this device at the last poll: the next poll charges the rise.
    kernel_up: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    kernel_down: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    voucher: Mapped[Voucher | None] = relationship()
    device: Mapped[Device] = relationship()


class UsageSample(Base):
    """Bytes one session moved between two counter polls; the raw stuff of reports."""

    __tablename__ = "usage_sample"
    __table_args__ = (Index("ix_usage_sample_taken_at", "taken_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("session.id"), index=True)
    taken_at: Mapped[datetime]
    seconds: Mapped[int]
    bytes_up: Mapped[int] = mapped_column(BigInteger)
    bytes_down: Mapped[int] = mapped_column(BigInteger)


class UsageHour(Base):
    """One hour of the whole hotspot's use (UTC hour start), rolled up from the samples."""

    __tablename__ = "usage_hour"

    id: Mapped[int] = mapped_column(primary_key=True)
    hour: Mapped[datetime] = mapped_column(unique=True)
    sessions: Mapped[int]
    devices: Mapped[int]
    online_seconds: Mapped[int] = mapped_column(BigInteger)
    bytes_up: Mapped[int] = mapped_column(BigInteger)
    bytes_down: Mapped[int] = mapped_column(BigInteger)


class UsageDay(Base):
    """One day in the village's time zone, rolled up from the hours; kept for years."""

    __tablename__ = "usage_day"

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, unique=True)
    sessions: Mapped[int]
    devices: Mapped[int]
    online_seconds: Mapped[int] = mapped_column(BigInteger)
    bytes_up: Mapped[int] = mapped_column(BigInteger)
    bytes_down: Mapped[int] = mapped_column(BigInteger)


class Operator(Base):
    """Someone who signs in to the local web UI: admin, operator or kominfo (read-only)."""

    __tablename__ = "operator"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[Role] = mapped_column(_enum(Role, "operator_role"))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class OperatorSession(Base):
    """One sign-in to the operator's web UI. The browser holds the token; this only its sha256."""

    __tablename__ = "operator_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operator.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    address: Mapped[str] = mapped_column(String(45))  # where it signed in from
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]

    operator: Mapped[Operator] = relationship()


class LoginFailure(Base):
    """One refused sign-in, kept under "user:<name>" and "addr:<ip>" so the backoff outlives a
    restart; pruned as they age, cleared by a success."""

    __tablename__ = "login_failure"
    __table_args__ = (Index("ix_login_failure_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80))
    at: Mapped[datetime]


class AuditEvent(Base):
    """Who did what, when: operator actions and must-keep events, never rewritten."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_at", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")


class LessonTopic(enum.StrEnum):
    """The village's learning shelves (the programmes' workshop themes)."""

    INTERNET = "internet"  # basic internet and staying safe online
    JUALAN = "jualan"  # selling home-made products through social media
    KESEHATAN = "kesehatan"  # e-health
    PERTANIAN = "pertanian"  # e-agro


class Listing(Base):
    """A product or service on the BUMDes market page, readable before login."""

    __tablename__ = "listing"
    __table_args__ = (
        CheckConstraint("price_rp IS NULL OR price_rp >= 0", name="price"),
        Index("ix_listing_hidden_updated", "hidden", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(80))
    seller: Mapped[str] = mapped_column(String(80))
    description: Mapped[str] = mapped_column(Text, default="")
    price_rp: Mapped[int | None] = mapped_column(BigInteger)
    unit: Mapped[str] = mapped_column(String(24), default="")  # "per kg", "per bungkus"
    contact: Mapped[str] = mapped_column(String(20), default="")  # a phone number, digits
    hidden: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Lesson(Base):
    """A short lesson on the learning page, readable before login."""

    __tablename__ = "lesson"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    topic: Mapped[LessonTopic] = mapped_column(_enum(LessonTopic, "lesson_topic"))
    title: Mapped[str] = mapped_column(String(80))
    summary: Mapped[str] = mapped_column(String(160), default="")
    body: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(default=0)
    hidden: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]


class ClockState(Base):
    """One row: what the daemon knows of the router's clock, kept across power cuts.

    `unsynced_since` is set while the clock is not known to be right (a board without a
    real-time clock before NTP answers): every time stamped from then on is provisional and is
    moved by the jump once the clock is set. `heartbeat_at` is the daemon's time at its last
    poll, so a later start knows the newest time the router has seen.
    """

    __tablename__ = "clock_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    unsynced_since: Mapped[datetime | None]
    synced_at: Mapped[datetime | None]  # when the clock was last found set
    heartbeat_at: Mapped[datetime | None]
    corrections: Mapped[int] = mapped_column(default=0)


class Setting(Base):
    """One setting the admin changed in the operator's UI, over the config file's default.

    Its key names the config's own (`free.time`, `village.name`); its value is text in the
    same human units the config takes (`30m`, `100MB`, `1M`, `none`). No row: the default.
    """

    __tablename__ = "setting"

    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(64))
