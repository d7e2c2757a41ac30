"""operators with passphrase hashes; the scheme of each subject hash; four-eyes default

Revision ID: 0003_operators
Revises: 0002
Create Date: 2026-11-30 04:00:00.000000

New workspaces get four-eyes on (storage/settings.py DEFAULTS); a workspace that already
holds data keeps the behaviour it had, so this migration writes its old default (off)
explicitly unless a setting is already stored.
"""

import sqlalchemy as sa
from alembic import op

revision = '0003_operators'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'operators',
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('kdf', sa.JSON(), nullable=False),
        sa.Column('verifier', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )
    with op.batch_alter_table('erasure_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('subject_scheme', sa.String(length=20),
                                      server_default='salted-sha256', nullable=False))
    _keep_four_eyes_of_existing_workspaces()


def _keep_four_eyes_of_existing_workspaces() -> None:
    bind = op.get_bind()
    used = bind.execute(sa.text("SELECT count(*) FROM audit_log")).scalar()
    stored = bind.execute(sa.text("SELECT count(*) FROM settings WHERE key = 'four_eyes'")
                          ).scalar()
    if used and not stored:
        bind.execute(sa.text("INSERT INTO settings (key, value) VALUES ('four_eyes', 'false')"))


def downgrade() -> None:
    with op.batch_alter_table('erasure_requests', schema=None) as batch_op:
        batch_op.drop_column('subject_scheme')
    op.drop_table('operators')
