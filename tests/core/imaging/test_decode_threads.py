"""Decoding is thread-safe: no process-wide state (PIL's pixel limit, warning filters) changes per call."""

from __future__ import annotations

import subprocess
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from iea_data.core.errors import ImageDecodeError
from iea_data.core.imaging import read_header, read_image, read_image_bytes


def _png(tmp_path, shape=(48, 64, 3)):
    path = tmp_path / "a.png"
    Image.fromarray(np.full(shape, 7, np.uint8)).save(path)
    return path


def test_threads_each_get_their_own_pixel_limit(tmp_path, monkeypatch):
    """Many threads at once, half with a limit below the image's 3072 pixels, half above."""
    path = _png(tmp_path)
    data = path.read_bytes()
    # PIL's own limit is far below the image (PIL would refuse above 2 x 100): it must play no part.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    filters_before = list(warnings.filters)
    seen_limits: set = set()
    stop = threading.Event()

    def watch() -> None:  # samples PIL's global limit while the threads decode
        while not stop.is_set():
            seen_limits.add(Image.MAX_IMAGE_PIXELS)

    def decode(i: int) -> str:
        limit = 3071 if i % 2 else 3072  # just under / exactly the image's pixel count
        try:
            img = (
                read_image_bytes(data, name=f"t{i}", max_pixels=limit) if i % 3 else read_image(path, max_pixels=limit)
            )
        except ImageDecodeError as err:
            assert err.reason == "decompression-bomb" and "3,071" in str(err)
            return "refused"
        assert img.rgb.shape == (48, 64, 3)
        return "decoded"

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(decode, range(200)))
    finally:
        stop.set()
        watcher.join()
    assert results == ["refused" if i % 2 else "decoded" for i in range(200)]
    assert seen_limits == {100}, "PIL.Image.MAX_IMAGE_PIXELS changed during decoding"
    assert list(warnings.filters) == filters_before, "the warning filters changed during decoding"


def test_huge_header_is_refused_by_our_limit_only(tmp_path, monkeypatch):
    """Above PIL's error threshold but within max_pixels: decoded, PIL's limit untouched."""
    path = _png(tmp_path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # PIL errors above 2000 pixels
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path, max_pixels=10_000).rgb.shape == (48, 64, 3)
        assert read_header(path) == (64, 48, "PNG")
    assert Image.MAX_IMAGE_PIXELS == 1000
    with pytest.raises(ImageDecodeError) as err:
        read_image(path, max_pixels=3000)
    assert err.value.reason == "decompression-bomb"


def test_decode_module_uses_no_process_wide_switches():
    """The source never swaps PIL's limit nor opens a catch_warnings block."""
    import inspect

    from iea_data.core import imaging

    for name in ("_decode", "_header", "_decode_pillow", "_decode_cv2", "_preview", "_memory", "_exif"):
        module = __import__(f"{imaging.__name__}.{name}", fromlist=[name])
        source = inspect.getsource(module)
        assert "MAX_IMAGE_PIXELS =" not in source and "MAX_IMAGE_PIXELS=" not in source, name
        assert "catch_warnings(" not in source and "simplefilter(" not in source, name


def test_pil_warnings_about_a_file_stay_quiet_in_a_fresh_process(tmp_path):
    """A corrupt EXIF block makes PIL warn; the filter installed once at import keeps stderr clean."""
    path = tmp_path / "bad-exif.tif"
    Image.fromarray(np.full((4, 4, 3), 9, np.uint8)).save(path, tiffinfo={0x8769: 10_000})  # Exif IFD past the end
    code = (
        "import sys\nfrom iea_data.core.imaging import read_image\n"
        f"img = read_image({str(path)!r})\nprint(img.rgb.shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(4, 4, 3)"
    assert "Warning" not in out.stderr, out.stderr
