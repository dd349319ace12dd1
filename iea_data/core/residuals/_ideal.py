"""Ideal-exposure images from an EV map painted on a scene's reference (scaling in linear light)."""

from __future__ import annotations

import numpy as np

from iea_data.core.imaging import apply_ev, check_image, resize_map

__all__ = ["EV_LIMIT", "ideal_from_ev", "check_ev_map"]

#: EV maps are limited to ±EV_LIMIT stops (beyond, every pixel is black or white anyway).
EV_LIMIT = 10.0


def ideal_from_ev(reference_rgb: np.ndarray, ev_map: np.ndarray) -> np.ndarray:
    """The ideal-exposure image: the reference scaled by ``2**EV`` in linear light, clipped.

    Parameters
    ----------
    reference_rgb : ndarray, float32 (H, W, 3) in [0, 1]
        The scene's reference, sRGB-encoded.
    ev_map : ndarray, float32 (h, w)
        Stops per pixel, finite; resized to (H, W) (bilinear when growing) when its size differs.

    Returns
    -------
    ndarray, float32 (H, W, 3) in [0, 1]
        ``linear_to_srgb(clip(srgb_to_linear(reference) * 2**ev, 0, 1))``.

    Examples
    --------
    >>> ref = np.full((2, 4, 3), 0.5, np.float32)
    >>> ev = np.array([[0.0, 1.0]], np.float32)
    >>> ideal = ideal_from_ev(ref, ev)
    >>> round(float(ideal[0, 0, 0]), 3), round(float(ideal[0, 3, 0]), 3)
    (0.5, 0.686)
    """
    check_image(reference_rgb, "reference_rgb")
    if not isinstance(ev_map, np.ndarray) or ev_map.ndim != 2 or ev_map.dtype != np.float32:
        got = (
            f"{ev_map.dtype} array of shape {ev_map.shape}" if isinstance(ev_map, np.ndarray) else type(ev_map).__name__
        )
        raise TypeError(f"ev_map must be a float32 (h, w) array of stops, got {got}")
    if ev_map.shape != reference_rgb.shape[:2]:
        ev_map = resize_map(ev_map, reference_rgb.shape[:2])
    return apply_ev(reference_rgb, ev_map)


def check_ev_map(ev_map: np.ndarray, name: str = "ev_map") -> np.ndarray:
    """Validate an EV map: float32 ``(h, w)``, finite, within ``±EV_LIMIT`` stops; returns it.

    Examples
    --------
    >>> check_ev_map(np.zeros((2, 2), np.float32)).shape
    (2, 2)
    >>> check_ev_map(np.full((1, 1), 11.0, np.float32))
    Traceback (most recent call last):
    ...
    ValueError: ev_map must lie in [-10, 10] stops, got [11, 11]
    """
    if not isinstance(ev_map, np.ndarray) or ev_map.ndim != 2 or ev_map.dtype != np.float32:
        got = (
            f"{ev_map.dtype} array of shape {ev_map.shape}" if isinstance(ev_map, np.ndarray) else type(ev_map).__name__
        )
        raise TypeError(f"{name} must be a float32 (h, w) array of stops, got {got}")
    if not np.isfinite(ev_map).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    lo, hi = float(ev_map.min()), float(ev_map.max())
    if lo < -EV_LIMIT or hi > EV_LIMIT:
        raise ValueError(f"{name} must lie in [-{EV_LIMIT:g}, {EV_LIMIT:g}] stops, got [{lo:.4g}, {hi:.4g}]")
    return ev_map
