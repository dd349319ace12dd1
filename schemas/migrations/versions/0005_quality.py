"""quality: gold images, workspace settings, stale consensus marks, the ``imported`` label kind (issue 15)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Additive: three new tables; the labels' kind check gains ``imported`` (on SQLite the
labels table is rebuilt in a batch, rows kept). Downgrade drops the new tables and restores
the old check, which fails (changing nothing) while ``imported`` labels exist.
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_OLD_KINDS = "kind IN ('model', 'refdiff', 'annotation', 'consensus')"
_NEW_KINDS = "kind IN ('model', 'refdiff', 'annotation', 'consensus', 'imported')"


def upgrade() -> None:
    op.create_table(
        "workspace_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_workspace_settings")),
    )
    op.create_table(
        "gold_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("label_id", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.Integer(), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["added_by"], ["users.id"], name=op.f("fk_gold_images_added_by_users")),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name=op.f("fk_gold_images_image_id_images")),
        sa.ForeignKeyConstraint(["label_id"], ["labels.id"], name=op.f("fk_gold_images_label_id_labels")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gold_images")),
        sa.UniqueConstraint("image_id", name=op.f("uq_gold_images_image_id")),
    )
    op.create_table(
        "consensus_stale",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["image_id"], ["images.id"], name=op.f("fk_consensus_stale_image_id_images")),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_consensus_stale")),
    )
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_labels_kind"), type_="check")
        batch_op.create_check_constraint("kind", _NEW_KINDS)


def downgrade() -> None:
    with op.batch_alter_table("labels", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_labels_kind"), type_="check")
        batch_op.create_check_constraint("kind", _OLD_KINDS)
    op.drop_table("consensus_stale")
    op.drop_table("gold_images")
    op.drop_table("workspace_settings")
