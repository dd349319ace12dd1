"""The photo shown under the painter, at the painted map's resolution."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from iea_data.core.errors import IeaError, NotFoundError

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = ["photo_for_map", "photo_jpeg"]


def photo_for_map(workspace: Workspace, image_id: int, shape: Sequence[int]) -> np.ndarray:
    """Decode a catalogued image and resize it to a map's ``shape`` (h, w).

    Parameters
    ----------
    workspace : Workspace
    image_id : int
        Catalog id (the browser only ever sends ids, never paths).
    shape : (int, int)
        The map's (h, w): the label resolution.

    Returns
    -------
    ndarray, float32, shape (h, w, 3), values in [0, 1]

    Raises
    ------
    NotFoundError
        No such image.
    IeaError
        None of the image's recorded files exists any more.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from iea_data.workflows.catalog import ingest, list_images
    >>> from iea_data.core.imaging import write_image
    >>> from iea_data.store.workspace import init_workspace
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "photos").mkdir()
    >>> write_image(root / "photos" / "grey.png", np.full((4, 6, 3), 0.5, np.float32))
    >>> ws = init_workspace(root / "ws")
    >>> _ = ingest(ws, [root / "photos"], workers=1)
    >>> photo = photo_for_map(ws, list_images(ws)[0]["id"], (2, 3))
    >>> photo.shape, photo.dtype, round(float(photo.mean()), 2)
    ((2, 3, 3), dtype('float32'), 0.5)
    """
    from iea_data.core.imaging import read_image, resize_image
    from iea_data.store import Image

    from ._queries import image_path

    h, w = (int(v) for v in shape)
    if h < 1 or w < 1:
        raise ValueError(f"`shape` must be (h, w) with positive sides, got {tuple(shape)!r}")
    with workspace.unit() as uow:  # the file is decoded after the unit ends: no lock held meanwhile
        image = uow.session.get(Image, int(image_id))
        if image is None:
            raise NotFoundError(f"no image with id {image_id}")
        path = image_path(uow, image.id)
    if path is None:
        raise IeaError(f"image {image.name!r} (id {image.id}) has no file on disk any more; re-ingest it")
    rgb = read_image(path, max_pixels=workspace.settings.max_pixels, max_side=max(h, w)).rgb
    if rgb.shape[:2] != (h, w):
        rgb = resize_image(rgb, (h, w))
    return rgb


def photo_jpeg(workspace: Workspace, image_id: int, shape: Sequence[int], *, quality: int = 88) -> bytes:
    """:func:`photo_for_map` encoded as JPEG bytes for the browser.

    Examples
    --------
    >>> from iea_data.workflows.demo import example_workspace
    >>> ws, ann, image_id = example_workspace()
    >>> photo_jpeg(ws, image_id, (6, 8))   # the example's images have no files
    Traceback (most recent call last):
    ...
    iea_data.core.errors.IeaError: image 's_N1.png' (id 2) has no file on disk any more; re-ingest it
    """
    from iea_data.core.imaging import encode_image

    return encode_image(photo_for_map(workspace, image_id, shape), ".jpg", quality=quality)
