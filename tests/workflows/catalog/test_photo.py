"""The photo under the painter: decoded from the catalog by id, at the map's size."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def one_image(sqlite_workspace, tmp_path, rng):
    from iea_data.core.imaging import write_image
    from iea_data.workflows.catalog import ingest, list_images

    folder = tmp_path / "photos"
    folder.mkdir()
    rgb = rng.random((30, 40, 3), dtype=np.float32)
    write_image(folder / "noise.png", rgb)
    ingest(sqlite_workspace, [folder], workers=1)
    return sqlite_workspace, list_images(sqlite_workspace)[0]["id"], rgb, folder / "noise.png"


def test_photo_at_the_map_size(one_image):
    from iea_data.core.imaging import read_image, resize_image
    from iea_data.workflows.catalog import photo_for_map, photo_jpeg

    ws, image_id, rgb, path = one_image
    full = photo_for_map(ws, image_id, (30, 40))
    small = photo_for_map(ws, image_id, (15, 20))
    jpeg = photo_jpeg(ws, image_id, (15, 20))
    np.testing.assert_allclose(full, read_image(path).rgb, atol=1e-6)
    np.testing.assert_allclose(
        small, resize_image(read_image(path).rgb, (15, 20)), atol=2e-3
    )  # decoded at reduced size
    assert jpeg[:2] == b"\xff\xd8"


def test_unknown_image_and_missing_file(one_image):
    from iea_data.core.errors import IeaError, NotFoundError
    from iea_data.workflows.catalog import photo_for_map

    ws, image_id, _, path = one_image
    with pytest.raises(NotFoundError, match="no image with id 999"):
        photo_for_map(ws, 999, (10, 10))
    with pytest.raises(ValueError, match="shape"):
        photo_for_map(ws, image_id, (0, 10))
    path.unlink()
    with pytest.raises(IeaError, match="no file on disk"):
        photo_for_map(ws, image_id, (10, 10))
