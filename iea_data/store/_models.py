"""SQLAlchemy 2.0 declarative models of the catalog.

Arrays (maps, corrections, EV maps, thumbnails, stroke logs) are never stored in SQL:
rows hold the sha256 of an object in the workspace's object store.

The schema changes only through the Alembic migrations in ``schemas/migrations``; after
editing this file run ``alembic -c schemas/alembic.ini revision --autogenerate -m "..."``
and review the result, then bump ``schemas/arrow`` if a snapshot column changed.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "Base",
    "User",
    "IngestRun",
    "IngestError",
    "Scene",
    "Image",
    "ImagePath",
    "Score",
    "Label",
    "Target",
    "Review",
    "SplitMember",
    "Release",
    "Draft",
    "LoginThrottle",
    "UserEvent",
    "USER_EVENT_ACTIONS",
    "GoldImage",
    "WorkspaceSetting",
    "ConsensusStale",
    "QualityImage",
    "QualityAnnotator",
    "GOLD_RATE_KEY",
    "DEFAULT_GOLD_RATE",
    "IMAGE_STATUSES",
    "BASE_KINDS",
    "LABEL_KINDS",
    "LABEL_STATUSES",
    "ROLES",
    "utcnow",
]

IMAGE_STATUSES = ("ok", "error", "missing")
LABEL_KINDS = ("model", "refdiff", "annotation", "consensus", "imported")
LABEL_STATUSES = ("draft", "submitted", "accepted", "rejected")
ROLES = ("annotator", "reviewer", "admin")
BASE_KINDS = ("model", "refdiff", "zero")
SHA = String(64)


def utcnow() -> dt.datetime:
    """Timezone-aware current UTC time (stored as UTC in every backend)."""
    return dt.datetime.now(dt.UTC)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    """One declarative base whose naming convention gives constraints stable names for Alembic."""

    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {dt.datetime: DateTime(timezone=True)}


class User(Base):
    """A person using the annotator app: annotator, reviewer or admin."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[Optional[str]] = mapped_column(String(256))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Set when an admin reset the password: the user must choose a new one at the next sign-in.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class IngestRun(Base):
    """One run of ``iea ingest`` (or of a manifest import / demo build)."""

    __tablename__ = "ingest_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), default="ingest")
    roots: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="running")
    workers: Mapped[Optional[int]] = mapped_column(Integer)
    n_files: Mapped[int] = mapped_column(Integer, default=0)
    n_new: Mapped[int] = mapped_column(Integer, default=0)
    n_duplicate: Mapped[int] = mapped_column(Integer, default=0)
    n_unchanged: Mapped[int] = mapped_column(Integer, default=0)
    n_errors: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column()


class IngestError(Base):
    """A file that failed in an ingest run, with a specific reason code and message."""

    __tablename__ = "ingest_errors"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("ingest_runs.id"), index=True)
    path: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Scene(Base):
    """An exposure bracket: variant images of one subject and at most one ideal reference."""

    __tablename__ = "scenes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(512), unique=True)
    reference_image_id: Mapped[Optional[int]] = mapped_column(
        ForeignKey("images.id", use_alter=True, name="fk_scenes_reference_image_id_images")
    )
    source: Mapped[str] = mapped_column(String(32), default="filename")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Image(Base):
    """One distinct image content (sha256), or a manifest row whose file is not linked yet."""

    __tablename__ = "images"
    __table_args__ = (CheckConstraint(_in("status", IMAGE_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[Optional[str]] = mapped_column(SHA, unique=True)
    name: Mapped[str] = mapped_column(String(512), index=True)
    status: Mapped[str] = mapped_column(String(16), default="ok")
    scene_id: Mapped[Optional[int]] = mapped_column(ForeignKey("scenes.id"), index=True)
    variant: Mapped[Optional[str]] = mapped_column(String(32))
    ev: Mapped[Optional[float]] = mapped_column(Float)
    # decoded facts
    format: Mapped[Optional[str]] = mapped_column(String(16))
    mode: Mapped[Optional[str]] = mapped_column(String(16))
    width: Mapped[Optional[int]] = mapped_column(Integer)
    height: Mapped[Optional[int]] = mapped_column(Integer)
    channels: Mapped[Optional[int]] = mapped_column(Integer)
    bit_depth: Mapped[Optional[int]] = mapped_column(Integer)
    file_size: Mapped[Optional[int]] = mapped_column(BigInteger)
    # EXIF
    exif_exposure_time: Mapped[Optional[float]] = mapped_column(Float)
    exif_f_number: Mapped[Optional[float]] = mapped_column(Float)
    exif_iso: Mapped[Optional[float]] = mapped_column(Float)
    exif_exposure_bias: Mapped[Optional[float]] = mapped_column(Float)
    exif_camera_make: Mapped[Optional[str]] = mapped_column(String(128))
    exif_camera_model: Mapped[Optional[str]] = mapped_column(String(128))
    exif_capture_time: Mapped[Optional[dt.datetime]] = mapped_column(DateTime(timezone=False))
    exif_orientation: Mapped[Optional[int]] = mapped_column(Integer)
    # luma statistics (Rec.601 luma of the sRGB-encoded image in [0, 1])
    luma_mean: Mapped[Optional[float]] = mapped_column(Float)
    luma_std: Mapped[Optional[float]] = mapped_column(Float)
    luma_p01: Mapped[Optional[float]] = mapped_column(Float)
    luma_p05: Mapped[Optional[float]] = mapped_column(Float)
    luma_p25: Mapped[Optional[float]] = mapped_column(Float)
    luma_p50: Mapped[Optional[float]] = mapped_column(Float)
    luma_p75: Mapped[Optional[float]] = mapped_column(Float)
    luma_p95: Mapped[Optional[float]] = mapped_column(Float)
    luma_p99: Mapped[Optional[float]] = mapped_column(Float)
    frac_black: Mapped[Optional[float]] = mapped_column(Float)
    frac_white: Mapped[Optional[float]] = mapped_column(Float)
    thumbnail: Mapped[Optional[str]] = mapped_column(SHA)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # camera RAW (issue 14, migration 0003): width/height/bit_depth above are the render's size
    # and the sensor's bits; statistics and thumbnail come from a camera-WB, no-auto-bright render
    raw: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    raw_width: Mapped[Optional[int]] = mapped_column(Integer)  # sensor data size, masked borders included
    raw_height: Mapped[Optional[int]] = mapped_column(Integer)
    raw_cfa_pattern: Mapped[Optional[str]] = mapped_column(String(64))  # "RGGB"; 36 letters for X-Trans
    raw_black_level: Mapped[Optional[float]] = mapped_column(Float)  # mean of the per-channel levels
    raw_white_level: Mapped[Optional[int]] = mapped_column(Integer)
    raw_info: Mapped[Optional[str]] = mapped_column(Text)  # JSON: per-channel black levels, camera WB, versions


class ImagePath(Base):
    """A place where an image's bytes were seen (same bytes at two paths: two rows, one image)."""

    __tablename__ = "image_paths"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    path: Mapped[str] = mapped_column(Text, unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mtime_ns: Mapped[int] = mapped_column(BigInteger)
    run_id: Mapped[Optional[int]] = mapped_column(ForeignKey("ingest_runs.id"))
    seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Score(Base):
    """An image-level exposure score (0–10, as in the released manifests) with its source."""

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("image_id", "source"),
        CheckConstraint("value >= 0 AND value <= 10", name="value_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    value: Mapped[float] = mapped_column(Float)
    source: Mapped[str] = mapped_column(String(256))
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    comment: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Label(Base):
    """One revision of one image's residual map (``Y(photo) − Y(ideal)``, float16 on disk).

    Revisions of one chain (``image_id``, ``chain``) are numbered 1, 2, …; the unique
    constraint on (image, chain, revision) makes a save based on a stale revision fail
    atomically, on SQLite and PostgreSQL alike. A chain is ``user:<id>`` for an expert's
    annotations, ``model:<name>`` for pre-labels, ``refdiff`` and ``consensus``.
    Rows are never updated except ``status`` and ``updated_at``.
    """

    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("image_id", "chain", "revision", name="chain_revision"),
        CheckConstraint(_in("kind", LABEL_KINDS), name="kind"),
        CheckConstraint(_in("status", LABEL_STATUSES), name="status"),
        Index("ix_labels_image_kind", "image_id", "kind"),
        Index("ix_labels_author_created", "author_id", "created_at"),
        Index("ix_labels_author_gap", "author_id", "gap_s"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    kind: Mapped[str] = mapped_column(String(16))
    chain: Mapped[str] = mapped_column(String(160))
    revision: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    model_name: Mapped[Optional[str]] = mapped_column(String(128))
    model_sha256: Mapped[Optional[str]] = mapped_column(SHA)
    params: Mapped[Optional[str]] = mapped_column(Text)  # JSON: provenance parameters
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("labels.id"))
    base_id: Mapped[Optional[int]] = mapped_column(ForeignKey("labels.id"))
    target_id: Mapped[Optional[int]] = mapped_column(ForeignKey("targets.id"))
    map_object: Mapped[str] = mapped_column(SHA)
    correction_object: Mapped[Optional[str]] = mapped_column(SHA)
    strokes_object: Mapped[Optional[str]] = mapped_column(SHA)
    height: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    mean: Mapped[Optional[float]] = mapped_column(Float)
    mean_abs: Mapped[Optional[float]] = mapped_column(Float)
    frac_under: Mapped[Optional[float]] = mapped_column(Float)
    frac_over: Mapped[Optional[float]] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Annotations only: seconds since the author's previous annotation revision (by time, then id),
    #: set at insert; None for the author's first revision and for imported maps (no time spent here).
    gap_s: Mapped[Optional[float]] = mapped_column(Float)


class Target(Base):
    """A revision of a scene's ideal-exposure target: reference image scaled by ``2**EV`` in linear light."""

    __tablename__ = "targets"
    __table_args__ = (
        UniqueConstraint("scene_id", "revision", name="scene_revision"),
        CheckConstraint(_in("status", LABEL_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scene_id: Mapped[int] = mapped_column(ForeignKey("scenes.id"), index=True)
    base_image_id: Mapped[int] = mapped_column(ForeignKey("images.id"))
    revision: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("targets.id"))
    ev_map_object: Mapped[Optional[str]] = mapped_column(SHA)
    strokes_object: Mapped[Optional[str]] = mapped_column(SHA)
    author_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Review(Base):
    """A reviewer's decision on a label revision."""

    __tablename__ = "reviews"
    __table_args__ = (CheckConstraint("decision IN ('accept', 'reject')", name="decision"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"), index=True)
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str] = mapped_column(String(8))
    comment: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class SplitMember(Base):
    """Membership of an image in a named split (e.g. an imported released manifest)."""

    __tablename__ = "split_members"
    __table_args__ = (UniqueConstraint("split", "image_id", name="split_image"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    split: Mapped[str] = mapped_column(String(128), index=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    source: Mapped[Optional[str]] = mapped_column(String(256))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Release(Base):
    """A built, immutable dataset release."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("name", "version", name="name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(32))
    manifest_sha256: Mapped[str] = mapped_column(SHA)
    path: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Draft(Base):
    """An expert's unsaved work on one image: autosaved after each stroke, one per (user, image).

    Not a revision: a draft is replaced in place until it is saved as a label revision
    (then it is deleted) or discarded. ``object`` is the hash of one object-store bundle
    holding the correction (float32) and the stroke log; ``parent_id`` is the chain head
    the work started from and ``base_label_id`` the pre-label painted on (None: zero base).
    """

    __tablename__ = "drafts"
    __table_args__ = (
        UniqueConstraint("user_id", "image_id", name="user_image"),
        CheckConstraint(_in("base_kind", BASE_KINDS), name="base_kind"),
        CheckConstraint("score IS NULL OR (score >= 0 AND score <= 10)", name="score_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), index=True)
    parent_id: Mapped[Optional[int]] = mapped_column(ForeignKey("labels.id"))
    base_kind: Mapped[str] = mapped_column(String(16))
    base_label_id: Mapped[Optional[int]] = mapped_column(ForeignKey("labels.id"))
    object: Mapped[str] = mapped_column(SHA)
    score: Mapped[Optional[float]] = mapped_column(Float)
    comment: Mapped[Optional[str]] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LoginThrottle(Base):
    """Failed logins in a row for one user name (known or not), and until when it is refused.

    Kept in the database so that throttling survives an app restart; keyed by the name typed,
    so an unknown name is throttled exactly like a real one and reveals nothing.
    """

    __tablename__ = "login_throttle"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[dt.datetime]] = mapped_column()
    last_failure_at: Mapped[Optional[dt.datetime]] = mapped_column()


#: What a :class:`UserEvent` records: an account added, disabled or enabled, a password set by the
#: local operator, reset by an admin or changed by its owner, a role changed.
USER_EVENT_ACTIONS = (
    "added",
    "disabled",
    "enabled",
    "password_set",
    "password_reset",
    "password_changed",
    "role_changed",
)


class UserEvent(Base):
    """One change to a user account (the team's audit log): who did what to whom, and when.

    ``actor_id`` is the admin (or the user themselves) acting in the app; None is the local
    operator of the ``iea users`` command, whose operating-system login is kept in ``operator``.
    ``old_role``/``new_role`` are set for ``added`` (new only) and ``role_changed``. Never a
    password nor a hash. Rows are only ever added.
    """

    __tablename__ = "user_events"
    __table_args__ = (CheckConstraint(_in("action", USER_EVENT_ACTIONS), name="action"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    actor_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    operator: Mapped[Optional[str]] = mapped_column(String(128))
    old_role: Mapped[Optional[str]] = mapped_column(String(16))
    new_role: Mapped[Optional[str]] = mapped_column(String(16))


# --------------------------------------------------------------------------- quality (issue 15, migration 0005)

#: The :class:`WorkspaceSetting` key of the share of gold images in every annotator's queue.
GOLD_RATE_KEY = "quality.gold_rate"
#: The gold rate when the workspace has not set one: 5 % of queue positions.
DEFAULT_GOLD_RATE = 0.05


class GoldImage(Base):
    """An image marked as gold: annotators' maps of it are scored against ``label_id`` (never shown to them)."""

    __tablename__ = "gold_images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), unique=True)
    label_id: Mapped[int] = mapped_column(ForeignKey("labels.id"))
    added_by: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))
    added_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class WorkspaceSetting(Base):
    """A workspace setting kept in the catalog (shared by every process), e.g. :data:`GOLD_RATE_KEY`."""

    __tablename__ = "workspace_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ConsensusStale(Base):
    """An image whose consensus revision is out of date: an expert submitted or was accepted since."""

    __tablename__ = "consensus_stale"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), primary_key=True)
    marked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class QualityImage(Base):
    """Per image, what the Quality page lists, kept up to date by every write that changes it.

    ``experts`` are the authors whose annotation chain head is a consensus input (submitted or
    accepted), sorted and comma-separated, ``n_experts`` their number and ``newest_at`` the
    newest of those heads' times; ``consensus_*`` describe the newest consensus revision.
    Written in the writer's transaction (:mod:`iea_data.store.quality_summary`); rebuilt from
    the labels by :func:`~iea_data.store.rebuild_quality_summary`.
    """

    __tablename__ = "quality_images"

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id"), primary_key=True)
    n_experts: Mapped[int] = mapped_column(Integer, default=0)
    experts: Mapped[str] = mapped_column(Text, default="")
    newest_at: Mapped[Optional[dt.datetime]] = mapped_column()
    consensus_label_id: Mapped[Optional[int]] = mapped_column(ForeignKey("labels.id"))
    consensus_method: Mapped[Optional[str]] = mapped_column(String(64))
    consensus_spread_mean: Mapped[Optional[float]] = mapped_column(Float)


class QualityAnnotator(Base):
    """Per author of annotations: images done, and sums and counts for strokes and save gaps.

    ``images_done``: images whose author's chain head is submitted or accepted; ``strokes_*``:
    ``n_strokes`` of the author's revisions not imported; ``gaps_*``: :attr:`Label.gap_s` of
    those in (0, ``MAX_GAP_SECONDS``]. Incremented atomically by the writers.
    """

    __tablename__ = "quality_annotators"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    images_done: Mapped[int] = mapped_column(Integer, default=0)
    strokes_sum: Mapped[float] = mapped_column(Float, default=0.0)
    strokes_n: Mapped[int] = mapped_column(Integer, default=0)
    gaps_sum: Mapped[float] = mapped_column(Float, default=0.0)
    gaps_n: Mapped[int] = mapped_column(Integer, default=0)
