"""two timestamps per erasure request: suppressed_at and exact_at

Revision ID: 0004_request_exact
Revises: 0003_operators
Create Date: 2026-11-30 06:30:00.000000

``suppressed_at``: when the request's data stopped being reachable (prompt deletion or a
guard rule enabled); ``exact_at``: when the model became what retraining without it gives
(a retrain-equivalent forget, or a retrain promoted; docs/design.md section 18). Requests
executed before this migration were suppressed when they were executed. None of them is
exact: the kind they recorded as ``exact`` was exact *by construction* (isolated / frozen
modes), which is not retrain-equivalent (docs/design.md section 4.3).
"""

import sqlalchemy as sa
from alembic import op

revision = '0004_request_exact'
down_revision = '0003_operators'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('erasure_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('suppressed_at', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('exact_at', sa.DateTime(), nullable=True))
    bind = op.get_bind()
    bind.execute(sa.text("UPDATE erasure_requests SET suppressed_at = executed_at "
                         "WHERE executed_at IS NOT NULL"))


def downgrade() -> None:
    with op.batch_alter_table('erasure_requests', schema=None) as batch_op:
        batch_op.drop_column('exact_at')
        batch_op.drop_column('suppressed_at')
