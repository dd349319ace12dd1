"""Synthetic experts with known bias and noise over a known truth (shared by the quality tests)."""

from __future__ import annotations

import numpy as np


def smooth_truth(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth signed map in [-0.45, 0.45]: a product of two random sinusoids."""
    yy, xx = np.mgrid[0:h, 0:w]
    f = rng.uniform(0.05, 0.3, 2)
    ph = rng.uniform(0, 6, 2)
    return 0.45 * np.sin(f[0] * xx + ph[0]) * np.cos(f[1] * yy + ph[1])


def panel(
    rng: np.random.Generator, bias: np.ndarray, sigma: np.ndarray, n_images: int, h: int, w: int
) -> tuple[list[dict[str, np.ndarray]], list[np.ndarray]]:
    """``n_images`` images, each labelled by every expert ``r{j}``: truth + bias_j + N(0, sigma_j²), clipped."""
    images, truths = [], []
    for _ in range(n_images):
        t = smooth_truth(rng, h, w)
        truths.append(t)
        images.append(
            {
                f"r{j}": np.clip(t + bias[j] + rng.normal(0, sigma[j], t.shape), -1, 1).astype(np.float32)
                for j in range(len(bias))
            }
        )
    return images, truths
