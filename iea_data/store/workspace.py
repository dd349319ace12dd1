"""The workspace: a folder holding ``iea.toml``, the catalog database, ``objects/`` and ``releases/``.

Every command finds its workspace with :func:`find_workspace`: an explicit path
(``--workspace``), else the ``IEA_HOME`` environment variable, else the current folder.
``IEA_DATABASE_URL`` (for example ``postgresql+psycopg://user@host/db``) points the same
workspace at another database.

Examples
--------
>>> import tempfile, pathlib
>>> ws = init_workspace(pathlib.Path(tempfile.mkdtemp()) / "ws")
>>> ws.settings.label_max_side
1024
>>> ws.database_url.startswith("sqlite:///")
True
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import tomli_w

from iea_data.core.errors import IeaError, WorkspaceNotFoundError
from iea_data.core.files import atomic_write
from iea_data.core.redaction import redact_url

from .objects import ObjectStore

if TYPE_CHECKING:  # pragma: no cover - types only
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import Session

    from ._roles import UserInfo
    from ._unit import UnitOfWork

__all__ = ["Settings", "Workspace", "init_workspace", "find_workspace", "CONFIG_NAME"]

CONFIG_NAME = "iea.toml"
DEFAULT_DB_NAME = "catalog.sqlite"


@dataclass(frozen=True)
class Settings:
    """Workspace settings, stored in ``iea.toml``.

    Attributes
    ----------
    database_url : str
        SQLAlchemy URL. ``sqlite:///catalog.sqlite`` (the default) is relative to the
        workspace; SQLite runs in WAL mode. Overridden by ``IEA_DATABASE_URL``.
    max_pixels : int
        Images whose header announces more pixels are refused before decoding
        (decompression-bomb guard). Default 150 MP.
    workers : int
        Worker processes for ingest and pre-labelling; 0 means one per CPU core.
    memory_budget_mb : int
        Ingest schedules its decoders so that the estimated decoded size of the files being
        decoded at once (all workers together) stays within this many MiB; a larger file runs
        alone. Default 2048.
    label_max_side : int
        Residual maps are stored with their long side at most this many pixels, never
        larger than the image.
    thumbnail_side : int
        Long side of the thumbnails made at ingest (at most ``stats_side``).
    stats_side : int
        Ingest computes luma statistics on a preview with this long side (default 256, the
        released network's input size); larger is more detailed and slower.
    session_idle_minutes : int
        The annotator app logs a user out after this many idle minutes.
    login_max_failures : int
        Failed logins in a row after which each further attempt for that name is slowed down.
    release_license : str
        The license written into release manifests and dataset cards.
    """

    database_url: str = field(default=f"sqlite:///{DEFAULT_DB_NAME}", repr=False)  # may hold a password
    max_pixels: int = 150_000_000
    workers: int = 0
    memory_budget_mb: int = 2048
    label_max_side: int = 1024
    thumbnail_side: int = 256
    stats_side: int = 256
    session_idle_minutes: int = 60
    login_max_failures: int = 5
    release_license: str = "unspecified (set [releases] license in iea.toml)"

    def __post_init__(self) -> None:
        if not isinstance(self.release_license, str) or not self.release_license.strip():
            raise IeaError(f"setting 'releases.license' must be a non-empty string, got {self.release_license!r}")
        for name in (
            "max_pixels",
            "label_max_side",
            "thumbnail_side",
            "stats_side",
            "session_idle_minutes",
            "login_max_failures",
            "memory_budget_mb",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise IeaError(f"setting {name!r} must be a positive integer, got {value!r}")
        if not isinstance(self.workers, int) or self.workers < 0:
            raise IeaError(f"setting 'workers' must be an integer >= 0 (0 = all cores), got {self.workers!r}")
        if not isinstance(self.database_url, str) or "://" not in self.database_url:
            got = (
                repr(self.database_url)
                if "@" not in str(self.database_url)
                else "a value without '://' (not shown: it may hold a password)"
            )
            raise IeaError(
                f"setting 'database_url' must be a SQLAlchemy URL such as 'sqlite:///catalog.sqlite', got {got}"
            )

    # iea.toml groups the settings by topic.
    _SECTIONS: ClassVar[dict[str, tuple[str, str]]] = {
        "database_url": ("catalog", "database_url"),
        "max_pixels": ("ingest", "max_pixels"),
        "workers": ("ingest", "workers"),
        "memory_budget_mb": ("ingest", "memory_budget_mb"),
        "label_max_side": ("labels", "max_side"),
        "thumbnail_side": ("ingest", "thumbnail_side"),
        "stats_side": ("ingest", "stats_side"),
        "session_idle_minutes": ("app", "session_idle_minutes"),
        "login_max_failures": ("app", "login_max_failures"),
        "release_license": ("releases", "license"),
    }

    def to_toml(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for f in fields(self):
            section, key = self._SECTIONS[f.name]
            out.setdefault(section, {})[key] = getattr(self, f.name)
        return out

    @classmethod
    def from_toml(cls, data: Mapping[str, Any], *, source: str = CONFIG_NAME) -> Settings:
        kwargs: dict[str, Any] = {}
        known = {(s, k) for s, k in cls._SECTIONS.values()}
        for section, table in data.items():
            if not isinstance(table, Mapping):
                raise IeaError(f"{source}: [{section}] must be a table")
            for key in table:
                if (section, key) not in known:
                    valid = ", ".join(f"{s}.{k}" for s, k in sorted(known))
                    raise IeaError(f"{source}: unknown setting {section}.{key}; valid settings: {valid}")
        for name, (section, key) in cls._SECTIONS.items():
            if key in data.get(section, {}):
                kwargs[name] = data[section][key]
        return cls(**kwargs)


@dataclass
class Workspace:
    """An opened workspace.

    Parameters
    ----------
    root : Path
        The workspace folder (it holds ``iea.toml``).
    settings : Settings
        Parsed settings.
    """

    root: Path
    settings: Settings = field(default_factory=Settings)

    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_NAME

    @property
    def objects(self) -> ObjectStore:
        return ObjectStore(self.root / "objects")

    @property
    def releases_dir(self) -> Path:
        return self.root / "releases"

    @property
    def database_url(self) -> str:
        """The effective database URL: ``IEA_DATABASE_URL`` or the setting, with relative
        SQLite paths resolved against the workspace."""
        url = os.environ.get("IEA_DATABASE_URL") or self.settings.database_url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite:///:memory:":
            url = prefix + str((self.root / url[len(prefix) :]).resolve())
        return url

    @property
    def database_url_redacted(self) -> str:
        """:attr:`database_url` with its password replaced by ``***``: the form to print or log."""
        return redact_url(self.database_url)

    @property
    def workers(self) -> int:
        return self.settings.workers or (os.cpu_count() or 1)

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Workspace:
        """Open the workspace at ``root``; raise :class:`WorkspaceNotFoundError` if it has no ``iea.toml``."""
        root = Path(root).expanduser().resolve()
        config = root / CONFIG_NAME
        if not config.is_file():
            raise WorkspaceNotFoundError(
                f"{root} is not an iea workspace (no {CONFIG_NAME}). Create one with `iea init {root}`."
            )
        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise IeaError(f"{config}: not valid TOML ({exc}); fix or delete the file") from None
        return cls(root=root, settings=Settings.from_toml(data, source=str(config)))

    def engine(self) -> Engine:
        """A SQLAlchemy engine for this workspace's catalog (cached per URL)."""
        from . import get_engine

        return get_engine(self.database_url)

    def session(self) -> Session:
        """A new ORM session on the catalog (use as a context manager).

        Workflows use :meth:`unit` instead: one transaction with the object store and the actor.
        """
        from . import make_session

        return make_session(self.engine())

    def unit(self, actor: UserInfo | None = None) -> AbstractContextManager[UnitOfWork]:
        """Open a :class:`~iea_data.store.UnitOfWork` (one transaction) acting as ``actor``.

        Examples
        --------
        >>> import tempfile
        >>> ws = init_workspace(tempfile.mkdtemp())
        >>> with ws.unit() as uow:
        ...     uow.workspace is ws, uow.actor
        (True, None)
        """
        from ._unit import unit_of_work

        return unit_of_work(self, actor)


def init_workspace(
    path: str | os.PathLike[str], *, settings: Settings | None = None, upgrade: bool = True
) -> Workspace:
    """Create (or complete) a workspace at ``path`` and bring its database to the newest schema.

    An existing ``iea.toml`` is kept; missing folders are created. Running it twice is harmless.

    Parameters
    ----------
    path : path-like
        The folder to create.
    settings : Settings, optional
        Settings for a new workspace (ignored when ``iea.toml`` already exists).
    upgrade : bool
        Run the database migrations (default True).
    """
    root = Path(path).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise IeaError(f"cannot create a workspace at {root}: a file of that name exists")
    root.mkdir(parents=True, exist_ok=True)
    config = root / CONFIG_NAME
    if not config.exists():
        text = "# iea workspace settings. See README.md, section Configuration.\n"
        text += tomli_w.dumps((settings or Settings()).to_toml())
        atomic_write(config, text.encode("utf-8"))
    for sub in ("objects", "releases"):
        (root / sub).mkdir(exist_ok=True)
    ws = Workspace.open(root)
    if upgrade:
        from . import upgrade_database

        upgrade_database(ws.engine())
    return ws


def find_workspace(explicit: str | os.PathLike[str] | None = None) -> Workspace:
    """Find the workspace: ``explicit``, else ``IEA_HOME``, else the current folder.

    Raises
    ------
    WorkspaceNotFoundError
        With a message naming where it looked and how to create one.
    """
    if explicit:
        return Workspace.open(explicit)
    env = os.environ.get("IEA_HOME")
    if env:
        try:
            return Workspace.open(env)
        except WorkspaceNotFoundError:
            raise WorkspaceNotFoundError(
                f"IEA_HOME={env} is not an iea workspace (no {CONFIG_NAME}). "
                f"Create it with `iea init {env}` or unset IEA_HOME."
            ) from None
    cwd = Path.cwd()
    if (cwd / CONFIG_NAME).is_file():
        return Workspace.open(cwd)
    raise WorkspaceNotFoundError(
        f"no iea workspace found: pass --workspace DIR, set IEA_HOME, or run from a folder holding "
        f"{CONFIG_NAME} (current folder: {cwd}). Create one with `iea init DIR`."
    )
