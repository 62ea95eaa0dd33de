"""sessions and vouchers: online seconds, kernel counters, extras; usage roll-ups

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_day",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("online_seconds", sa.BigInteger(), nullable=False),
        sa.Column("bytes_up", sa.BigInteger(), nullable=False),
        sa.Column("bytes_down", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_day")),
        sa.UniqueConstraint("day", name=op.f("uq_usage_day_day")),
    )
    op.create_table(
        "usage_hour",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sessions", sa.Integer(), nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.Column("online_seconds", sa.BigInteger(), nullable=False),
        sa.Column("bytes_up", sa.BigInteger(), nullable=False),
        sa.Column("bytes_down", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_hour")),
        sa.UniqueConstraint("hour", name=op.f("uq_usage_hour_hour")),
    )
    with op.batch_alter_table("session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seconds", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("kernel_up", sa.BigInteger(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("kernel_down", sa.BigInteger(), server_default="0", nullable=False)
        )

    with op.batch_alter_table("voucher", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("extra_seconds", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("extra_bytes", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("voucher", schema=None) as batch_op:
        batch_op.drop_column("extra_bytes")
        batch_op.drop_column("extra_seconds")

    with op.batch_alter_table("session", schema=None) as batch_op:
        batch_op.drop_column("kernel_down")
        batch_op.drop_column("kernel_up")
        batch_op.drop_column("seconds")

    op.drop_table("usage_hour")
    op.drop_table("usage_day")
