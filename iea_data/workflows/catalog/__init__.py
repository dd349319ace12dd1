"""Catalog workflows: ingest, scenes, manifests, snapshots, queries, and the photo under the painter.

The tables themselves (ORM models, engine, migrations) are in :mod:`iea_data.store`.

Each public name is imported from its module on first use (``iea_data.core.lazy``), so
``import iea_data.workflows.catalog`` loads neither OpenCV, PIL, pandas nor pyarrow, and
``iea catalog stats`` imports only the queries it runs.

Examples
--------
>>> import iea_data.workflows.catalog as catalog
>>> "catalog_stats" in dir(catalog)
True
"""

from iea_data.core.lazy import lazy_attributes

_LAZY = {
    **dict.fromkeys(["IMAGE_EXTENSIONS", "FileError", "IngestReport", "Scanner", "ingest", "walk_images"], "._ingest"),
    **dict.fromkeys(["init_scan_worker", "scan_files"], "._scan"),
    **dict.fromkeys(
        [
            "ManifestReport",
            "export_manifest",
            "format_score",
            "import_manifest",
            "link_missing_files",
            "read_manifest",
        ],
        "._manifest",
    ),
    **dict.fromkeys(["catalog_stats", "image_path", "list_errors", "list_images", "list_runs"], "._queries"),
    **dict.fromkeys(
        [
            "SceneSummary",
            "apply_sidecar",
            "assign_scenes_by_filename",
            "group_scenes_by_exif",
            "list_scenes",
            "resolve_image",
            "set_reference",
        ],
        "._scenes_db",
    ),
    **dict.fromkeys(
        ["ARROW_SCHEMA_VERSION", "derive_arrow_schema", "load_arrow_schema", "snapshot_tables", "write_snapshot"],
        "._snapshot",
    ),
    **dict.fromkeys(["photo_for_map", "photo_jpeg"], "._photo"),
}

__all__ = [
    "IMAGE_EXTENSIONS",
    "FileError",
    "IngestReport",
    "ingest",
    "walk_images",
    "Scanner",
    "init_scan_worker",
    "scan_files",
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
    "photo_for_map",
    "photo_jpeg",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__, namespace=globals())
