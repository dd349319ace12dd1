"""Lazy package attributes: torch is imported only when a torch-backed name is used."""

import subprocess
import sys

from conftest import REPO


def test_model_and_training_import_torch_only_on_first_use():
    code = (
        "import sys, iea_data.core.model as m, iea_data.workflows.training as t\n"
        "assert 'torch' not in sys.modules, 'importing the packages pulled torch'\n"
        "assert m.get_model_cfg('pieanet').input_size == (256, 256)\n"
        "assert 'create_model' in dir(m) and 'train' in dir(t)\n"
        "f = m.create_model\n"
        "assert 'torch' in sys.modules and m.create_model is f\n"
        "try:\n    m.no_such_name\nexcept AttributeError as e:\n    assert 'no_such_name' in str(e)\n"
        "else:\n    raise SystemExit('no AttributeError')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
