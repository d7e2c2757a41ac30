"""bearer tokens of the inference server (docs/design.md section 13)

Revision ID: 0005_serving_tokens
Revises: 0003_operators
Create Date: 2026-11-30 06:30:00.000000

Only the sha256 of a token is stored (tokens are 256-bit random strings, so a plain hash
is enough); the token itself is shown once, when it is created.
"""

import sqlalchemy as sa
from alembic import op

revision = '0005_serving_tokens'
down_revision = '0004_request_exact'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'serving_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('scope', sa.String(length=20), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('token_hash'),
    )


def downgrade() -> None:
    op.drop_table('serving_tokens')
