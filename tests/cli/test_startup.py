"""Start-up stays cheap: heavy libraries load on first use, not on import (issue 11).

No timing here (the machine's load varies); ``pipelines/benchmarks/startup.py`` measures it.
Each check runs in a fresh interpreter and looks at ``sys.modules`` after the import.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "cv2", "pandas", "pyarrow")


def _loaded(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "code",
    [
        "import iea_data",
        "import iea_data.workflows.catalog",
        "from iea_data.workflows.catalog import catalog_stats",
        "import iea_data.core.imaging, iea_data.core.scenes, iea_data.store",
        "import pipelines.cli",  # the module `iea --help` runs
    ],
)
def test_import_loads_no_heavy_library(code):
    loaded = _loaded(code)
    assert not loaded & set(HEAVY), f"{code!r} loaded {sorted(loaded & set(HEAVY))}"


def test_iea_help_loads_no_heavy_library():
    """`iea --help` itself (the Typer app built and its help rendered), not only the import."""
    code = (
        "import sys\nfrom pipelines.cli import main\nsys.argv = ['iea', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    loaded = _loaded(code)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert "numpy" not in loaded and "sqlalchemy" not in loaded


def test_lazy_names_resolve_to_the_same_objects():
    """The lazy package attributes are the real ones (first use imports the module)."""
    from iea_data.core import imaging
    from iea_data.core.imaging import _decode, _header

    assert imaging.read_image is _decode.read_image
    assert imaging.read_header is _header.read_header
    assert set(dir(imaging)) >= set(imaging.__all__)


def test_iea_catalog_stats_loads_no_heavy_library(tmp_path):
    """`iea catalog stats` needs SQLAlchemy and the queries only: the catalog package's other modules stay unloaded."""
    from iea_data.store.workspace import init_workspace

    init_workspace(tmp_path / "ws")
    code = (
        "import sys\nfrom pipelines.cli import main\n"
        f"sys.argv = ['iea', '-w', {str(tmp_path / 'ws')!r}, 'catalog', 'stats', '--json']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
    )
    loaded = _loaded(code)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert "PIL" not in loaded


def test_catalog_names_resolve_lazily_to_their_modules():
    from iea_data.workflows import catalog
    from iea_data.workflows.catalog import _queries, _snapshot

    assert catalog.catalog_stats is _queries.catalog_stats
    assert catalog.write_snapshot is _snapshot.write_snapshot
    assert set(dir(catalog)) >= set(catalog.__all__)
    with pytest.raises(AttributeError):
        catalog.no_such_name  # noqa: B018
