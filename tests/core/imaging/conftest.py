"""Fixtures for the imaging tests: small real photos (scikit-image's bundled samples)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data


def _small(photo: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.resize(photo, (width, height), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """uint8 RGB (48, 64, 3): the astronaut, non-square so transposes are visible."""
    return _small(skimage.data.astronaut(), 48, 64)


@pytest.fixture(scope="session")
def photos() -> dict:
    """A few uint8 RGB photos of different sizes."""
    return {
        "astronaut": _small(skimage.data.astronaut(), 48, 64),
        "coffee": _small(skimage.data.coffee(), 40, 60),
        "chelsea": _small(skimage.data.chelsea(), 30, 45),
    }


@pytest.fixture(scope="session")
def gradient16() -> np.ndarray:
    """uint16 RGB (24, 40, 3) whose values are mostly not multiples of 257 (not 8-bit in disguise)."""
    values = (np.arange(24 * 40 * 3, dtype=np.int64) * 7919 + 13) % 65536
    out = values.reshape(24, 40, 3).astype(np.uint16)
    assert np.mean(out % 257 != 0) > 0.9
    return out


def as_float(u: np.ndarray) -> np.ndarray:
    """The reference integer-to-float conversion (independent of the code under test)."""
    peak = 255.0 if u.dtype == np.uint8 else 65535.0
    return (u.astype(np.float64) / peak).astype(np.float32)


def assert_library_image(rgb: np.ndarray, height: int, width: int) -> None:
    assert isinstance(rgb, np.ndarray)
    assert rgb.dtype == np.float32
    assert rgb.shape == (height, width, 3)
    assert rgb.flags.c_contiguous
    assert np.isfinite(rgb).all()
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
