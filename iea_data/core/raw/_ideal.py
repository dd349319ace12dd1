"""The ideal target of a RAW-derived scene, computed from the linear render (no 8-bit detour)."""

from __future__ import annotations

import math

import numpy as np

from iea_data.core.imaging import linear_to_srgb, resize_map
from iea_data.core.residuals import check_ev_map

from ._render import _check_linear

__all__ = ["ideal_from_linear"]


def ideal_from_linear(linear: np.ndarray, ev_map: np.ndarray, *, reference_ev: float = 0.0) -> np.ndarray:
    """The ideal-exposure image from a scene's linear RAW render and its EV map.

    ``srgb(clip(linear * 2**(reference_ev + ev)))``: the same formula as
    :func:`iea_data.core.residuals.ideal_from_ev`, but starting from the sensor's linear
    values instead of the decoded (8- or 16-bit, clipped) reference. Nothing is clipped
    before the EV map is applied, so darkening a region where the reference is white
    recovers the highlights the sensor kept, and brightening a dark region uses the
    sensor's precision instead of amplifying 8-bit steps.

    Parameters
    ----------
    linear : numpy.ndarray
        float32 (H, W, 3), linear light (:attr:`LinearRender.linear`, 1.0 = the sensor's white).
    ev_map : numpy.ndarray
        float32 (h, w) stops per pixel relative to the reference, within the EV-map limit
        (:func:`~iea_data.core.residuals.check_ev_map`); resized to (H, W) when its size differs.
    reference_ev : float, optional
        The EV the scene's reference was rendered at from this RAW (``--reference`` of
        ``iea brackets render``); default 0.

    Returns
    -------
    numpy.ndarray
        float32 (H, W, 3) in [0, 1], sRGB-encoded.

    Examples
    --------
    >>> import numpy as np
    >>> lin = np.array([[[0.8, 0.8, 0.8], [0.1, 0.1, 0.1]]], np.float32)
    >>> ideal = ideal_from_linear(lin, np.full((1, 2), -1.0, np.float32), reference_ev=1.0)
    >>> [round(float(v), 3) for v in ideal[0, :, 0]]  # the reference (at +1 EV) clips 0.8; this does not
    [0.906, 0.349]
    """
    _check_linear(linear)
    check_ev_map(ev_map)
    if not isinstance(reference_ev, (int, float)) or isinstance(reference_ev, bool) or not math.isfinite(reference_ev):
        raise ValueError(f"`reference_ev` must be a finite number of stops; got {reference_ev!r}")
    if ev_map.shape != linear.shape[:2]:
        ev_map = resize_map(ev_map, linear.shape[:2])
    factor = np.exp2(ev_map.astype(np.float32) + np.float32(reference_ev))[..., None]
    scaled = linear * factor
    np.clip(scaled, 0.0, 1.0, out=scaled)
    return linear_to_srgb(scaled.astype(np.float32, copy=False))
