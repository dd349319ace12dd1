"""The released P-IEANet training layout's units: one named conversion each way.

The released training code reads a target map ``<img_id without extension>.npy``, divides it
by 255 on load and compares it (L1) with the network output, which is ``ideal - test`` at
256 x 256 and is not resized. So a map on disk in that layout is float32 (256, 256) equal
to ``-residual * 255``, where ``residual = Y(photo) - Y(ideal)`` is the project's sign.
(``p-ieanet-official/ARCHITECTURE.md``, "Released training code".)
"""

from __future__ import annotations

import numpy as np

from iea_data.core.imaging import check_residual, resize_map

__all__ = ["OFFICIAL_MAP_SIZE", "OFFICIAL_MAP_SCALE", "residual_to_official_map", "official_map_to_residual"]

#: (height, width) of every map in the released layout: the network's fixed output size.
OFFICIAL_MAP_SIZE = (256, 256)
#: The released code divides a stored map by this on load.
OFFICIAL_MAP_SCALE = 255.0


def residual_to_official_map(residual: np.ndarray) -> np.ndarray:
    """A project residual map as the released training code expects it on disk.

    Parameters
    ----------
    residual : ndarray, float32, shape (h, w), values in [-1, 1]
        ``Y(photo) - Y(ideal)``; negative where the photo is too dark.

    Returns
    -------
    ndarray, float32, shape (256, 256), values in [-255, 255]
        ``-resize(residual, 256x256) * 255``: the released network's sign (``ideal - test``,
        positive where the photo is too dark) times 255, because the released loader
        divides by 255. Resizing uses :func:`iea_data.core.imaging.resize_map` (area when
        shrinking, bilinear when growing).

    Examples
    --------
    >>> r = np.full((2, 2), -0.25, np.float32)     # a uniformly too-dark photo
    >>> m = residual_to_official_map(r)
    >>> m.shape, m.dtype, float(m[0, 0])
    ((256, 256), dtype('float32'), 63.75)
    >>> float(official_map_to_residual(m)[0, 0])
    -0.25
    """
    residual = check_residual(residual, "residual")
    small = resize_map(residual, OFFICIAL_MAP_SIZE)
    out = small * np.float32(-OFFICIAL_MAP_SCALE)
    out += np.float32(0.0)  # turn -0.0 into 0.0 so that ideal pixels write as +0
    return out.astype(np.float32, copy=False)


def official_map_to_residual(official: np.ndarray) -> np.ndarray:
    """The inverse of :func:`residual_to_official_map` (without undoing the resize).

    Parameters
    ----------
    official : ndarray, float, shape (h, w), values in [-255, 255]
        A map in the released layout's units (``(ideal - test) * 255``).

    Returns
    -------
    ndarray, float32, shape (h, w), values in [-1, 1]
        ``-official / 255``, the project's ``Y(photo) - Y(ideal)``.

    Examples
    --------
    >>> official_map_to_residual(np.array([[63.75, -255.0]], np.float32)).tolist()
    [[-0.25, 1.0]]
    """
    arr = np.asarray(official)
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.floating):
        raise ValueError(
            f"official must be a float (h, w) map in the released units; got dtype {arr.dtype}, shape {arr.shape}"
        )
    out = (arr.astype(np.float64) / -OFFICIAL_MAP_SCALE).astype(np.float32) + np.float32(0.0)
    return check_residual(out, "official / -255")
