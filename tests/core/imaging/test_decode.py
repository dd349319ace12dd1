"""Decoding: every format, bit depth and pixel layout, EXIF orientation and fields."""

from __future__ import annotations

import io
import warnings
from datetime import datetime

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps
from PIL.TiffImagePlugin import IFDRational

import iea_data.core.imaging._decode as dec
import iea_data.core.imaging._decode_cv2 as cv2dec
from iea_data.core.imaging import DecodedImage, ExifInfo, read_header, read_image, read_image_bytes

from .conftest import as_float, assert_library_image

# A JPEG decoded by two builds of libjpeg-turbo (PIL's and OpenCV's) agrees to a level or two.
DECODER_TOL = 3 / 255
# Mean error of a quality-95, 4:4:4 JPEG against its source photo.
JPEG_MEAN_TOL = 3 / 255
JPEG = {"quality": 95, "subsampling": 0}


def _pil_float(im: Image.Image) -> np.ndarray:
    return as_float(np.asarray(im.convert("RGB")))


def _over_white(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Reference compositing, float64: c * a + 1 * (1 - a)."""
    c = colour.astype(np.float64)
    a = alpha.astype(np.float64)[..., None]
    if c.ndim == 2:
        c = np.repeat(c[..., None], 3, axis=2)
    return c * a + (1.0 - a)


def _forbid(monkeypatch, target, attr):
    def boom(*args, **kwargs):
        raise AssertionError(f"{attr} must not be called on this path")

    monkeypatch.setattr(target, attr, boom)


# --------------------------------------------------------------------------- 8-bit formats


@pytest.mark.parametrize("ext,fmt", [(".png", "PNG"), (".tif", "TIFF"), (".bmp", "BMP")])
def test_lossless_8bit_rgb_is_exact(tmp_path, photos, ext, fmt):
    for key, u8 in photos.items():
        path = tmp_path / f"{key}{ext}"
        Image.fromarray(u8).save(path)
        img = read_image(path)
        assert isinstance(img, DecodedImage)
        assert_library_image(img.rgb, *u8.shape[:2])
        np.testing.assert_array_equal(img.rgb, as_float(u8))
        assert (img.width, img.height) == (u8.shape[1], u8.shape[0])
        assert (img.format, img.mode, img.channels, img.bit_depth) == (fmt, "RGB", 3, 8)


def test_compressed_tiff(tmp_path, photo):
    for compression in ("tiff_lzw", "tiff_adobe_deflate", "packbits"):
        path = tmp_path / f"{compression}.tif"
        Image.fromarray(photo).save(path, compression=compression)
        np.testing.assert_array_equal(read_image(path).rgb, as_float(photo))


def test_jpeg_matches_pil_and_source(tmp_path, photos):
    for key, u8 in photos.items():
        path = tmp_path / f"{key}.jpg"
        Image.fromarray(u8).save(path, **JPEG)
        img = read_image(path)
        assert_library_image(img.rgb, *u8.shape[:2])
        assert (img.format, img.mode, img.channels, img.bit_depth) == ("JPEG", "RGB", 3, 8)
        assert np.abs(img.rgb - _pil_float(Image.open(path))).max() <= DECODER_TOL
        assert np.abs(img.rgb - as_float(u8)).mean() <= JPEG_MEAN_TOL


def test_progressive_jpeg(tmp_path, photo):
    path = tmp_path / "progressive.jpg"
    Image.fromarray(photo).save(path, progressive=True, **JPEG)
    assert np.abs(read_image(path).rgb - _pil_float(Image.open(path))).max() <= DECODER_TOL


def test_webp_lossless_exact_and_lossy_close(tmp_path, photo):
    path = tmp_path / "lossless.webp"
    Image.fromarray(photo).save(path, lossless=True)
    img = read_image(path)
    assert (img.format, img.channels, img.bit_depth) == ("WEBP", 3, 8)
    np.testing.assert_array_equal(img.rgb, as_float(photo))
    path = tmp_path / "lossy.webp"
    Image.fromarray(photo).save(path, quality=90)
    img = read_image(path)
    np.testing.assert_array_equal(img.rgb, _pil_float(Image.open(path)))
    assert np.abs(img.rgb - as_float(photo)).mean() < 6 / 255


# --------------------------------------------------------------------------- 16-bit


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_rgb_keeps_full_precision(tmp_path, gradient16, ext):
    path = tmp_path / f"gradient{ext}"
    assert cv2.imwrite(str(path), gradient16[..., ::-1])  # OpenCV writes BGR
    img = read_image(path)
    assert img.bit_depth == 16 and img.channels == 3
    assert_library_image(img.rgb, *gradient16.shape[:2])
    np.testing.assert_array_equal(img.rgb, as_float(gradient16))
    np.testing.assert_array_equal(np.rint(img.rgb.astype(np.float64) * 65535), gradient16)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_grey(tmp_path, gradient16, ext):
    grey = gradient16[..., 1]
    path = tmp_path / f"grey16{ext}"
    assert cv2.imwrite(str(path), grey)
    img = read_image(path)
    assert (img.channels, img.bit_depth) == (1, 16)
    expected = as_float(grey)
    for c in range(3):
        np.testing.assert_array_equal(img.rgb[..., c], expected)


def test_16bit_grey_through_pil(tmp_path, gradient16):
    """A PIL-written I;16 PNG (the PIL path if the fast path is refused) keeps 16 bits too."""
    grey = gradient16[..., 0]
    path = tmp_path / "pil16.png"
    Image.fromarray(grey).save(path)  # mode I;16
    img = read_image(path)
    assert (img.mode, img.bit_depth) == ("I;16", 16)
    np.testing.assert_array_equal(img.rgb[..., 0], as_float(grey))


def test_16bit_pil_path_keeps_precision(tmp_path, gradient16, monkeypatch):
    grey = gradient16[..., 0]
    path = tmp_path / "pil16.tif"
    Image.fromarray(grey).save(path)
    monkeypatch.setattr(dec, "_fast_pixels", lambda *a: None)
    img = read_image(path)
    assert img.bit_depth == 16
    np.testing.assert_array_equal(img.rgb[..., 2], as_float(grey))


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_rgba_composites_over_white_at_16_bits(tmp_path, gradient16, ext):
    alpha = np.linspace(0, 65535, gradient16.shape[0] * gradient16.shape[1]).reshape(gradient16.shape[:2])
    alpha = alpha.astype(np.uint16)
    rgba = np.dstack([gradient16, alpha])
    path = tmp_path / f"rgba16{ext}"
    assert cv2.imwrite(str(path), rgba[..., [2, 1, 0, 3]])
    img = read_image(path)
    assert (img.channels, img.bit_depth) == (4, 16)
    expected = _over_white(gradient16 / 65535.0, alpha / 65535.0)
    np.testing.assert_allclose(img.rgb, expected, atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- grey, alpha, palette


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif", ".webp"])
def test_grey_is_replicated(tmp_path, photo, ext):
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    path = tmp_path / f"grey{ext}"
    Image.fromarray(grey).save(path, **({"lossless": True} if ext == ".webp" else {}))
    img = read_image(path)
    assert_library_image(img.rgb, *grey.shape)
    np.testing.assert_array_equal(img.rgb[..., 0], img.rgb[..., 1])
    np.testing.assert_array_equal(img.rgb[..., 0], img.rgb[..., 2])
    if ext == ".webp":  # WebP has no grey mode: stored as RGB
        assert img.channels == 3
    else:
        assert (img.channels, img.mode) == (1, "L")
    reference = _pil_float(Image.open(path))
    assert np.abs(img.rgb - reference).max() <= (DECODER_TOL if ext == ".jpg" else 0)


def test_bilevel(tmp_path):
    bits = np.zeros((5, 7), bool)
    bits[1:3, 2:6] = True
    path = tmp_path / "bits.png"
    Image.fromarray(bits).save(path)
    img = read_image(path)
    assert img.mode == "1"
    np.testing.assert_array_equal(img.rgb[..., 0], bits.astype(np.float32))


def test_grey_alpha_over_white(tmp_path, photo):
    grey = np.asarray(Image.fromarray(photo).convert("L"))
    alpha = np.tile(np.linspace(0, 255, grey.shape[1]).astype(np.uint8), (grey.shape[0], 1))
    path = tmp_path / "la.png"
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(path)
    img = read_image(path)
    assert (img.channels, img.mode) == (2, "LA")
    np.testing.assert_allclose(img.rgb, _over_white(grey / 255.0, alpha / 255.0), atol=1e-6)


@pytest.mark.parametrize("ext", [".png", ".tif", ".webp"])
def test_rgba_over_white(tmp_path, photo, ext):
    alpha = np.tile(np.linspace(0, 255, photo.shape[1]).astype(np.uint8), (photo.shape[0], 1))
    colour = photo.copy()
    colour[:, :8] = 0  # black where fully transparent: must come out white, not black
    path = tmp_path / f"rgba{ext}"
    save = {"lossless": True} if ext == ".webp" else {}
    Image.fromarray(np.dstack([colour, alpha]), "RGBA").save(path, **save)
    img = read_image(path)
    assert img.channels == 4 and img.mode == "RGBA"
    np.testing.assert_allclose(img.rgb, _over_white(colour / 255.0, alpha / 255.0), atol=1e-6)
    np.testing.assert_array_equal(img.rgb[:, 0], 1.0)  # alpha 0 -> white
    np.testing.assert_allclose(img.rgb[:, -1], colour[:, -1] / 255.0, atol=1e-6)  # alpha 255 -> colour


def test_palette(tmp_path, photo):
    pal = Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    path = tmp_path / "palette.png"
    pal.save(path)
    img = read_image(path)
    assert (img.mode, img.channels, img.bit_depth) == ("P", 3, 8)
    np.testing.assert_array_equal(img.rgb, _pil_float(pal))
    path = tmp_path / "palette.gif"
    pal.save(path)
    np.testing.assert_array_equal(read_image(path).rgb, _pil_float(pal))


def test_palette_with_transparency(tmp_path, photo):
    pal = Image.fromarray(photo).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    index = np.asarray(pal)[0, 0]
    path = tmp_path / "palette_trns.png"
    pal.save(path, transparency=int(index))
    img = read_image(path)
    assert img.channels == 4
    transparent = np.asarray(pal) == index
    np.testing.assert_array_equal(img.rgb[transparent], 1.0)
    np.testing.assert_array_equal(img.rgb[~transparent], _pil_float(pal)[~transparent])


def test_grey_colour_key_transparency(tmp_path):
    grey = np.array([[0, 10, 20], [10, 0, 30]], np.uint8)
    path = tmp_path / "grey_trns.png"
    Image.fromarray(grey).save(path, transparency=10)
    rgb = read_image(path).rgb
    np.testing.assert_array_equal(rgb[grey == 10], 1.0)
    np.testing.assert_allclose(rgb[grey == 30], 30 / 255, atol=1e-7)


# --------------------------------------------------------------------------- CMYK


def test_cmyk_tiff(tmp_path, photo, rng):
    path = tmp_path / "cmyk.tif"
    Image.fromarray(photo).convert("CMYK").save(path)
    img = read_image(path)
    assert (img.mode, img.channels, img.bit_depth, img.format) == ("CMYK", 4, 8, "TIFF")
    np.testing.assert_array_equal(img.rgb, as_float(photo))  # K = 0: an exact round trip
    # With black ink as well: as PIL converts it.
    cmyk = Image.fromarray(rng.integers(0, 256, (16, 20, 4), dtype=np.uint8), "CMYK")
    path = tmp_path / "cmyk_k.tif"
    cmyk.save(path)
    np.testing.assert_array_equal(read_image(path).rgb, _pil_float(cmyk))


def test_adobe_cmyk_jpeg(tmp_path, photo):
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(photo).convert("CMYK").save(path, **JPEG)
    source = Image.open(path)
    assert source.mode == "CMYK" and "adobe" in source.info  # PIL writes Adobe (inverted) CMYK
    img = read_image(path)
    assert (img.mode, img.channels, img.format) == ("CMYK", 4, "JPEG")
    np.testing.assert_array_equal(img.rgb, _pil_float(source))
    assert np.abs(img.rgb - as_float(photo)).mean() <= JPEG_MEAN_TOL


def test_float_tiff_is_unsupported(tmp_path):
    from iea_data.core.errors import ImageDecodeError

    path = tmp_path / "float.tif"
    Image.fromarray(np.zeros((4, 4), np.float32), "F").save(path)
    with pytest.raises(ImageDecodeError) as info:
        read_image(path)
    assert info.value.reason == "unsupported"
    assert "'F'" in str(info.value) and "float.tif" in str(info.value)


# --------------------------------------------------------------------------- orientation


def _exif_bytes(orientation: int | None = None, ifd_tags: dict | None = None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    if ifd_tags:
        sub = exif.get_ifd(0x8769)
        sub.update(ifd_tags)
    return exif.tobytes()


def _orient_reference(a: np.ndarray, orientation: int) -> np.ndarray:
    """EXIF 2.32, Orientation: how the stored rows/columns map to the displayed image."""
    return {
        1: lambda: a,
        2: lambda: a[:, ::-1],  # mirrored horizontally
        3: lambda: a[::-1, ::-1],  # rotated 180
        4: lambda: a[::-1],  # mirrored vertically
        5: lambda: a.swapaxes(0, 1),  # transposed (mirrored across the main diagonal)
        6: lambda: np.rot90(a, -1),  # stored rotated 90 CCW: display rotates 90 CW
        7: lambda: np.rot90(a, 2).swapaxes(0, 1),  # transverse (anti-diagonal)
        8: lambda: np.rot90(a, 1),  # display rotates 90 CCW
    }[orientation]()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_reference_agrees_with_pil(photo, orientation):
    source = Image.fromarray(photo)
    source.getexif()[0x0112] = orientation
    np.testing.assert_array_equal(np.asarray(ImageOps.exif_transpose(source)), _orient_reference(photo, orientation))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_jpeg_orientation(tmp_path, photo, orientation):
    path = tmp_path / f"o{orientation}.jpg"
    Image.fromarray(photo).save(path, exif=_exif_bytes(orientation), **JPEG)
    img = read_image(path)
    h, w = photo.shape[:2]
    expected_size = (h, w) if orientation >= 5 else (w, h)
    assert (img.width, img.height) == expected_size
    assert img.exif.orientation == orientation
    assert read_header(path) == (*expected_size, "JPEG")
    assert_library_image(img.rgb, img.height, img.width)
    # PIL's reference transpose of the same file, and of the source photo.
    assert np.abs(img.rgb - _pil_float(ImageOps.exif_transpose(Image.open(path)))).max() <= DECODER_TOL
    transposed = as_float(_orient_reference(photo, orientation))
    assert np.abs(img.rgb - transposed).mean() <= JPEG_MEAN_TOL


@pytest.mark.parametrize("orientation", range(1, 9))
def test_lossless_orientation_is_exact(tmp_path, photo, gradient16, orientation):
    """Every decoding path orients alike and exactly: OpenCV PNG (8-bit RGB, RGBA, 16-bit),
    PIL TIFF (8-bit) and OpenCV TIFF (16-bit), whichever of them orients by itself."""
    rgba = np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)])
    grey16 = gradient16[..., 0]
    cases = [
        ("rgb.png", photo, lambda p: Image.fromarray(photo).save(p, exif=_exif_bytes(orientation))),
        ("rgba.png", photo, lambda p: Image.fromarray(rgba).save(p, exif=_exif_bytes(orientation))),
        ("g16.png", grey16, lambda p: Image.fromarray(grey16).save(p, exif=_exif_bytes(orientation))),
        ("rgb.tif", photo, lambda p: Image.fromarray(photo).save(p, tiffinfo={0x0112: orientation})),
        ("g16.tif", grey16, lambda p: Image.fromarray(grey16).save(p, tiffinfo={0x0112: orientation})),
    ]
    for filename, pixels, write in cases:
        path = tmp_path / filename
        write(path)
        img = read_image(path)
        assert img.exif.orientation == orientation, filename
        expected = as_float(_orient_reference(pixels, orientation))
        got = img.rgb if pixels.ndim == 3 else img.rgb[..., 0]
        np.testing.assert_array_equal(got, expected, err_msg=filename)
        assert read_header(path)[:2] == (img.width, img.height), filename


@pytest.mark.parametrize("orientation", [2, 6, 7])
def test_orientation_on_the_pil_path(tmp_path, gradient16, monkeypatch, orientation):
    """16-bit TIFF forced through PIL (which orients TIFF itself on load) is oriented once."""
    monkeypatch.setattr(dec, "_fast_pixels", lambda *a: None)
    grey16 = gradient16[..., 0]
    path = tmp_path / "g16.tif"
    Image.fromarray(grey16).save(path, tiffinfo={0x0112: orientation})
    img = read_image(path)
    np.testing.assert_array_equal(img.rgb[..., 0], as_float(_orient_reference(grey16, orientation)))


def test_invalid_orientation_is_ignored(tmp_path, photo):
    path = tmp_path / "o9.png"
    Image.fromarray(photo).save(path, exif=_exif_bytes(9))
    img = read_image(path)
    assert img.exif.orientation is None
    np.testing.assert_array_equal(img.rgb, as_float(photo))


# --------------------------------------------------------------------------- EXIF fields

_CAMERA = dict(
    exposure_time=(0x829A, IFDRational(1, 250), 0.004),
    f_number=(0x829D, IFDRational(28, 10), 2.8),
    iso=(0x8827, 400, 400),
    exposure_bias=(0x9204, IFDRational(-2, 3), -2 / 3),
)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".tif"])
def test_exif_fields(tmp_path, photo, ext):
    exif = Image.Exif()
    exif[0x010F] = "TestMake\x00"
    exif[0x0110] = "  Model X "
    exif[0x0112] = 1
    sub = exif.get_ifd(0x8769)
    for tag, value, _ in _CAMERA.values():
        sub[tag] = value
    sub[0x9003] = "2024:05:06 07:08:09"
    path = tmp_path / f"exif{ext}"
    Image.fromarray(photo).save(path, exif=exif.tobytes())
    info = read_image(path).exif
    assert isinstance(info, ExifInfo)
    for field, (_, _, expected) in _CAMERA.items():
        assert getattr(info, field) == pytest.approx(expected), field
    assert isinstance(info.iso, int)
    assert info.camera_make == "TestMake"
    assert info.camera_model == "Model X"
    assert info.capture_time == datetime(2024, 5, 6, 7, 8, 9)
    assert info.orientation == 1


def test_exif_absent_or_broken(tmp_path, photo):
    path = tmp_path / "plain.jpg"
    Image.fromarray(photo).save(path)
    assert read_image(path).exif == ExifInfo()
    # A zero-denominator rational and a nonsense date are dropped, not fatal.
    path = tmp_path / "odd.jpg"
    Image.fromarray(photo).save(path, exif=_exif_bytes(1, {0x829A: IFDRational(1, 0), 0x9003: "not a date"}))
    info = read_image(path).exif
    assert info.exposure_time is None and info.capture_time is None and info.orientation == 1
    # An EXIF block that is garbage: the photo still decodes.
    path = tmp_path / "garbage.jpg"
    Image.fromarray(photo).save(path, exif=b"Exif\x00\x00II*\x00\xff\xff\xff\x7fgarbage")
    img = read_image(path)
    assert img.exif.orientation is None
    assert_library_image(img.rgb, *photo.shape[:2])


# --------------------------------------------------------------------------- paths and API


def test_fast_path_for_ordinary_jpeg_and_png(tmp_path, photo, gradient16, monkeypatch):
    """Ordinary 8-bit JPEG/PNG and 16-bit PNG/TIFF never reach PIL's pixel decoder."""
    _forbid(monkeypatch, dec, "_pil_pixels")
    files = []
    for ext in (".jpg", ".png"):
        files.append(tmp_path / f"rgb{ext}")
        Image.fromarray(photo).save(files[-1])
        files.append(tmp_path / f"grey{ext}")
        Image.fromarray(photo[..., 0]).save(files[-1])
    for ext in (".png", ".tif"):
        files.append(tmp_path / f"rgb16{ext}")
        cv2.imwrite(str(files[-1]), gradient16)
    files.append(tmp_path / "rgba.png")
    Image.fromarray(np.dstack([photo, photo[..., :1]]), "RGBA").save(files[-1])
    for path in files:
        assert read_image(path).rgb.shape[:2] == photo.shape[:2] or "16" in path.name


def test_exotic_layouts_use_pil(tmp_path, photo, monkeypatch):
    _forbid(monkeypatch, cv2dec, "_imdecode")
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(photo).convert("CMYK").save(path)
    assert read_image(path).mode == "CMYK"
    path = tmp_path / "p.png"
    Image.fromarray(photo).convert("P").save(path)
    assert read_image(path).mode == "P"


def test_bytes_equal_file(tmp_path, photo):
    path = tmp_path / "a.jpg"
    Image.fromarray(photo).save(path)
    data = path.read_bytes()
    from_file = read_image(path)
    for blob in (data, bytearray(data), memoryview(data)):
        img = read_image_bytes(blob, name=str(path))
        np.testing.assert_array_equal(img.rgb, from_file.rgb)
        assert (img.width, img.height, img.format) == (from_file.width, from_file.height, "JPEG")
    assert read_header(data) == read_header(path) == (photo.shape[1], photo.shape[0], "JPEG")
    with pytest.raises(TypeError, match="read_image"):
        read_image_bytes(str(path))
    with pytest.raises(TypeError, match="max_pixels"):
        read_image_bytes(data, max_pixels=1.5)
    with pytest.raises(ValueError, match="max_pixels"):
        read_image_bytes(data, max_pixels=0)


def test_read_header_does_not_decode(tmp_path, photo, monkeypatch):
    path = tmp_path / "a.png"
    Image.fromarray(photo).save(path)
    _forbid(monkeypatch, dec, "_decode_pixels")
    _forbid(monkeypatch, cv2, "imdecode")
    assert read_header(path) == (64, 48, "PNG")
    assert read_header(str(path)) == (64, 48, "PNG")


def test_pil_pixel_limit_does_not_interfere(tmp_path, photo, monkeypatch):
    """PIL's global decompression-bomb limit neither refuses nor warns; ours decides."""
    path = tmp_path / "a.png"
    Image.fromarray(photo).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL errors above 2000 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = read_image(path)
        assert read_header(path) == (64, 48, "PNG")
    np.testing.assert_array_equal(img.rgb, as_float(photo))
    assert Image.MAX_IMAGE_PIXELS == 1000  # restored
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # PIL only warns above 2000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(path)


def test_decoded_image_is_frozen(tmp_path, photo):
    path = tmp_path / "a.png"
    Image.fromarray(photo).save(path)
    img = read_image(path)
    with pytest.raises(AttributeError):
        img.width = 3  # type: ignore[misc]
    with pytest.raises(AttributeError):
        img.exif.iso = 3  # type: ignore[misc]


def test_mpo_is_reported_as_jpeg(tmp_path, photo):
    path = tmp_path / "multi.jpg"
    first = Image.fromarray(photo)
    first.save(path, save_all=True, append_images=[Image.fromarray(photo[::-1].copy())], format="MPO", **JPEG)
    assert Image.open(path).format == "MPO"
    img = read_image(path)
    assert img.format == "JPEG"
    assert np.abs(img.rgb - as_float(photo)).mean() <= JPEG_MEAN_TOL


def test_in_memory_roundtrip_through_pil_bytes(photo):
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "PNG")
    np.testing.assert_array_equal(read_image_bytes(buf.getvalue()).rgb, as_float(photo))
