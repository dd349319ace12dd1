"""Writing images: formats, bit depths, integer input, atomic replacement."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from PIL import Image

import iea_data.core.imaging._encode as enc
from iea_data.core.imaging import encode_image, encode_png, read_image, read_image_bytes, write_image

from .conftest import as_float


def _levels8(photo):
    return as_float(photo)


def _no_temp_files(folder) -> bool:
    return not [p for p in os.listdir(folder) if p.endswith(".tmp")]


@pytest.mark.parametrize("ext", [".png", ".tif", ".tiff", ".webp"])
def test_lossless_8bit_round_trip(tmp_path, photo, ext):
    rgb = _levels8(photo)
    path = tmp_path / f"out{ext}"
    write_image(path, rgb)
    img = read_image(path)
    assert img.bit_depth == 8
    np.testing.assert_array_equal(img.rgb, rgb)
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), photo)  # RGB order


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_round_trip(tmp_path, gradient16, ext):
    rgb = as_float(gradient16)
    path = tmp_path / f"out16{ext}"
    write_image(path, rgb, bit_depth=16)
    img = read_image(path)
    assert img.bit_depth == 16
    np.testing.assert_array_equal(img.rgb, rgb)
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(raw[..., ::-1], gradient16)


def test_quantisation_rounds_to_nearest(tmp_path, rng):
    rgb = rng.random((20, 30, 3), dtype=np.float32)
    for depth, peak in ((8, 255), (16, 65535)):
        back = read_image_bytes(encode_png(rgb, bit_depth=depth)).rgb
        assert np.abs(back.astype(np.float64) - rgb).max() <= 0.5 / peak + 1e-7


@pytest.mark.parametrize("ext", [".jpg", ".jpeg"])
def test_jpeg(tmp_path, photo, ext):
    rgb = _levels8(photo)
    path = tmp_path / f"out{ext}"
    write_image(path, rgb)
    assert Image.open(path).format == "JPEG"
    assert np.abs(read_image(path).rgb - rgb).mean() < 4 / 255
    write_image(path, rgb, quality=30)
    assert os.path.getsize(path) < len(encode_image(rgb, ".jpg"))


def test_webp_quality_is_lossy(tmp_path, photo):
    rgb = _levels8(photo)
    path = tmp_path / "lossy.webp"
    write_image(path, rgb, quality=80)
    back = read_image(path).rgb
    assert 0 < np.abs(back - rgb).mean() < 8 / 255


def test_integer_pixels_are_written_as_they_are(photo, gradient16):
    png = encode_png(photo)
    np.testing.assert_array_equal(read_image_bytes(png).rgb, as_float(photo))
    png16 = encode_png(gradient16, bit_depth=16)
    np.testing.assert_array_equal(read_image_bytes(png16).rgb, as_float(gradient16))
    with pytest.raises(ValueError, match="bit_depth=8"):
        encode_png(photo, bit_depth=16)
    with pytest.raises(ValueError, match="bit_depth=16"):
        encode_png(gradient16)
    with pytest.raises(ValueError, match=r"`rgb`.*\(H, W, 3\)"):
        encode_png(photo[..., 0])


def test_argument_errors(tmp_path, photo):
    rgb = _levels8(photo)
    with pytest.raises(ValueError, match="`path`.*bmp"):
        write_image(tmp_path / "x.bmp", rgb)
    with pytest.raises(ValueError, match="`path`"):
        write_image(tmp_path / "noextension", rgb)
    with pytest.raises(ValueError, match="`bit_depth`.*JPEG"):
        write_image(tmp_path / "x.jpg", rgb, bit_depth=16)
    with pytest.raises(ValueError, match="`bit_depth`"):
        encode_png(rgb, bit_depth=12)
    with pytest.raises(ValueError, match="`quality`"):
        write_image(tmp_path / "x.png", rgb, quality=90)
    with pytest.raises(ValueError, match=r"`rgb`.*\[0, 1\].*got values in \[0, 1\.49"):
        write_image(tmp_path / "x.png", rgb * 1.5)
    with pytest.raises(TypeError, match="`rgb`.*float64"):
        encode_png(rgb.astype(np.float64))
    assert _no_temp_files(tmp_path) and not list(tmp_path.iterdir())


def test_atomic_replace(tmp_path, photo, monkeypatch):
    path = tmp_path / "photo.png"
    first = _levels8(photo)
    write_image(path, first)
    second = as_float(255 - photo)
    write_image(path, second)
    np.testing.assert_array_equal(read_image(path).rgb, second)
    assert sorted(os.listdir(tmp_path)) == ["photo.png"]

    # A failure while writing leaves the old file whole and no temporary file behind.
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(enc.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_image(path, first)
    monkeypatch.undo()
    np.testing.assert_array_equal(read_image(path).rgb, second)
    assert sorted(os.listdir(tmp_path)) == ["photo.png"]


def test_written_file_honours_umask(tmp_path, photo):
    old = os.umask(0o022)
    try:
        write_image(tmp_path / "p.png", _levels8(photo))
    finally:
        os.umask(old)
    assert (tmp_path / "p.png").stat().st_mode & 0o777 == 0o644


def test_odd_names_and_missing_folder(tmp_path, photo):
    rgb = _levels8(photo)
    for name in ("a b.png", "ünï\ncode 'q'.png"):
        write_image(tmp_path / name, rgb)
        np.testing.assert_array_equal(read_image(tmp_path / name).rgb, rgb)
    with pytest.raises(FileNotFoundError):
        write_image(tmp_path / "no-such-folder" / "x.png", rgb)
