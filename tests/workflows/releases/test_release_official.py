"""The released training layout's units and sign, in one conversion function each way."""

from __future__ import annotations

import csv

import numpy as np
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from iea_data.core.imaging import resize_map
from iea_data.core.residuals import OFFICIAL_MAP_SIZE, official_map_to_residual, residual_to_official_map
from iea_data.workflows.releases import build_release


def test_a_too_dark_photo_is_positive_in_the_released_units():
    # project sign: too dark = negative residual; the released network predicts ideal - test (positive
    # where too dark) and its loader divides the stored map by 255
    dark = np.full((300, 400), -0.2, np.float32)
    m = residual_to_official_map(dark)
    assert m.shape == OFFICIAL_MAP_SIZE == (256, 256) and m.dtype == np.float32
    np.testing.assert_allclose(m, 0.2 * 255, rtol=1e-6)
    # what the released loader sees after its "/ 255" is the released network's sign and scale
    np.testing.assert_allclose(m / 255.0, 0.2, rtol=1e-6)


def test_it_agrees_with_the_model_boundarys_sign_function():
    torch = pytest.importorskip("torch")
    from iea_data.core.model import residual_to_official

    r = np.random.default_rng(0).uniform(-1, 1, (256, 256)).astype(np.float32)
    np.testing.assert_allclose(
        residual_to_official_map(r), residual_to_official(torch.from_numpy(r)).numpy() * 255.0, rtol=1e-6
    )


@settings(max_examples=40, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 40)), elements=st.floats(-1, 1, width=32)))
def test_round_trip_returns_the_resized_residual(r):
    back = official_map_to_residual(residual_to_official_map(r))
    np.testing.assert_allclose(back, resize_map(r, (256, 256)), atol=1e-6)


def test_out_of_range_input_is_refused_not_clipped():
    with pytest.raises(ValueError, match="residual"):
        residual_to_official_map(np.full((2, 2), 1.5, np.float32))
    with pytest.raises(ValueError, match="official"):
        official_map_to_residual(np.full((2, 2), 300.0, np.float32))
    with pytest.raises(ValueError, match="official"):
        official_map_to_residual(np.zeros(4, np.float32))


def test_official_export_holds_csv_images_maps_and_references(demo_ws):
    rep = build_release(demo_ws, "off", "1.0.0", labels="refdiff", formats=("native", "official"), ratios=(0.5, 0.5))
    root = demo_ws.releases_dir / "off" / "1.0.0"
    native = {r["name"]: r for r in pq.read_table(root / "native" / "images.parquet").to_pylist()}
    n_rows = 0
    for split in rep.counts:
        with open(root / "official" / f"{split}.csv", newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows[0] == ["img_id", "ref_id", "score"]
        for img_id, ref_id, score in rows[1:]:
            n_rows += 1
            assert native[img_id]["split"] == split
            assert ref_id == img_id.split("_")[0] + ".png"  # astronaut_-1EV.png -> astronaut.png
            assert score == "nan"  # the demo has no scores
            assert (root / "official" / "images" / img_id).stat().st_ino == (
                root / native[img_id]["file"]
            ).stat().st_ino
            assert (root / "official" / "references" / ref_id).is_file()
            m = np.load(root / "official" / "maps" / (img_id[:-4] + ".npy"))
            expected = -resize_map(np.load(root / native[img_id]["map_file"]), (256, 256)) * 255
            np.testing.assert_allclose(m, expected, atol=1e-3)
    assert n_rows == 8 and rep.official_skipped == []
