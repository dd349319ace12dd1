"""The MODELS registry and its front door (create_model, list_models, get_model_cfg)."""

from __future__ import annotations

import dataclasses

import pytest

from iea_data.core.errors import IeaError
from iea_data.core.model import (
    MODELS,
    PIEANET_CFG,
    ModelCfg,
    PIEANet,
    create_model,
    get_model_cfg,
    list_models,
)


def test_list_models():
    assert list_models() == ["pieanet"]
    assert list_models("pie*") == ["pieanet"]
    assert list_models("resnet*") == []
    assert "pieanet" in MODELS


def test_unknown_name_suggests():
    with pytest.raises(IeaError, match="Did you mean 'pieanet'"):
        create_model("pieanett")
    with pytest.raises(IeaError, match="Did you mean 'pieanet'"):
        get_model_cfg("PIEAnet".lower() + "x")


def test_create_untrained_model():
    model = create_model("pieanet", impl="reference")
    assert isinstance(model, PIEANet) and model.impl == "reference" and not model.training
    with pytest.raises(TypeError, match="weights must be"):
        create_model("pieanet", weights=3)


def test_config_is_typed_frozen_data():
    cfg = get_model_cfg("pieanet")
    assert cfg is PIEANET_CFG and isinstance(cfg, ModelCfg)
    assert cfg.input_size == (256, 256)
    assert cfg.sha256 == "6f1cf2a5ca446235120252c51faf1463b55514acf8822b96d6275d885ba02700"
    assert cfg.license and cfg.source and "ideal" in cfg.notes
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "other"


def test_importing_the_package_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, iea_data.core.model as m; m.PIEANET_CFG; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
