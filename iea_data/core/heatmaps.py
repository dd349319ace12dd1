"""Blue-white-red renderings of residual maps: alone, over the photo, and with a legend.

Blue is too dark (negative residual), white ideal (0), red too bright (positive), on a
symmetric fixed range (default ±0.5) so that colours mean the same in every picture. The
annotator app, ``iea show`` and the reports all call these functions.

Examples
--------
>>> import numpy as np
>>> r = np.array([[-0.5, 0.0, 0.5]], np.float32)
>>> colorize(r)[0].tolist()
[[5, 48, 97], [255, 255, 255], [103, 0, 31]]
"""

from __future__ import annotations

import numpy as np

from .imaging import check_image, check_residual, resize_map

__all__ = ["DEFAULT_RANGE", "COLORMAP", "colorize", "overlay", "legend", "render_heatmap"]

#: Residual magnitude at which the colours saturate.
DEFAULT_RANGE = 0.5

# ColorBrewer RdBu (11 classes), reversed so that negative = blue, with a pure-white centre.
_ANCHORS = np.array(
    [
        (5, 48, 97),
        (33, 102, 172),
        (67, 147, 195),
        (146, 197, 222),
        (209, 229, 240),
        (255, 255, 255),
        (253, 219, 199),
        (244, 165, 130),
        (214, 96, 77),
        (178, 24, 43),
        (103, 0, 31),
    ],
    dtype=np.float64,
)


def _lut(n: int = 511) -> np.ndarray:
    x = np.linspace(0.0, len(_ANCHORS) - 1, n)
    lut = np.stack([np.interp(x, np.arange(len(_ANCHORS)), _ANCHORS[:, c]) for c in range(3)], axis=1)
    return np.round(lut).astype(np.uint8)


#: uint8 (511, 3) lookup table from -range (row 0) through 0 (row 255) to +range (row 510).
COLORMAP = _lut()


def _check_range(vmax: float) -> float:
    if not np.isfinite(vmax) or not 0 < vmax <= 1:
        raise ValueError(f"vmax must be in (0, 1] (the residual magnitude shown at full colour), got {vmax!r}")
    return float(vmax)


def colorize(residual: np.ndarray, *, vmax: float = DEFAULT_RANGE) -> np.ndarray:
    """Colour a residual map blue-white-red.

    Parameters
    ----------
    residual : ndarray, float32, shape (h, w), values in [-1, 1]
        ``Y(photo) - Y(ideal)``.
    vmax : float
        Magnitude shown at full colour; larger magnitudes saturate.

    Returns
    -------
    ndarray, uint8, shape (h, w, 3)
        sRGB colours.
    """
    residual = check_residual(residual, "residual")
    vmax = _check_range(vmax)
    t = np.clip(residual / vmax, -1.0, 1.0)
    idx = np.rint((t + 1.0) * ((len(COLORMAP) - 1) / 2)).astype(np.intp)
    return COLORMAP[idx]


def overlay(
    photo: np.ndarray, residual: np.ndarray, *, opacity: float = 0.7, vmax: float = DEFAULT_RANGE
) -> np.ndarray:
    """Blend the heatmap over the photo.

    The colour's weight is ``opacity * min(|residual| / vmax, 1)``: ideal pixels show the photo
    unchanged, badly exposed ones show the colour at ``opacity``. The map is resized to the
    photo (bilinear) when their sizes differ.

    Parameters
    ----------
    photo : ndarray, float32, shape (H, W, 3), values in [0, 1]
    residual : ndarray, float32, shape (h, w), values in [-1, 1]
    opacity : float in [0, 1]
    vmax : float

    Returns
    -------
    ndarray, uint8, shape (H, W, 3)
    """
    photo = check_image(photo, "photo")
    residual = check_residual(residual, "residual")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {opacity!r}")
    vmax = _check_range(vmax)
    if residual.shape != photo.shape[:2]:
        residual = np.clip(resize_map(residual, photo.shape[:2]), -1.0, 1.0).astype(np.float32)
    colors = colorize(residual, vmax=vmax).astype(np.float32) / 255.0
    alpha = (opacity * np.minimum(np.abs(residual) / vmax, 1.0))[..., None]
    out = photo * (1.0 - alpha) + colors * alpha
    return np.round(out * 255.0).astype(np.uint8)


def legend(width: int = 256, height: int = 48, *, vmax: float = DEFAULT_RANGE) -> np.ndarray:
    """A horizontal colour bar naming its ends: ``-vmax too dark``, ``0 ideal``, ``+vmax too bright``.

    Returns uint8 (height, width, 3) on a white background.
    """
    from PIL import Image, ImageDraw, ImageFont

    vmax = _check_range(vmax)
    if width < 120 or height < 30:
        raise ValueError(f"legend needs width >= 120 and height >= 30 pixels, got {width}x{height}")
    bar_h = max(8, height // 3)
    ramp = np.linspace(-vmax, vmax, width, dtype=np.float32)[None, :].repeat(bar_h, axis=0)
    canvas = Image.new("RGB", (width, height), "white")
    canvas.paste(Image.fromarray(colorize(ramp, vmax=vmax)), (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(9, (height - bar_h) * 2 // 5))
    y = bar_h + 2
    draw.text((2, y), f"-{vmax:g} too dark", fill=(5, 48, 97), font=font)
    draw.text((width // 2, y), "0 ideal", fill=(0, 0, 0), font=font, anchor="ma")
    draw.text((width - 3, y), f"+{vmax:g} too bright", fill=(103, 0, 31), font=font, anchor="ra")
    return np.asarray(canvas)


def render_heatmap(
    residual: np.ndarray,
    photo: np.ndarray | None = None,
    *,
    opacity: float = 0.7,
    vmax: float = DEFAULT_RANGE,
    title: str | None = None,
) -> np.ndarray:
    """A picture for people: the heatmap (or the overlay on ``photo``) above its legend.

    ``title`` may hold several lines. Returns uint8 (H, W, 3), ready for
    ``imaging.write_image`` or a browser.
    """
    from PIL import Image, ImageDraw, ImageFont

    body = colorize(residual, vmax=vmax) if photo is None else overlay(photo, residual, opacity=opacity, vmax=vmax)
    h, w = body.shape[:2]
    lw = max(240, w)
    leg = legend(lw, 44, vmax=vmax)
    lines = title.splitlines() if title else []
    title_h = 18 * len(lines) + 4 if lines else 0
    canvas = Image.new("RGB", (lw, title_h + h + 4 + leg.shape[0]), "white")
    font = ImageFont.load_default(size=14)
    for k, line in enumerate(lines):
        ImageDraw.Draw(canvas).text((4, 4 + 18 * k), line, fill=(0, 0, 0), font=font)
    canvas.paste(Image.fromarray(body), ((lw - w) // 2, title_h))
    canvas.paste(Image.fromarray(leg), (0, title_h + h + 4))
    return np.asarray(canvas)
