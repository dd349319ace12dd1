"""Previews: ``read_image(..., max_side=...)``.

A preview must have the shape ``label_shape(height, width, max_side)``, keep every full-size
fact, agree with "decode in full, then area-average" (``cv2.INTER_AREA`` on the float32
image, the reference below), and fail exactly like a full decode.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import skimage.data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

import iea_data.core.imaging._decode as dec
import iea_data.core.imaging._decode_cv2 as cv2dec
from iea_data.core.errors import ImageDecodeError
from iea_data.core.imaging import label_shape, read_image, read_image_bytes

from .conftest import assert_library_image
from .test_decode import _exif_bytes, _orient_reference

# Preview against the full decode area-averaged to the same shape (max |difference| and mean
# |difference| over all values). Measured with OpenCV 5.0.0 (its libjpeg-turbo) and Pillow
# 13.0.0 on scikit-image's photos (astronaut, coffee, rocket, chelsea, camera, retina,
# hubble_deep_field, immunohistochemistry), JPEG quality 75/92/95, max_side 10..400.
TOL = {
    # Lossless formats are averaged as uint16 before the division: half a 16-bit level
    # (7.6e-6) plus float rounding; measured <= 1e-5.
    "lossless_max": 1e-3,
    # JPEG previews come from libjpeg's DCT-domain scaling, which is not a box filter:
    # mean |d| measured <= 1.4 levels; max |d| measured <= 0.12 (sharp colour edges, e.g.
    # coffee 600 x 400 -> 300 x 200 at scale 1/2, where no second averaging is involved).
    "jpeg_mean": 2 / 255,
    "jpeg_max": 0.15,
}


def _encode(u: np.ndarray, fmt: str, **opts) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(u).save(buf, fmt, **opts)
    return buf.getvalue()


def _reference(data: bytes, max_side: int) -> np.ndarray:
    """Decode in full, then area-average the float32 image to label_shape (float32)."""
    full = read_image_bytes(data).rgb
    h, w = label_shape(full.shape[0], full.shape[1], max_side)
    if (h, w) == full.shape[:2]:
        return full
    return cv2.resize(full, (w, h), interpolation=cv2.INTER_AREA)


def _same_facts(a, b) -> None:
    assert (a.width, a.height, a.channels, a.bit_depth, a.format, a.mode, a.exif) == (
        b.width,
        b.height,
        b.channels,
        b.bit_depth,
        b.format,
        b.mode,
        b.exif,
    )


def _check_preview(data: bytes, max_side: int, kind: str) -> np.ndarray:
    """Read a preview, check shape, facts and agreement with the reference; return it."""
    full = read_image_bytes(data)
    img = read_image_bytes(data, name="preview", max_side=max_side)
    _same_facts(img, full)
    assert_library_image(img.rgb, *label_shape(full.height, full.width, max_side))
    diff = np.abs(img.rgb.astype(np.float64) - _reference(data, max_side))
    if kind == "jpeg":
        assert diff.mean() <= TOL["jpeg_mean"], (max_side, diff.mean() * 255)
        assert diff.max() <= TOL["jpeg_max"], (max_side, diff.max())
    else:
        assert diff.max() <= TOL["lossless_max"], (max_side, diff.max())
    return img.rgb


@pytest.fixture(scope="session")
def scene() -> np.ndarray:
    """uint8 RGB (203, 261, 3): a native-resolution crop of the astronaut (real photo detail;
    odd sizes, so scaled JPEGs end in partial blocks)."""
    return np.ascontiguousarray(skimage.data.astronaut()[40:243, 150:411])


@pytest.fixture(scope="session")
def scene16(scene) -> np.ndarray:
    """uint16 RGB: the scene with 16-bit detail (not 8-bit values times 257)."""
    rng = np.random.default_rng(7)
    return (scene.astype(np.uint16) * 257 + rng.integers(0, 257, scene.shape)).astype(np.uint16)


# max_side values for the 203 x 261 scene: JPEG scales 1/8 (1, 8), 1/4 (16), 1/2 (30) and
# none (60), at ratios that are no whole numbers; 261 (the long side) is the full image.
SIDES = (1, 8, 16, 30, 60, 261)


# --------------------------------------------------------------------------- shape


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    max_side=st.integers(1, 50),
    orientation=st.integers(1, 8),
    fmt=st.sampled_from(["PNG", "JPEG"]),
)
def test_shape_is_label_shape(height, width, max_side, orientation, fmt):
    u8 = ((np.arange(height * width * 3) * 37) % 251).astype(np.uint8).reshape(height, width, 3)
    data = _encode(u8, fmt, exif=_exif_bytes(orientation))
    img = read_image_bytes(data, max_side=max_side)
    oriented = (width, height) if orientation >= 5 else (height, width)
    assert (img.height, img.width) == oriented
    assert_library_image(img.rgb, *label_shape(*oriented, max_side))
    assert img.exif.orientation == orientation


def test_jpeg_sizes_stay_on_the_opencv_path(monkeypatch):
    """OpenCV's scaled JPEG sizes are what the fast path expects (libjpeg rounds up) for
    every size, so previews never fall back to PIL for an ordinary JPEG."""
    monkeypatch.setattr(dec, "_pil_pixels", lambda *a, **k: pytest.fail("PIL decoded an ordinary JPEG"))
    rng = np.random.default_rng(3)
    scales = set()
    for height in (1, 7, 16, 33, 61, 97):
        for width in (2, 9, 24, 47, 130):
            u8 = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            data = _encode(u8, "JPEG", quality=90)
            for max_side in (1, 3, 5, 8, 20):
                h, w = label_shape(height, width, max_side)
                scales.add(dec._jpeg_scale((width, height), (w, h)))
                assert read_image_bytes(data, max_side=max_side).rgb.shape == (h, w, 3)
    assert scales == {1, 2, 4, 8}


# --------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("max_side", SIDES)
def test_jpeg(scene, max_side):
    for opts in ({"quality": 92}, {"quality": 95, "subsampling": 0}, {"quality": 75, "progressive": True}):
        _check_preview(_encode(scene, "JPEG", **opts), max_side, "jpeg")


@pytest.mark.parametrize("max_side", SIDES)
def test_jpeg_grey_cmyk_and_trailer(scene, max_side):
    """Grey (OpenCV's reduced grey decode), CMYK and a trailing vendor block (PIL, draft)."""
    grey = np.asarray(Image.fromarray(scene).convert("L"))
    _check_preview(_encode(grey, "JPEG", quality=92), max_side, "jpeg")
    _check_preview(_save(Image.fromarray(scene).convert("CMYK"), "JPEG", quality=92), max_side, "jpeg")
    trailer = _encode(scene, "JPEG", quality=92) + b"\x00" * 64 + b"vendor trailer"
    _check_preview(trailer, max_side, "jpeg")


@pytest.mark.parametrize("max_side,scale", [(128, 2), (64, 4), (32, 8)])
def test_jpeg_exact_multiples_use_dct_scaling_alone(scene, max_side, scale):
    """A preview that is exactly 1/2, 1/4, 1/8 of the image is the DCT-scaled decode itself
    (the ingest case: 1024 x 768 -> 512 x 384); it is close to the area average."""
    height, width = 192, 256
    data = _encode(np.ascontiguousarray(scene[:height, :width]), "JPEG", quality=92)
    flags = []
    real = cv2dec._imdecode

    def spy(buf, f):
        flags.append(f)
        return real(buf, f)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cv2dec, "_imdecode", spy)
        img = read_image_bytes(data, max_side=max_side)
    assert flags == [cv2dec._JPEG_REDUCED[scale] | cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR_RGB]
    assert img.rgb.shape == (height // scale, width // scale, 3)
    _check_preview(data, max_side, "jpeg")


def test_jpeg_scale_choice():
    # Exact multiples: the largest such scale.
    assert dec._jpeg_scale((1024, 768), (512, 384)) == 2
    assert dec._jpeg_scale((4096, 3072), (512, 384)) == 8
    # Otherwise at least three times the preview: 4032 / 4 = 1008 < 3 * 512 <= 4032 / 2.
    assert dec._jpeg_scale((4032, 3024), (512, 384)) == 2
    assert dec._jpeg_scale((6000, 4000), (512, 341)) == 2
    assert dec._jpeg_scale((12000, 8000), (512, 341)) == 4
    assert dec._jpeg_scale((1000, 700), (600, 420)) == 1
    assert dec._jpeg_scale((1920, 1080), (512, 288)) == 1
    assert dec._jpeg_scale((3, 2), (1, 1)) == 1
    # Both sides count: the width alone would allow 1/8.
    assert dec._jpeg_scale((12288, 1100), label_shape(1100, 12288, 512)[::-1]) == 4


def test_pil_draft_path_scales(scene):
    """JPEGs that PIL decodes (CMYK, data after EOI) are DCT-scaled by PIL's draft, the same
    scale as the OpenCV path would use."""
    target = label_shape(*scene.shape[:2], 16)[::-1]
    scale = dec._jpeg_scale(scene.shape[1::-1], target)
    assert scale == 4
    cmyk = _save(Image.fromarray(scene).convert("CMYK"), "JPEG", quality=92)
    trailer = _encode(scene, "JPEG", quality=92) + b"\x00" * 64
    for data in (cmyk, trailer):
        with Image.open(io.BytesIO(data)) as im:
            px = dec._decode_pixels(data, im, "JPEG", "x", target)
        assert px.scale == scale
        assert px.array.shape[:2] == (-(-scene.shape[0] // scale), -(-scene.shape[1] // scale))


def _save(im: Image.Image, fmt: str, **opts) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **opts)
    return buf.getvalue()


@pytest.mark.parametrize("max_side", SIDES)
def test_lossless_8bit(scene, max_side):
    grey = np.asarray(Image.fromarray(scene).convert("L"))
    # Transparent on the left third, then a ramp to opaque.
    ramp = np.clip(np.linspace(-128, 255, scene.shape[1]), 0, 255).astype(np.uint8)
    alpha = np.tile(ramp, (scene.shape[0], 1))
    rgba = np.dstack([scene, alpha])
    pal = Image.fromarray(scene).convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    cases = {
        "png rgb": _encode(scene, "PNG"),
        "png grey": _encode(grey, "PNG"),
        "png grey+alpha": _encode(np.dstack([grey, alpha]), "PNG"),
        "png rgba": _encode(rgba, "PNG"),
        "png palette": _save(pal, "PNG"),
        "png palette+tRNS": _save(pal, "PNG", transparency=int(np.asarray(pal)[0, 0])),
        "gif": _save(pal, "GIF"),
        "tiff rgb": _encode(scene, "TIFF"),
        "tiff cmyk": _save(Image.fromarray(scene).convert("CMYK"), "TIFF"),
        "webp lossless": _encode(scene, "WEBP", lossless=True),
        "webp rgba": _encode(rgba, "WEBP", lossless=True),
        "bmp": _encode(scene, "BMP"),
    }
    for kind, data in cases.items():
        rgb = _check_preview(data, max_side, "lossless")
        if ("alpha" in kind or "rgba" in kind) and rgb.shape[1] >= 3:
            np.testing.assert_allclose(rgb[:, 0], 1.0, atol=1e-6, err_msg=kind)  # alpha 0: white


@pytest.mark.parametrize("max_side", SIDES)
@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit(tmp_path, scene16, max_side, ext):
    alpha = np.tile(np.linspace(0, 65535, scene16.shape[1]).astype(np.uint16), (scene16.shape[0], 1))
    for name, pixels in (("rgb", scene16), ("grey", scene16[..., 1]), ("rgba", np.dstack([scene16, alpha]))):
        path = tmp_path / f"{name}{ext}"
        bgr = pixels if pixels.ndim == 2 else pixels[..., [2, 1, 0, 3][: pixels.shape[2]]]
        assert cv2.imwrite(str(path), bgr)
        data = path.read_bytes()
        _check_preview(data, max_side, "lossless")
        assert read_image_bytes(data, max_side=max_side).bit_depth == 16


def test_16bit_preview_keeps_16bit_precision(tmp_path, scene16):
    """Averaged as uint16, not through 8 bits: within half a 16-bit level of the float average."""
    path = tmp_path / "rgb16.png"
    cv2.imwrite(str(path), scene16[..., ::-1])
    data = path.read_bytes()
    diff = np.abs(read_image_bytes(data, max_side=60).rgb - _reference(data, 60))
    assert diff.max() <= 0.5 / 65535 + 1e-6


# --------------------------------------------------------------------------- orientation


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_orientation(scene, orientation):
    plain = _encode(scene, "JPEG", quality=92)
    tagged = _encode(scene, "JPEG", quality=92, exif=_exif_bytes(orientation))
    for max_side in (16, 30, 60):
        img = read_image_bytes(tagged, max_side=max_side)
        assert img.exif.orientation == orientation
        h, w = scene.shape[:2]
        assert (img.width, img.height) == ((h, w) if orientation >= 5 else (w, h))
        # Same pixels as the untagged file's preview, oriented...
        expected = _orient_reference(read_image_bytes(plain, max_side=max_side).rgb, orientation)
        np.testing.assert_array_equal(img.rgb, expected)
        # ...and close to the oriented full decode, averaged.
        _check_preview(tagged, max_side, "jpeg")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_lossless_orientation(tmp_path, scene, scene16, orientation):
    """Every decoding path (OpenCV PNG 8/16-bit and RGBA, PIL TIFF, OpenCV 16-bit TIFF,
    whichever orients by itself) gives the oriented full image's average."""
    rgba = np.dstack([scene, np.full(scene.shape[:2], 200, np.uint8)])
    grey16 = scene16[..., 0]
    cases = [
        ("rgb.png", lambda p: Image.fromarray(scene).save(p, exif=_exif_bytes(orientation))),
        ("rgba.png", lambda p: Image.fromarray(rgba).save(p, exif=_exif_bytes(orientation))),
        ("g16.png", lambda p: Image.fromarray(grey16).save(p, exif=_exif_bytes(orientation))),
        ("rgb.tif", lambda p: Image.fromarray(scene).save(p, tiffinfo={0x0112: orientation})),
        ("g16.tif", lambda p: Image.fromarray(grey16).save(p, tiffinfo={0x0112: orientation})),
    ]
    for filename, write in cases:
        path = tmp_path / filename
        write(path)
        for max_side in (16, 60):
            img = read_image(path, max_side=max_side)
            assert img.exif.orientation == orientation, filename
            _check_preview(path.read_bytes(), max_side, "lossless")


# --------------------------------------------------------------------------- identity


@pytest.mark.parametrize("orientation", [1, 6])
def test_max_side_at_least_the_image_is_the_full_image(tmp_path, scene, scene16, orientation):
    exif = _exif_bytes(orientation)
    files = {
        "jpeg": _encode(scene, "JPEG", quality=92, exif=exif),
        "grey jpeg": _encode(scene[..., 0].copy(), "JPEG", exif=exif),
        "cmyk jpeg": _save(Image.fromarray(scene).convert("CMYK"), "JPEG", exif=exif),
        "png": _encode(scene, "PNG", exif=exif),
        "rgba png": _encode(np.dstack([scene, scene[..., :1]]), "PNG", exif=exif),
        "16-bit png": _encode(scene16[..., 0], "PNG", exif=exif),
        "16-bit tiff": _encode(scene16[..., 0], "TIFF", tiffinfo={0x0112: orientation}),
        "webp": _encode(scene, "WEBP", lossless=True, exif=exif),
    }
    long_side = max(scene.shape[:2])
    for kind, data in files.items():
        full = read_image_bytes(data)
        for max_side in (long_side, long_side + 1, 10_000):
            img = read_image_bytes(data, max_side=max_side)
            _same_facts(img, full)
            assert img.rgb.flags.c_contiguous, kind
            np.testing.assert_array_equal(img.rgb, full.rgb, err_msg=kind)


def test_read_image_equals_read_image_bytes(tmp_path, scene):
    path = tmp_path / "a.jpg"
    Image.fromarray(scene).save(path, quality=92)
    a = read_image(path, max_side=50)
    b = read_image_bytes(path.read_bytes(), max_side=50)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    _same_facts(a, b)


# --------------------------------------------------------------------------- errors


def _reason(data: bytes, **kwargs) -> str:
    with pytest.raises(ImageDecodeError) as info:
        read_image_bytes(data, **kwargs)
    return info.value.reason


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95, -40, -2])
@pytest.mark.parametrize("progressive", [False, True])
def test_truncated_jpeg_is_truncated(scene, keep, progressive):
    data = _encode(scene, "JPEG", quality=92, progressive=progressive)
    cut = data[:keep] if keep < 0 else data[: int(len(data) * keep)]
    for max_side in (8, 30, 60, 100, 10_000):
        assert _reason(cut, max_side=max_side) == "truncated"


def test_cut_jpeg_never_reaches_opencv(scene, monkeypatch):
    """Scaled decoding could silently succeed on a cut file: without its EOI marker a JPEG
    goes to PIL, which refuses it, at every scale."""
    cut = _encode(scene, "JPEG", quality=92)[:-300]
    monkeypatch.setattr(cv2dec, "_imdecode", lambda data, flags: pytest.fail("OpenCV saw a cut JPEG"))
    for max_side in (8, 30, 60):
        assert _reason(cut, max_side=max_side) == "truncated"


@pytest.mark.parametrize("fmt,opts", [("PNG", {}), ("WEBP", {"lossless": True}), ("TIFF", {"compression": "tiff_lzw"})])
def test_truncated_other_formats(scene, fmt, opts):
    data = _encode(scene, fmt, **opts)
    for keep in (0.5, 0.9):
        assert _reason(data[: int(len(data) * keep)], max_side=30) == "truncated"


def test_bomb_refused_before_decoding(scene, monkeypatch):
    data = _encode(scene, "JPEG")
    pixels = scene.shape[0] * scene.shape[1]
    assert read_image_bytes(data, max_pixels=pixels, max_side=16).width == scene.shape[1]

    def boom(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(dec, "_decode_pixels", boom)
    monkeypatch.setattr(cv2, "imdecode", boom)
    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)
    assert _reason(data, max_pixels=pixels - 1, max_side=16) == "decompression-bomb"


def test_other_reasons_unchanged(scene):
    assert _reason(b"", max_side=8) == "empty-file"
    assert _reason(b"hello, this is not a photo\n", max_side=8) == "not-an-image"
    assert _reason(_encode(scene, "PNG")[:20], max_side=8) == "truncated"
    float_tiff = _save(Image.fromarray(np.zeros((4, 4), np.float32), "F"), "TIFF")
    assert _reason(float_tiff, max_side=2) == "unsupported"


def test_max_side_is_validated(scene):
    data = _encode(scene, "PNG")
    with pytest.raises(ValueError, match="max_side"):
        read_image_bytes(data, max_side=0)
    for bad in (1.5, True, "64"):
        with pytest.raises(TypeError, match="max_side"):
            read_image_bytes(data, max_side=bad)
    with pytest.raises(ValueError, match="max_side"):
        read_image_bytes(b"", max_side=-1)  # arguments are checked before the content
