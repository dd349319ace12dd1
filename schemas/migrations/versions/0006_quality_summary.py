"""quality summary: per-image and per-annotator figures kept by the writers, ``labels.gap_s`` (issue 15)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Additive: two tables (``quality_images``, ``quality_annotators``), a nullable column
``labels.gap_s`` and two indexes on labels by author. The upgrade backfills all three from the
labels with :func:`iea_data.store.rebuild_quality_summary` (SQL on SQLite and PostgreSQL; it
reads only columns that exist from this revision on). Downgrade drops them (on SQLite the
labels table is rebuilt in a batch, rows kept).
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quality_images",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("n_experts", sa.Integer(), nullable=False),
        sa.Column("experts", sa.Text(), nullable=False),
        sa.Column("newest_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consensus_label_id", sa.Integer(), nullable=True),
        sa.Column("consensus_method", sa.String(length=64), nullable=True),
        sa.Column("consensus_spread_mean", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["consensus_label_id"], ["labels.id"], name=op.f("fk_quality_images_consensus_label_id_labels")
        ),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name=op.f("fk_quality_images_image_id_images")),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_quality_images")),
    )
    op.create_table(
        "quality_annotators",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("images_done", sa.Integer(), nullable=False),
        sa.Column("strokes_sum", sa.Float(), nullable=False),
        sa.Column("strokes_n", sa.Integer(), nullable=False),
        sa.Column("gaps_sum", sa.Float(), nullable=False),
        sa.Column("gaps_n", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_quality_annotators_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_quality_annotators")),
    )
    op.add_column("labels", sa.Column("gap_s", sa.Float(), nullable=True))
    op.create_index("ix_labels_author_created", "labels", ["author_id", "created_at"], unique=False)
    op.create_index("ix_labels_author_gap", "labels", ["author_id", "gap_s"], unique=False)

    from iea_data.store import rebuild_quality_summary

    rebuild_quality_summary(op.get_bind())


def downgrade() -> None:
    op.drop_index("ix_labels_author_gap", table_name="labels")
    op.drop_index("ix_labels_author_created", table_name="labels")
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_column("gap_s")
    op.drop_table("quality_annotators")
    op.drop_table("quality_images")
