"""Decoding failures: every reason code, refused before any pixel is decoded where it must be."""

from __future__ import annotations

import errno
import os
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image, ImageFile

import iea_data.core.imaging._decode as dec
import iea_data.core.imaging._decode_cv2 as cv2dec
import iea_data.core.imaging._header as header
from iea_data.core.errors import IeaError, ImageDecodeError
from iea_data.core.imaging import read_header, read_image, read_image_bytes

from .conftest import as_float

REASONS = {
    "empty-file",
    "not-an-image",
    "truncated",
    "decompression-bomb",
    "unreadable",
    "symlink-loop",
    "is-a-directory",
    "missing-file",
    "unsupported",
}


def _reason(fn, *args, **kwargs) -> ImageDecodeError:
    with pytest.raises(ImageDecodeError) as info:
        fn(*args, **kwargs)
    err = info.value
    assert isinstance(err, IeaError)
    assert err.reason in REASONS
    assert str(err) and "\n" not in str(err)  # one line for the CLI, even for odd names
    return err


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG whose header claims width x height but whose data is a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def _forbid_decoding(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(dec, "_decode_pixels", boom)
    monkeypatch.setattr(cv2, "imdecode", boom)
    monkeypatch.setattr(ImageFile.ImageFile, "load", boom)


# --------------------------------------------------------------------------- content


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    err = _reason(read_image, path)
    assert err.reason == "empty-file" and "empty.jpg" in str(err)
    assert _reason(read_image_bytes, b"").reason == "empty-file"
    assert _reason(read_header, path).reason == "empty-file"
    assert _reason(read_header, b"").reason == "empty-file"


@pytest.mark.parametrize("content", [b"hello, this is not a photo\n", b"%PDF-1.7\n...", bytes(range(256)) * 4, b"\x00"])
def test_not_an_image(tmp_path, content):
    path = tmp_path / "notes.jpg"
    path.write_bytes(content)
    err = _reason(read_image, path)
    assert err.reason == "not-an-image"
    assert "notes.jpg" in str(err)
    assert _reason(read_header, path).reason == "not-an-image"


@pytest.mark.parametrize("keep", [0.3, 0.6, 0.95, -40])
@pytest.mark.parametrize("kind", ["jpeg", "progressive-jpeg", "png", "png16", "webp", "tiff"])
def test_truncated(tmp_path, photo, gradient16, kind, keep):
    path = tmp_path / f"cut.{kind}"
    if kind == "png16":
        cv2.imwrite(str(path.with_suffix(".png")), gradient16)
        data = path.with_suffix(".png").read_bytes()
    else:
        fmt, opts = {
            "jpeg": ("JPEG", {"quality": 95}),
            "progressive-jpeg": ("JPEG", {"progressive": True}),
            "png": ("PNG", {}),
            "webp": ("WEBP", {"lossless": True}),
            "tiff": ("TIFF", {"compression": "tiff_lzw"}),
        }[kind]
        Image.fromarray(photo).save(path, fmt, **opts)
        data = path.read_bytes()
    cut = data[:keep] if keep < 0 else data[: int(len(data) * keep)]
    assert len(cut) > 100
    path.write_bytes(cut)
    assert _reason(read_image, path).reason == "truncated"
    assert _reason(read_image_bytes, cut).reason == "truncated"


@pytest.mark.parametrize("ext", [".jpg", ".png", ".tif", ".webp"])
def test_cut_header_with_known_signature_is_truncated(tmp_path, photo, ext):
    path = tmp_path / f"a{ext}"
    Image.fromarray(photo).save(path)
    data = path.read_bytes()
    assert _reason(read_image_bytes, data[:20]).reason == "truncated"


def test_png_missing_only_its_end_chunk_decodes(tmp_path, photo):
    """Cut inside the final IEND chunk, every pixel is still there: PIL decodes it whole."""
    path = tmp_path / "no-iend.png"
    Image.fromarray(photo).save(path)
    path.write_bytes(path.read_bytes()[:-6])
    np.testing.assert_array_equal(read_image(path).rgb, as_float(photo))


def test_truncated_jpeg_is_not_trusted_to_opencv(tmp_path, photo, monkeypatch):
    """OpenCV can return a partly grey image for a cut JPEG; the EOI check sends it to PIL."""
    path = tmp_path / "cut.jpg"
    Image.fromarray(photo).save(path, quality=95)
    cut = path.read_bytes()[:-300]
    h, w = photo.shape[:2]
    monkeypatch.setattr(cv2dec, "_imdecode", lambda data, flags: np.full((h, w, 3), 128, np.uint8))
    assert _reason(read_image_bytes, cut).reason == "truncated"


def test_jpeg_with_trailing_bytes_still_decodes(tmp_path, photo):
    """Camera files sometimes carry bytes after EOI: PIL then decides, and they decode."""
    path = tmp_path / "trailer.jpg"
    Image.fromarray(photo).save(path, quality=95, subsampling=0)
    path.write_bytes(path.read_bytes() + b"\x00" * 100 + b"vendor trailer")
    img = read_image(path)
    assert np.abs(img.rgb - as_float(photo)).mean() < 3 / 255


# --------------------------------------------------------------------------- bombs


def test_bomb_refused_before_decoding(tmp_path, photo, monkeypatch):
    path = tmp_path / "big.png"
    Image.fromarray(photo).save(path)  # 64 x 48 = 3072 pixels
    assert read_image(path, max_pixels=3072).width == 64  # at the limit: fine
    _forbid_decoding(monkeypatch)
    err = _reason(read_image, path, max_pixels=3071)
    assert err.reason == "decompression-bomb"
    assert "max_pixels" in str(err) and "iea.toml" in str(err) and "3,072" in str(err)


def test_forged_huge_header_is_refused_quickly(monkeypatch):
    data = _png_header_only(20000, 20000)  # 400 Mpx: also beyond PIL's own hard limit
    _forbid_decoding(monkeypatch)
    start = time.perf_counter()
    err = _reason(read_image_bytes, data, name="forged.png")
    assert time.perf_counter() - start < 1.0
    assert err.reason == "decompression-bomb" and "20000 x 20000" in str(err)
    assert read_header(data) == (20000, 20000, "PNG")  # the header alone is harmless


def test_forged_header_within_limit_is_truncated():
    data = _png_header_only(300, 200)
    assert _reason(read_image_bytes, data).reason == "truncated"


# --------------------------------------------------------------------------- file system


def test_missing_file(tmp_path):
    err = _reason(read_image, tmp_path / "nope.jpg")
    assert err.reason == "missing-file" and "nope.jpg" in str(err)
    assert _reason(read_header, tmp_path / "nope.jpg").reason == "missing-file"
    assert _reason(read_image, tmp_path / "nope.jpg" / "below.jpg").reason == "missing-file"
    os.symlink(tmp_path / "gone.jpg", tmp_path / "dangling.jpg")
    assert _reason(read_image, tmp_path / "dangling.jpg").reason == "missing-file"


def test_directory(tmp_path):
    folder = tmp_path / "photos.jpg"
    folder.mkdir()
    assert _reason(read_image, folder).reason == "is-a-directory"
    assert _reason(read_header, folder).reason == "is-a-directory"


def test_symlink_loop(tmp_path):
    os.symlink(tmp_path / "b.jpg", tmp_path / "a.jpg")
    os.symlink(tmp_path / "a.jpg", tmp_path / "b.jpg")
    os.symlink(tmp_path / "self.jpg", tmp_path / "self.jpg")
    for name in ("a.jpg", "self.jpg"):
        err = _reason(read_image, tmp_path / name)
        assert err.reason == "symlink-loop" and name in str(err)
    assert _reason(read_header, tmp_path / "a.jpg").reason == "symlink-loop"


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read a chmod 000 file")
def test_unreadable_by_permissions(tmp_path, photo):
    path = tmp_path / "secret.png"
    Image.fromarray(photo).save(path)
    path.chmod(0)
    try:
        err = _reason(read_image, path)
        assert err.reason == "unreadable" and "permission" in str(err)
    finally:
        path.chmod(0o644)


@pytest.mark.parametrize(
    "exc,reason",
    [
        (PermissionError(errno.EACCES, "Permission denied"), "unreadable"),
        (OSError(errno.EIO, "Input/output error"), "unreadable"),
        (OSError(errno.ELOOP, "Too many levels of symbolic links"), "symlink-loop"),
        (IsADirectoryError(errno.EISDIR, "Is a directory"), "is-a-directory"),
        (FileNotFoundError(errno.ENOENT, "No such file"), "missing-file"),
    ],
)
def test_os_errors_are_mapped(tmp_path, monkeypatch, exc, reason):
    """The same mapping without depending on the user (CI runs as root) or the platform."""

    def failing_open(*args, **kwargs):
        raise exc

    monkeypatch.setattr(dec, "open", failing_open, raising=False)
    monkeypatch.setattr(header, "open", failing_open, raising=False)
    err = _reason(read_image, tmp_path / "x.jpg")
    assert err.reason == reason
    assert _reason(read_header, tmp_path / "x.jpg").reason == reason
    if reason == "unreadable":
        assert "x.jpg" in str(err)


@pytest.mark.parametrize(
    "name",
    [
        "with space.png",
        "ünïcødé-日本.png",
        'quote\'s "double".png',
        "new\nline.png",
        "-leading-dash.png",
        "semi;colon $HOME.png",
    ],
)
def test_odd_file_names(tmp_path, photo, name):
    path = tmp_path / name
    Image.fromarray(photo).save(path, "PNG")
    img = read_image(path)
    np.testing.assert_array_equal(img.rgb, as_float(photo))
    assert read_header(str(path)) == (64, 48, "PNG")
    assert read_image(os.fsencode(path)).width == 64  # bytes paths too
    missing = tmp_path / ("missing " + name)
    err = _reason(read_image, missing)
    assert err.reason == "missing-file"
    assert repr(str(missing)) in str(err)  # quoted and escaped: still one line


def test_wrong_argument_types(tmp_path):
    with pytest.raises(TypeError, match="path_or_bytes"):
        read_header(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="data"):
        read_image_bytes(np.zeros(3))  # type: ignore[arg-type]
