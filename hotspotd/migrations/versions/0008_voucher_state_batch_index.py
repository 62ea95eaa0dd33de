"""an index on a voucher's state and batch: the batch list counts each batch's unused cards
from the index alone (a group-by over 100,000 cards without a look at one row)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_voucher_state_batch", "voucher", ["state", "batch_id"])


def downgrade() -> None:
    op.drop_index("ix_voucher_state_batch", table_name="voucher")
