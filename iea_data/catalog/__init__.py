"""The catalog: images, scenes, labels, scores, reviews, splits and releases in SQL.

SQLite (WAL mode) by default, PostgreSQL for a team; the same code runs on both.
"""

from ._db import check_schema, current_revision, dispose_engines, get_engine, head_revision, make_session, upgrade_database
from ._models import (
    BASE_KINDS,
    IMAGE_STATUSES,
    LABEL_KINDS,
    LABEL_STATUSES,
    ROLES,
    Base,
    Draft,
    Image,
    ImagePath,
    IngestError,
    IngestRun,
    Label,
    LoginThrottle,
    Release,
    Review,
    Scene,
    Score,
    SplitMember,
    Target,
    User,
)

__all__ = [
    "get_engine", "make_session", "upgrade_database", "current_revision", "head_revision", "check_schema",
    "dispose_engines",
    "Base", "Image", "ImagePath", "IngestError", "IngestRun", "Label", "Release", "Review", "Scene", "Score",
    "SplitMember", "Target", "User", "Draft", "LoginThrottle", "BASE_KINDS", "IMAGE_STATUSES", "LABEL_KINDS", "LABEL_STATUSES", "ROLES",
]

from ._ingest import IMAGE_EXTENSIONS, FileError, IngestReport, ingest, walk_images
from ._manifest import ManifestReport, export_manifest, link_missing_files, format_score, import_manifest, read_manifest
from ._queries import catalog_stats, image_path, list_errors, list_images, list_runs
from ._scenes_db import (
    SceneSummary,
    apply_sidecar,
    assign_scenes_by_filename,
    group_scenes_by_exif,
    list_scenes,
    resolve_image,
    set_reference,
)
from ._snapshot import ARROW_SCHEMA_VERSION, derive_arrow_schema, load_arrow_schema, snapshot_tables, write_snapshot

__all__ += [
    "IMAGE_EXTENSIONS", "FileError", "IngestReport", "ingest", "walk_images",
    "ManifestReport", "export_manifest", "link_missing_files", "format_score", "import_manifest", "read_manifest",
    "catalog_stats", "image_path", "list_errors", "list_images", "list_runs",
    "SceneSummary", "apply_sidecar", "assign_scenes_by_filename", "group_scenes_by_exif", "list_scenes",
    "resolve_image", "set_reference",
    "ARROW_SCHEMA_VERSION", "derive_arrow_schema", "load_arrow_schema", "snapshot_tables", "write_snapshot",
]
