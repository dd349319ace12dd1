"""Catalog workflows: ingest, scenes, manifests, snapshots, queries, and the photo under the painter.

The tables themselves (ORM models, engine, migrations) are in :mod:`iea_data.store`.
"""

from ._ingest import IMAGE_EXTENSIONS, FileError, IngestReport, ingest, walk_images
from ._manifest import (
    ManifestReport,
    export_manifest,
    format_score,
    import_manifest,
    link_missing_files,
    read_manifest,
)
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
from ._snapshot import (
    ARROW_SCHEMA_VERSION,
    derive_arrow_schema,
    load_arrow_schema,
    snapshot_tables,
    write_snapshot,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "FileError",
    "IngestReport",
    "ingest",
    "walk_images",
    "ManifestReport",
    "export_manifest",
    "link_missing_files",
    "format_score",
    "import_manifest",
    "read_manifest",
    "catalog_stats",
    "image_path",
    "list_errors",
    "list_images",
    "list_runs",
    "SceneSummary",
    "apply_sidecar",
    "assign_scenes_by_filename",
    "group_scenes_by_exif",
    "list_scenes",
    "resolve_image",
    "set_reference",
    "ARROW_SCHEMA_VERSION",
    "derive_arrow_schema",
    "load_arrow_schema",
    "snapshot_tables",
    "write_snapshot",
]

from ._photo import photo_for_map, photo_jpeg

__all__ += ["photo_for_map", "photo_jpeg"]
