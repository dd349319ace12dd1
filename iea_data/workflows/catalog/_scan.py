"""What the catalog records about one image file, computed in an ingest worker process.

Kept apart from :mod:`iea_data.workflows.catalog` so that worker processes import only NumPy, OpenCV
and Pillow (not SQLAlchemy, pandas or pyarrow): a worker pool then starts in a fraction of
a second. :func:`scan_file` reads the bytes once, hashes them and, for content the catalog
does not know yet, decodes a preview (long side ≤ the workspace's ``ingest.stats_side``,
default :data:`STATS_SIDE`) for luma statistics
and a JPEG thumbnail written to the object store.

Test hook: in a worker started by :func:`init_worker` with ``isolated=True`` (a process of
the ingest's decoder pool, never the ingest process itself), a file whose path contains the
value of the environment variable ``IEA_TEST_CRASH_ON`` makes the worker kill itself with
``SIGKILL`` before decoding it, as the kernel's OOM killer or a crashing codec would. The
variable is read in the worker only; it is unset in normal use.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import time

from iea_data.core import imaging, raw
from iea_data.core.errors import ImageDecodeError
from iea_data.store.objects import ObjectStore, sha256_bytes

__all__ = [
    "STATS_SIDE",
    "THUMBNAIL_QUALITY",
    "CRASH_ON_ENV",
    "classify_os_error",
    "os_error_message",
    "init_worker",
    "init_scan_worker",
    "scan_file",
    "scan_files",
]

log = logging.getLogger(__name__)

#: Default long side of the preview that luma statistics and thumbnails are computed on: the
#: released network's input resolution (256 x 256). JPEGs are decoded at reduced scale in the
#: DCT domain. Means are those of the full image up to rounding; percentiles and clipped
#: fractions are those of the area-averaged preview. Set ``ingest.stats_side`` to change it.
STATS_SIDE = 256
THUMBNAIL_QUALITY = 85  # thumbnails are JPEG: ~10x faster to encode than PNG, ~4x smaller


def classify_os_error(exc: OSError) -> str:
    """The ingest reason code of an ``OSError`` (``symlink-loop``, ``missing-file``, …)."""
    if exc.errno == errno.ELOOP:
        return "symlink-loop"
    if exc.errno == errno.ENOENT:
        return "missing-file"
    if exc.errno == errno.EISDIR:
        return "is-a-directory"
    return "unreadable"


def os_error_message(exc: OSError) -> str:
    """A sentence for a person: what went wrong and what to do."""
    reason = classify_os_error(exc)
    if reason == "symlink-loop":
        return "too many levels of symbolic links (a symlink loop); fix or remove the link"
    if reason == "missing-file":
        return "the file does not exist (a dangling symlink, or deleted during the run)"
    if reason == "is-a-directory":
        return "a folder where a file was expected"
    return f"cannot read the file ({exc.strerror}); check its permissions"


_WORKER: dict = {}


#: Environment variable naming a path substring on which an isolated worker kills itself (tests).
CRASH_ON_ENV = "IEA_TEST_CRASH_ON"


def init_worker(
    max_pixels: int,
    thumb_side: int,
    stats_side: int,
    objects_root: str,
    known: frozenset[str],
    isolated: bool = False,
) -> None:
    """Set up a worker process: its limits, the object store and the hashes the catalog knows.

    ``isolated`` says that this is a decoder-pool process whose death the ingest survives;
    only then is the :data:`CRASH_ON_ENV` test hook armed.
    """
    import cv2

    cv2.setNumThreads(1)
    crash_on = os.environ.get(CRASH_ON_ENV) if isolated else None
    _WORKER.update(
        max_pixels=max_pixels,
        thumb_side=thumb_side,
        stats_side=stats_side,
        objects=ObjectStore(objects_root),
        known=known,
        crash_on=crash_on or None,
    )


#: The public name of :func:`init_worker` (set up a process that runs :func:`scan_files`).
init_scan_worker = init_worker


def scan_files(tasks: list[tuple[str, int, int]]) -> list[dict]:
    """:func:`scan_file` of each task, in order (a pool hands small files over in chunks)."""
    return [scan_file(task) for task in tasks]


def scan_file(task: tuple[str, int, int]) -> dict:
    """Hash (and, for new content, decode) one file. Runs in a worker process; never raises."""
    path, size, mtime_ns = task
    out: dict = {"path": path, "size": size, "mtime_ns": mtime_ns}
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        out["error"] = (classify_os_error(exc), os_error_message(exc))
        return out
    sha = sha256_bytes(data)
    out["sha256"] = sha
    out["size"] = len(data)
    if sha in _WORKER["known"]:
        return out
    crash_on = _WORKER.get("crash_on")
    if crash_on and crash_on in path:
        os.kill(os.getpid(), signal.SIGKILL)
    started = time.monotonic()
    raw_facts = dict(_NOT_RAW)
    try:
        if raw.is_raw_name(path):
            decoded, raw_facts = _decode_raw(data, path)
        else:
            decoded = imaging.read_image_bytes(
                data, name=path, max_pixels=_WORKER["max_pixels"], max_side=_WORKER["stats_side"]
            )
        stats = imaging.luma_stats(decoded.rgb)
        thumb = imaging.thumbnail(decoded.rgb, max_side=min(_WORKER["thumb_side"], _WORKER["stats_side"]))
        thumb_key = _WORKER["objects"].put_bytes(
            imaging.encode_image(thumb, ".jpg", quality=THUMBNAIL_QUALITY), durable=False
        )
    except ImageDecodeError as exc:
        out["error"] = (exc.reason, str(exc))
        return out
    except MemoryError:
        out["error"] = ("out-of-memory", "the image is too large to decode in memory; lower max_pixels or add memory")
        return out
    except Exception as exc:  # a decoder bug must not stop the batch
        log.exception("unexpected error decoding %s", path)
        out["error"] = ("decode-failed", f"unexpected decoder error: {type(exc).__name__}: {exc}")
        return out
    finally:
        # when this process decoded it (CLOCK_MONOTONIC: comparable across processes)
        out["decode_span"] = (started, time.monotonic())
    exif = decoded.exif
    out["image"] = {
        "format": decoded.format,
        "mode": decoded.mode,
        "width": decoded.width,
        "height": decoded.height,
        "channels": decoded.channels,
        "bit_depth": decoded.bit_depth,
        "exif_exposure_time": exif.exposure_time,
        "exif_f_number": exif.f_number,
        "exif_iso": exif.iso,
        "exif_exposure_bias": exif.exposure_bias,
        "exif_camera_make": exif.camera_make,
        "exif_camera_model": exif.camera_model,
        "exif_capture_time": exif.capture_time,
        "exif_orientation": exif.orientation,
        "thumbnail": thumb_key,
        **{k: float(v) for k, v in stats.items()},
        **raw_facts,
    }
    return out


# every result row carries the RAW columns, so that one batch's INSERT has the same keys in every row
_NOT_RAW = {
    "raw": False,
    "raw_width": None,
    "raw_height": None,
    "raw_cfa_pattern": None,
    "raw_black_level": None,
    "raw_white_level": None,
    "raw_info": None,
}


_PREVIEW = {
    "mosaic": "2 x 2 superpixels of the Bayer data (LibRaw's half-size arithmetic), camera white balance, "
    "no auto-bright, LibRaw's camera-to-sRGB matrix, area-averaged in linear light, then sRGB",
    "libraw": "LibRaw half-size, camera white balance, no_auto_bright, gamma (1, 1), area-averaged in "
    "linear light, then sRGB",
}


def _decode_raw(data: bytes, path: str) -> tuple[imaging.DecodedImage, dict]:
    """A camera RAW through rawpy: a half-size linear render with the camera's white balance and
    no auto-bright (from a Bayer sensor's data directly, else LibRaw's), area-averaged to the
    preview size and sRGB-encoded, as the preview; the sensor facts for the RAW columns."""
    # over max_pixels (raw_width x raw_height): refused from the header, before unpacking
    preview, info, method = raw.raw_preview(
        data, max_side=_WORKER["stats_side"], name=path, max_pixels=_WORKER["max_pixels"]
    )
    decoded = imaging.DecodedImage(
        rgb=preview,
        width=info.width,
        height=info.height,
        channels=3,
        bit_depth=info.bit_depth,
        format=info.format,
        mode="RAW",
        exif=info.exif,
    )
    facts = {
        "raw": True,
        "raw_width": info.raw_width,
        "raw_height": info.raw_height,
        "raw_cfa_pattern": info.cfa_pattern,
        "raw_black_level": float(sum(info.black_levels) / len(info.black_levels)) if info.black_levels else None,
        "raw_white_level": info.white_level,
        "raw_info": json.dumps(
            {
                "black_levels": list(info.black_levels),
                "camera_wb": list(info.camera_wb),
                "flip": info.flip,
                "versions": raw.rawpy_versions(),
                "preview": _PREVIEW[method],
                "preview_method": method,
            },
            sort_keys=True,
        ),
    }
    return decoded, facts
