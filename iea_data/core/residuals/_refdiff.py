"""Reference differences: ``Y(variant) − Y(reference)``, the residual a bracket member has against its ideal."""

from __future__ import annotations

import numpy as np

from iea_data.core.imaging import label_shape, luma, resize_image, resize_map

__all__ = ["refdiff_map", "variant_refdiff"]


def refdiff_map(
    variant: np.ndarray, reference: np.ndarray, shape: tuple[int, int], *, align: bool = False
) -> np.ndarray:
    """``Y(variant) − Y(reference)`` at ``shape``: the reference difference of one variant.

    Parameters
    ----------
    variant, reference : ndarray, float32 (H, W, 3) in [0, 1]
        The bracket member and its scene's ideal reference (resized to the variant's size
        when they differ).
    shape : (int, int)
        Label resolution ``(h, w)``.
    align : bool
        Align the variant to the reference first with OpenCV's median-threshold-bitmap
        aligner (``cv2.createAlignMTB``), for hand-held brackets; exposure-invariant.

    Returns
    -------
    ndarray, float32 (h, w) in [-1, 1]
        Negative where the variant is darker than the reference.

    Examples
    --------
    >>> ref = np.full((4, 4, 3), 0.5, np.float32)
    >>> float(refdiff_map(ref * 0.5, ref, (2, 2))[0, 0])
    -0.25
    """
    if reference.shape != variant.shape:
        reference = resize_image(reference, variant.shape[:2])
    if align:
        import cv2

        v8 = np.round(variant * 255).astype(np.uint8)
        r8 = np.round(reference * 255).astype(np.uint8)
        # MTB halves the image max_bits times; a pyramid deeper than ~16-px tops gives garbage
        bits = int(np.clip(np.floor(np.log2(min(variant.shape[:2]) / 16)), 1, 6))
        shift = cv2.createAlignMTB(bits, 4, True).calculateShift(
            cv2.cvtColor(r8, cv2.COLOR_RGB2GRAY), cv2.cvtColor(v8, cv2.COLOR_RGB2GRAY)
        )
        dx, dy = int(shift[0]), int(shift[1])
        if dx or dy:
            # calculateShift: how to move the variant onto the reference
            m = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
            variant = cv2.warpAffine(variant, m, (variant.shape[1], variant.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    diff = luma(variant) - luma(reference)
    out = resize_map(diff.astype(np.float32), shape)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def variant_refdiff(variant: np.ndarray, ideal: np.ndarray, max_side: int, *, align: bool = False) -> np.ndarray:
    """The reference difference of one variant at its label resolution (long side ≤ ``max_side``).

    What pre-labelling (``iea prelabel --method refdiff``) and saving a target (which recomputes
    the differences of the scene's variants) both store.

    Parameters
    ----------
    variant, ideal : ndarray, float32 (H, W, 3) in [0, 1]
        The bracket member and its scene's ideal (the reference, or the reference under a target).
    max_side : int
        The workspace's ``label_max_side``.
    align : bool
        See :func:`refdiff_map`.

    Examples
    --------
    >>> v = np.full((8, 16, 3), 0.25, np.float32)
    >>> variant_refdiff(v, v * 2, 4).shape
    (2, 4)
    """
    shape = label_shape(variant.shape[0], variant.shape[1], max_side)
    return refdiff_map(variant, ideal, shape, align=align)
