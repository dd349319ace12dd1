"""Versioned dataset releases: consensus labels, scene-aware splits, checksummed manifests, exports.

``build_release`` cuts ``WORKSPACE/releases/NAME/X.Y.Z/`` from the catalog (formats
``native``, ``official``, ``webdataset``, ``hf``) with a ``manifest.json`` listing every
file's size and sha256 and a dataset card; ``verify_release``, ``diff_releases`` and
``list_releases`` read releases back; ``ReleaseDataset`` (torch) serves one split.
A format is one :class:`FormatWriter` class registered in :data:`FORMATS` with
:func:`register_format` (docs/releases.md, "Adding a format").
``ReleaseDataset`` is imported on first use, so this package does not import torch.
"""

from ._build import (
    NAME_PATTERN,
    BuildReport,
    ReleasePlan,
    build_manifest,
    build_release,
    parse_version,
    plan_release,
    release_path,
)
from ._consensus import CONSENSUS_METHODS, SIGN_TOLERANCE, TRIM_PROPORTION, agreement_stats, consensus_map
from ._errors import LeakageError, ManifestSchemaError, ReleaseError, ReleaseExistsError
from ._files import remove_release_tree, resolve_file, sha256_file
from ._formats import (
    DEFAULT_SHARD_BYTES,
    FORMATS,
    FileLog,
    FormatWriter,
    ReleaseItem,
    WriteOptions,
    list_formats,
    register_format,
)
from ._gather import LABEL_POLICIES, Gathered, Sample, SceneRef, gather
from ._inspect import (
    DiffReport,
    VerifyReport,
    diff_releases,
    list_releases,
    open_release,
    read_manifest,
    verify_release,
)
from ._schema import (
    MANIFEST_SCHEMA_PATH,
    RELEASE_ARROW_SCHEMA,
    RELEASE_TABLES,
    release_arrow_schema,
    validate_manifest,
)
from ._splits import NEAR_DUPLICATE_BITS, assign_splits, dhash64, find_leaks, normalize_ratios

__all__ = [
    "build_release",
    "BuildReport",
    "plan_release",
    "ReleasePlan",
    "build_manifest",
    "gather",
    "Gathered",
    "Sample",
    "SceneRef",
    "release_path",
    "parse_version",
    "NAME_PATTERN",
    "verify_release",
    "VerifyReport",
    "diff_releases",
    "DiffReport",
    "list_releases",
    "open_release",
    "read_manifest",
    "ReleaseDataset",
    "consensus_map",
    "agreement_stats",
    "CONSENSUS_METHODS",
    "TRIM_PROPORTION",
    "SIGN_TOLERANCE",
    "assign_splits",
    "normalize_ratios",
    "dhash64",
    "find_leaks",
    "NEAR_DUPLICATE_BITS",
    "resolve_file",
    "sha256_file",
    "remove_release_tree",
    "LABEL_POLICIES",
    "FORMATS",
    "FormatWriter",
    "ReleaseItem",
    "WriteOptions",
    "FileLog",
    "register_format",
    "list_formats",
    "DEFAULT_SHARD_BYTES",
    "MANIFEST_SCHEMA_PATH",
    "RELEASE_ARROW_SCHEMA",
    "RELEASE_TABLES",
    "release_arrow_schema",
    "validate_manifest",
    "ReleaseError",
    "ReleaseExistsError",
    "LeakageError",
    "ManifestSchemaError",
]


def __getattr__(name: str):
    if name == "ReleaseDataset":  # torch only when asked for
        from ._dataset import ReleaseDataset

        return ReleaseDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
