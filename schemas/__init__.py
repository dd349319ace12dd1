"""Data contracts of the toolkit, as files: the catalog's Alembic migrations, the Arrow schemas of
catalog snapshots and releases, the release manifest's JSON schema and the rule-base files.

Code finds them through :data:`SCHEMAS_DIR`, never through a path relative to its own module.
"""

from pathlib import Path

#: The folder holding every schema file (``migrations/``, ``arrow/``, ``release/``, ``rules/``).
SCHEMAS_DIR = Path(__file__).resolve().parent

__all__ = ["SCHEMAS_DIR"]
