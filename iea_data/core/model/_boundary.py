"""The model boundary: checks, sign conversion, and library images <-> network batches.

Library images are float32 (H, W, 3) RGB in [0, 1] numpy arrays; the network takes
float32 (N, 3, 256, 256) tensors. Residual maps are float32 (H, W) ``test - ideal``;
the released network outputs ``ideal - test``. Each conversion happens in one named
function here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ._config import PIEANET_CFG

__all__ = [
    "validate_batch",
    "official_to_residual",
    "residual_to_official",
    "to_batch",
    "from_batch",
    "resize_maps",
]


#: Slack allowed outside [0, 1] for float rounding: antialiased bilinear resizing of an
#: image in [0, 1] returns values such as 1.0000002 (the released golden inputs hold them).
RANGE_TOL = 1e-5


def _in_unit_range(lo: float, hi: float) -> bool:
    return lo >= -RANGE_TOL and hi <= 1.0 + RANGE_TOL  # False for NaN


def _range_error(name: str, lo: float, hi: float, expected: str, fix: str) -> ValueError:
    return ValueError(
        f"{name} must lie in {expected}; got min {lo:.6g}, max {hi:.6g}. {fix} Out-of-range values are not clipped."
    )


def validate_batch(x: Tensor, *, size: tuple[int, int] = PIEANET_CFG.input_size, name: str = "x") -> None:
    """Check a network input: float32 (N, 3, H, W) tensor in [0, 1] at the model size.

    Parameters
    ----------
    x : Tensor
        The batch to check.
    size : tuple of int, optional
        Required ``(H, W)``; the released network is fixed at (256, 256).
    name : str, optional
        Parameter name used in messages.

    Raises
    ------
    TypeError
        ``x`` is not a tensor, or not float32.
    ValueError
        Wrong rank, channel count or size; values outside [0, 1] or not finite (the
        message reports the actual min and max). Rounding excursions up to
        ``RANGE_TOL`` (1e-5) are accepted.
    """
    if not isinstance(x, Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor (N, 3, H, W); got {type(x).__name__}. "
            "Use iea_data.core.model.to_batch to turn (H, W, 3) images into a batch."
        )
    if x.dim() != 4 or x.shape[1] != 3:
        raise ValueError(
            f"{name} must have shape (N, 3, {size[0]}, {size[1]}); got {tuple(x.shape)}. "
            "Use iea_data.core.model.to_batch for (H, W, 3) images."
        )
    if tuple(x.shape[-2:]) != tuple(size):
        raise ValueError(
            f"{name} must be {size[0]}x{size[1]} (the released network's fixed size); got "
            f"{x.shape[-2]}x{x.shape[-1]}. Resize with iea_data.core.model.to_batch."
        )
    if x.dtype != torch.float32:
        raise TypeError(
            f"{name} must be float32 RGB in [0, 1]; got {x.dtype}. Convert integer images "
            "with iea_data.core.imaging (x / 255) and use autocast, not a cast, for reduced precision."
        )
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")
    lo_t, hi_t = torch.aminmax(x.detach())
    lo, hi = float(lo_t), float(hi_t)
    if not _in_unit_range(lo, hi):
        raise _range_error(name, lo, hi, "[0, 1]", "Scale images to [0, 1] first.")


def official_to_residual(x: Tensor) -> Tensor:
    """Released network output (``ideal - test``) to the project's residual (``test - ideal``).

    Sign only: both are in luminance-like units of [0, 1] images.

    Parameters
    ----------
    x : Tensor
        Any shape and float dtype.

    Returns
    -------
    Tensor
        ``-x``, same shape and dtype.

    Examples
    --------
    >>> official_to_residual(torch.tensor([0.25, -0.5]))
    tensor([-0.2500,  0.5000])
    """
    return -x


def residual_to_official(x: Tensor) -> Tensor:
    """Project residual (``test - ideal``) to the released network's sign (``ideal - test``).

    The inverse of :func:`official_to_residual`.

    Examples
    --------
    >>> residual_to_official(torch.tensor([0.25]))
    tensor([-0.2500])
    """
    return -x


def _check_image(img: object, i: int) -> np.ndarray:
    name = f"images[{i}]"
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name} must be a numpy array (H, W, 3); got {type(img).__name__}")
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"{name} must have shape (H, W, 3) RGB; got {img.shape}")
    if img.dtype != np.float32:
        raise TypeError(
            f"{name} must be float32 in [0, 1]; got {img.dtype}. Decode with "
            "iea_data.core.imaging, which divides integers by 255 or 65535."
        )
    if img.size == 0:
        raise ValueError(f"{name} is empty: shape {img.shape}")
    lo, hi = float(img.min()), float(img.max())
    if not _in_unit_range(lo, hi):
        raise _range_error(name, lo, hi, "[0, 1]", "Scale images to [0, 1] first.")
    return img


def to_batch(images: Sequence[np.ndarray], *, size: tuple[int, int] = PIEANET_CFG.input_size) -> Tensor:
    """Library images to a network batch, resized as the golden inputs were made.

    Parameters
    ----------
    images : sequence of ndarray
        Each float32 (H, W, 3) RGB in [0, 1]; sizes may differ.
    size : tuple of int, optional
        ``(height, width)`` of the batch, default (256, 256).

    Returns
    -------
    Tensor
        float32 (N, 3, height, width) in [0, 1] (up to rounding), on the CPU.

    Raises
    ------
    TypeError, ValueError
        An image of the wrong type, dtype, shape or range (message names its index).

    Notes
    -----
    Resizing is ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False,
    antialias=True)`` on the float image, which reproduces the golden inputs of the
    released P-IEANet exactly. Without antialias (the release's pinned torchvision)
    outputs move by up to 0.05; PIL bilinear on 8-bit images moves them by 0.004-0.007.
    The antialiased filter can round a little past 1 (e.g. 1.0000002); such values are
    kept, as in the golden inputs, and accepted by :func:`validate_batch`.

    Examples
    --------
    >>> img = np.full((4, 6, 3), 0.5, dtype=np.float32)
    >>> to_batch([img], size=(2, 2)).shape
    torch.Size([1, 3, 2, 2])
    """
    if isinstance(images, np.ndarray):
        raise TypeError("images must be a list of (H, W, 3) arrays; wrap a single image as [image]")
    if len(images) == 0:
        raise ValueError("images is empty; pass at least one (H, W, 3) float32 image")
    out = []
    for i, img in enumerate(images):
        t = torch.from_numpy(np.ascontiguousarray(_check_image(img, i))).permute(2, 0, 1)[None]
        t = t.contiguous()
        if tuple(t.shape[-2:]) != tuple(size):
            t = F.interpolate(t, size=size, mode="bilinear", align_corners=False, antialias=True)
        out.append(t)
    return torch.cat(out)


def resize_maps(maps: Tensor, *, size: tuple[int, int]) -> Tensor:
    """Resize (N, 1, h, w) residual maps bilinearly (antialias when shrinking).

    Parameters
    ----------
    maps : Tensor
        float (N, 1, h, w).
    size : tuple of int
        Target ``(height, width)``.

    Returns
    -------
    Tensor
        Same dtype, (N, 1, height, width).
    """
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False, antialias=True)


def from_batch(x: Tensor) -> list[np.ndarray]:
    """Network output to library residual maps.

    Parameters
    ----------
    x : Tensor
        (N, 1, H, W) residual maps (project sign), any float dtype and device.

    Returns
    -------
    list of ndarray
        N float32 (H, W) arrays (copies, on the CPU). Values are not clipped.

    Examples
    --------
    >>> maps = from_batch(torch.zeros(2, 1, 3, 4))
    >>> len(maps), maps[0].shape, maps[0].dtype
    (2, (3, 4), dtype('float32'))
    """
    if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != 1:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must be a tensor of shape (N, 1, H, W); got {got}")
    arr = x.detach().to("cpu", torch.float32).numpy()
    return [np.array(a[0], dtype=np.float32) for a in arr]
