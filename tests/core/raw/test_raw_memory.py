"""decode_memory knows camera RAW sizes (from LibRaw's header); a RAW over max_pixels is refused before decoding."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("pidng")
pytest.importorskip("rawpy")

from iea_data.core.errors import ImageDecodeError
from iea_data.core.imaging import decode_memory, raw_decode_bytes, raw_header
from iea_data.core.raw import raw_preview, render_linear, synthetic_dng

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


@pytest.fixture(scope="module")
def big_dng(tmp_path_factory):
    """A 1200 x 1800 RGGB DNG (2.2 M sensor pixels)."""
    h, w = 1200, 1800
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    scene = np.stack([0.1 + 0.3 * xx / w, 0.2 + 0.2 * yy / h, np.full_like(xx, 0.1)], -1)
    path = tmp_path_factory.mktemp("mem") / "big.dng"
    path.write_bytes(synthetic_dng(scene))
    return path


def test_decode_memory_counts_the_sensor_data_and_the_render(big_dng):
    size = big_dng.stat().st_size
    header = raw_header(big_dng)
    assert (header.raw_width, header.raw_height, header.channels) == (1800, 1200, 1)
    preview = decode_memory(big_dng, max_side=256)
    full = decode_memory(big_dng)
    assert preview == 2 * size + raw_decode_bytes(header, half_size=True)
    assert full == 2 * size + raw_decode_bytes(header, half_size=False)
    assert preview > 2 * size + 1800 * 1200 * 2 and full > preview
    # not the PIL/TIFF path: a DNG is a TIFF whose first IFD is a small preview (or nothing)
    assert preview > 40 * 1800 * 1200 // 4


_PEAK = """
import sys
import numpy as np
from iea_data.core.raw import raw_preview, render_linear, synthetic_dng
raw_preview(synthetic_dng(np.full((32, 48, 3), 0.2, np.float32)), max_side=8)  # imports and LibRaw's fixed state

def status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key))

data = open(sys.argv[1], "rb").read()
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")  # reset the peak resident size (VmHWM) to the current one
base = status("VmRSS:")
raw_preview(data, max_side=256) if sys.argv[2] == "preview" else render_linear(data)
print(status("VmHWM:") - base)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc peak-RSS reset")
@pytest.mark.parametrize("mode", ["preview", "full"])
def test_the_estimate_covers_the_measured_peak(big_dng, mode):
    out = subprocess.run(
        [sys.executable, "-c", _PEAK, str(big_dng), mode],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": REPO},
        check=True,
    )
    measured = int(out.stdout.split()[-1])
    est = decode_memory(big_dng, max_side=256 if mode == "preview" else None) - big_dng.stat().st_size
    assert measured <= est <= 3 * max(measured, 1 << 20), (measured, est)


def test_a_raw_over_max_pixels_is_refused_from_its_header(big_dng, tmp_path):
    size = big_dng.stat().st_size
    assert decode_memory(big_dng, max_side=256, max_pixels=1_000_000) == size  # refused: never decoded
    with pytest.raises(ImageDecodeError, match=r"1800 x 1200 = 2,160,000 pixels, more than the limit") as err:
        raw_preview(big_dng, max_side=256, max_pixels=1_000_000)
    assert err.value.reason == "decompression-bomb"
    # the header alone decides: a file cut short after it is refused the same way, not decoded
    cut = tmp_path / "cut.dng"
    cut.write_bytes(big_dng.read_bytes()[: size // 3])
    with pytest.raises(ImageDecodeError) as err:
        render_linear(cut)
    assert err.value.reason == "unreadable-raw"
    with pytest.raises(ImageDecodeError) as err:
        render_linear(cut, max_pixels=1_000_000)
    assert err.value.reason == "decompression-bomb"
    assert render_linear(big_dng, max_pixels=1800 * 1200, half_size=True).linear.shape == (600, 900, 3)
    with pytest.raises(ValueError, match="max_pixels"):
        render_linear(big_dng, max_pixels=0)
    junk = tmp_path / "junk.dng"
    junk.write_bytes(b"not a raw\n" * 30)
    assert decode_memory(junk, max_side=256) == junk.stat().st_size


def test_ingest_gives_the_error_row_of_the_other_decoders(big_dng, tmp_path):
    from iea_data.workflows.catalog._scan import init_worker, scan_file  # the ingest's worker, in this process

    init_worker(1_000_000, 64, 256, str(tmp_path / "objects"), frozenset())
    out = scan_file((str(big_dng), big_dng.stat().st_size, 0))
    assert out["error"][0] == "decompression-bomb" and "max_pixels" in out["error"][1]


def _tiff_ifd(entries: list[tuple[int, int, int, int]]) -> bytes:
    """A little-endian TIFF with one IFD of (tag, type, count, value) entries inlined."""
    import struct

    body = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + b"\0\0\0\0"
    return b"II*\x00" + struct.pack("<I", 8) + body


def test_dng_channels_from_its_own_tags(big_dng):
    from iea_data.core.imaging._raw_header import _dng_raw_samples

    assert _dng_raw_samples(big_dng.read_bytes()[: 1 << 16]) is None  # a CFA mosaic: one value a pixel
    linear = _tiff_ifd([(254, 4, 1, 0), (262, 3, 1, 34892), (277, 3, 1, 3)])
    assert _dng_raw_samples(linear) == 3
    assert _dng_raw_samples(_tiff_ifd([(254, 4, 1, 1), (262, 3, 1, 34892)])) is None  # a preview IFD
    assert _dng_raw_samples(linear[:20]) is None and _dng_raw_samples(b"\xff\xd8\xff") is None
