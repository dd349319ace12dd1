"""The store: where the toolkit keeps things, and the only layer that talks to the database.

* :class:`Workspace` (``iea.toml``, the catalog database, the object store and the folders of
  a workspace) and :func:`init_workspace` / :func:`find_workspace`;
* the ORM models and their vocabularies (:class:`Image`, :class:`Label`, ``LABEL_KINDS``, …),
  the engine and migrations (:func:`upgrade_database`, :func:`check_schema`);
* the unit of work (:class:`UnitOfWork`, opened by :meth:`Workspace.unit`): one transaction
  with the object store and the acting user, per workflow call;
* roles and what they allow (``ROLES``, ``PERMISSIONS``, :class:`UserInfo`, :func:`require`);
* the content-addressed :class:`ObjectStore`.

SQLAlchemy is imported on first use of a database name, so ``from iea_data.store import
Workspace`` stays cheap for the command line's start-up.
"""

from __future__ import annotations

from iea_data.core.lazy import lazy_attributes

from .objects import IMAGE_MODE, ObjectStore, SourceChangedError, sha256_bytes, sync_filesystem
from .workspace import CONFIG_NAME, Settings, Workspace, find_workspace, init_workspace

_DB = [
    "get_engine",
    "make_session",
    "upgrade_database",
    "current_revision",
    "head_revision",
    "check_schema",
    "dispose_engines",
    "catalog_unreachable",
    "alembic_config",
    "MIGRATIONS_DIR",
]
_MODELS = [
    "Base",
    "Image",
    "ImagePath",
    "IngestError",
    "IngestRun",
    "Label",
    "Release",
    "Review",
    "Scene",
    "Score",
    "SplitMember",
    "Target",
    "User",
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
    "BASE_KINDS",
    "IMAGE_STATUSES",
    "LABEL_KINDS",
    "LABEL_STATUSES",
    "ROLES",
    "utcnow",
]
_UNIT = ["UnitOfWork", "unit_of_work", "transaction", "aware"]
_ROLES = ["ACTIONS", "PERMISSIONS", "UserInfo", "AuthError", "require"]
_UPSERT = ["insert_ignore"]
_SUMMARY = [
    "CONSENSUS_INPUT_STATUSES",
    "MAX_GAP_SECONDS",
    "json_field",
    "begin_annotation",
    "refresh_image",
    "record_consensus",
    "rebuild_quality_summary",
    "expert_heads_query",
]

__all__ = [
    "Workspace",
    "Settings",
    "init_workspace",
    "find_workspace",
    "CONFIG_NAME",
    "ObjectStore",
    "sha256_bytes",
    "sync_filesystem",
    "SourceChangedError",
    "IMAGE_MODE",
    *_DB,
    *_MODELS,
    *_UNIT,
    *_ROLES,
    *_UPSERT,
    *_SUMMARY,
]

_LAZY = {
    **{n: "._db" for n in _DB},
    **{n: "._models" for n in _MODELS},
    **{n: "._unit" for n in _UNIT},
    **{n: "._upsert" for n in _UPSERT},
    **{n: "._summary" for n in _SUMMARY},
    **{n: "._roles" for n in _ROLES},
}
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__, namespace=globals())
