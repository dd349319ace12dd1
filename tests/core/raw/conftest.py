"""Small DNGs written by PiDNG from a synthetic Bayer mosaic of a known linear scene."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pidng")
pytest.importorskip("rawpy")

from iea_data.core.raw import synthetic_dng

H, W = 64, 96


def known_scene() -> np.ndarray:
    """A smooth linear scene with a bright patch that clips at +1 EV."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    scene = np.stack([0.2 + 0.3 * xx / W, 0.4 + 0.1 * yy / H, 0.1 + 0.05 * (xx + yy) / (W + H)], -1)
    scene[16:32, 32:64] = 0.8
    return scene


@pytest.fixture(scope="session")
def raw_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("raw")
    scene = known_scene()
    data = synthetic_dng(scene, exposure_time=1 / 250, f_number=8.0, iso=400, exposure_bias=-1.0)
    (d / "scene.dng").write_bytes(data)
    (d / "dark.dng").write_bytes(synthetic_dng(scene * 0.25, model="Bayer dark"))
    (d / "truncated.dng").write_bytes(data[: len(data) // 2])
    (d / "notraw.dng").write_bytes(b"this is a text file, not a camera RAW\n" * 20)
    return d


@pytest.fixture(scope="session")
def scene() -> np.ndarray:
    return known_scene()
