"""first schema: plans, vouchers, devices, sessions, usage, operators, audit

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index("ix_audit_event_at", ["at"], unique=False)

    op.create_table(
        "device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("mac", sa.String(length=17), nullable=False),
        sa.Column("hostname", sa.String(length=64), nullable=True),
        sa.Column("vendor_class", sa.String(length=64), nullable=True),
        sa.Column("trusted", sa.Boolean(), nullable=False),
        sa.Column("blocked", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device")),
        sa.UniqueConstraint("mac", name=op.f("uq_device_mac")),
    )
    op.create_table(
        "operator",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=256), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "operator",
                "kominfo",
                name="operator_role",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator")),
        sa.UniqueConstraint("username", name=op.f("uq_operator_username")),
    )
    op.create_table(
        "plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("price_rp", sa.Integer(), nullable=False),
        sa.Column("validity_s", sa.Integer(), nullable=True),
        sa.Column("time_s", sa.Integer(), nullable=True),
        sa.Column("data_bytes", sa.BigInteger(), nullable=True),
        sa.Column("down_bps", sa.BigInteger(), nullable=True),
        sa.Column("up_bps", sa.BigInteger(), nullable=True),
        sa.Column("devices", sa.Integer(), nullable=True),
        sa.Column("idle_s", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "data_bytes IS NULL OR data_bytes > 0", name=op.f("ck_plan_data_positive")
        ),
        sa.CheckConstraint("devices IS NULL OR devices > 0", name=op.f("ck_plan_devices_positive")),
        sa.CheckConstraint("down_bps IS NULL OR down_bps > 0", name=op.f("ck_plan_down_positive")),
        sa.CheckConstraint("idle_s IS NULL OR idle_s > 0", name=op.f("ck_plan_idle_positive")),
        sa.CheckConstraint("price_rp >= 0", name=op.f("ck_plan_price_not_negative")),
        sa.CheckConstraint("time_s IS NULL OR time_s > 0", name=op.f("ck_plan_time_positive")),
        sa.CheckConstraint("up_bps IS NULL OR up_bps > 0", name=op.f("ck_plan_up_positive")),
        sa.CheckConstraint(
            "validity_s IS NULL OR validity_s > 0", name=op.f("ck_plan_validity_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan")),
        sa.UniqueConstraint("name", name=op.f("uq_plan_name")),
    )
    op.create_table(
        "voucher_batch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("code_kind", sa.String(length=8), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["plan.id"], name=op.f("fk_voucher_batch_plan_id_plan")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voucher_batch")),
        sa.UniqueConstraint("name", name=op.f("uq_voucher_batch_name")),
    )
    op.create_table(
        "voucher",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("price_rp", sa.Integer(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "unused",
                "active",
                "expired",
                "used_up",
                "revoked",
                name="voucher_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_seconds", sa.Integer(), nullable=False),
        sa.Column("used_bytes", sa.BigInteger(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("used_bytes >= 0", name=op.f("ck_voucher_used_bytes_not_negative")),
        sa.CheckConstraint("used_seconds >= 0", name=op.f("ck_voucher_used_seconds_not_negative")),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["voucher_batch.id"], name=op.f("fk_voucher_batch_id_voucher_batch")
        ),
        sa.ForeignKeyConstraint(["plan_id"], ["plan.id"], name=op.f("fk_voucher_plan_id_plan")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_voucher")),
        sa.UniqueConstraint("code", name=op.f("uq_voucher_code")),
    )
    with op.batch_alter_table("voucher", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_voucher_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_voucher_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index("ix_voucher_state", ["state"], unique=False)

    op.create_table(
        "session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "voucher",
                "free",
                name="session_kind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("voucher_id", sa.Integer(), nullable=True),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=15), nullable=False),
        sa.Column("mac", sa.String(length=17), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=16), nullable=True),
        sa.Column("bytes_up", sa.BigInteger(), nullable=False),
        sa.Column("bytes_down", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "(kind = 'voucher' AND voucher_id IS NOT NULL) OR (kind = 'free')",
            name=op.f("ck_session_voucher_session_has_voucher"),
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["device.id"], name=op.f("fk_session_device_id_device")
        ),
        sa.ForeignKeyConstraint(
            ["voucher_id"], ["voucher.id"], name=op.f("fk_session_voucher_id_voucher")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session")),
    )
    with op.batch_alter_table("session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_session_device_id"), ["device_id"], unique=False)
        batch_op.create_index("ix_session_open", ["ended_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_session_voucher_id"), ["voucher_id"], unique=False)

    op.create_table(
        "usage_sample",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seconds", sa.Integer(), nullable=False),
        sa.Column("bytes_up", sa.BigInteger(), nullable=False),
        sa.Column("bytes_down", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"], ["session.id"], name=op.f("fk_usage_sample_session_id_session")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_sample")),
    )
    with op.batch_alter_table("usage_sample", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_usage_sample_session_id"), ["session_id"], unique=False
        )
        batch_op.create_index("ix_usage_sample_taken_at", ["taken_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("usage_sample", schema=None) as batch_op:
        batch_op.drop_index("ix_usage_sample_taken_at")
        batch_op.drop_index(batch_op.f("ix_usage_sample_session_id"))

    op.drop_table("usage_sample")
    with op.batch_alter_table("session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_voucher_id"))
        batch_op.drop_index("ix_session_open")
        batch_op.drop_index(batch_op.f("ix_session_device_id"))

    op.drop_table("session")
    with op.batch_alter_table("voucher", schema=None) as batch_op:
        batch_op.drop_index("ix_voucher_state")
        batch_op.drop_index(batch_op.f("ix_voucher_plan_id"))
        batch_op.drop_index(batch_op.f("ix_voucher_batch_id"))

    op.drop_table("voucher")
    op.drop_table("voucher_batch")
    op.drop_table("plan")
    op.drop_table("operator")
    op.drop_table("device")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_at")

    op.drop_table("audit_event")
