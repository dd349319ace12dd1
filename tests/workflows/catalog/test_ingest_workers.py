"""Ingest's decoder pool: a memory budget shared by all workers, and dead workers survived (issue 10, §1).

- every file's decoded size is estimated from its header (:func:`iea_data.core.imaging.decode_memory`)
  and the files in flight never add up to more than ``ingest.memory_budget_mb``: two large
  whole-decoded files are never decoded at the same time, while small files still are;
- a worker killed with ``SIGKILL`` (as by the OOM killer) costs only the file that killed it
  (``worker-crashed``); the files it held are retried, the rest lands, the run ends ``done``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tomllib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from sqlalchemy import func, select

from iea_data.core.errors import IeaError
from iea_data.core.imaging import decode_memory, read_header
from iea_data.store import Image, IngestError, IngestRun
from iea_data.workflows.catalog import ingest

from ..conftest import reader

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests"))
from conftest import run_iea  # noqa: E402

MIB = 1 << 20


# --------------------------------------------------------------------------- estimates


def _smooth(h: int, w: int, channels: int = 3, dtype=np.uint8) -> np.ndarray:
    top = 255 if dtype == np.uint8 else 65535
    y = np.linspace(0, top, h)[:, None]
    x = np.linspace(0, top, w)[None, :]
    planes = [(y + x) / 2, np.broadcast_to(y, (h, w)), np.broadcast_to(x, (h, w)), np.full((h, w), top)]
    return np.stack(planes[:channels], axis=-1).astype(dtype)


def _tiff(path: Path, h: int, w: int, *, seed: int = 0) -> Path:
    """An 8-bit RGB LZW TIFF (decoded whole, through PIL) that is small on disk."""
    img = _smooth(h, w)
    img[0, :3, 0] = seed % 256  # distinct content per seed
    PILImage.fromarray(img).save(path, compression="tiff_lzw")
    return path


def test_decode_memory_of_whole_decoded_formats_is_twice_the_decoded_size(tmp_path):
    tif = _tiff(tmp_path / "a.tif", 300, 400)
    assert decode_memory(tif, max_side=256) == tif.stat().st_size + 2 * 300 * 400 * 3
    t16 = tmp_path / "b.tif"
    cv2.imwrite(str(t16), _smooth(100, 120, 3, np.uint16))
    assert decode_memory(t16, max_side=256) == t16.stat().st_size + 2 * 100 * 120 * 3 * 2
    webp = tmp_path / "c.webp"
    rgba = _smooth(64, 80, 4)
    rgba[..., 3] = rgba[..., 0]  # real transparency: WebP keeps an alpha channel
    PILImage.fromarray(rgba).save(webp, lossless=True)
    assert decode_memory(webp, max_side=256) == webp.stat().st_size + 2 * 64 * 80 * 4
    pal = tmp_path / "d.png"
    PILImage.fromarray(_smooth(50, 60)).convert("P").save(pal)
    assert decode_memory(pal, max_side=256) == pal.stat().st_size + 2 * 50 * 60 * 3
    # without max_side the float32 RGB result comes on top
    assert decode_memory(tif) == decode_memory(tif, max_side=256) + 300 * 400 * 12


def test_decode_memory_follows_the_cheap_paths_png_strips_and_jpeg_scaling(tmp_path):
    big = tmp_path / "big.png"  # 16-bit RGB, 24 MiB decoded: previewed in strips
    cv2.imwrite(str(big), _smooth(2048, 2048, 3, np.uint16))
    whole = 2 * 2048 * 2048 * 3 * 2
    strips = decode_memory(big, max_side=256) - big.stat().st_size
    assert strips == 4 * (4 * MIB) + 2048 * 256 * 3 * 4 < whole / 2  # four ~4 MiB strips + the (H, 256) floats
    assert decode_memory(big) - big.stat().st_size == whole + 2048 * 2048 * 12
    interlaced = tmp_path / "interlaced.png"  # not on the strip path: decoded whole
    PILImage.fromarray(_smooth(1024, 1024)).save(interlaced, interlace=1)
    assert decode_memory(interlaced, max_side=256) == interlaced.stat().st_size + 2 * 1024 * 1024 * 3
    jpg = tmp_path / "a.jpg"
    cv2.imwrite(str(jpg), _smooth(2048, 2048))
    base = jpg.stat().st_size
    assert decode_memory(jpg, max_side=256) == base + 2 * 256 * 256 * 3  # decoded at 1/8
    prog = tmp_path / "p.jpg"
    cv2.imwrite(str(prog), _smooth(2048, 2048), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    # a progressive JPEG holds all its DCT coefficients (2 bytes per sample) whatever the scale
    assert decode_memory(prog, max_side=256) == prog.stat().st_size + 2 * 2048 * 2048 * 3 + 2 * 256 * 256 * 3


def test_decode_memory_of_refused_or_unreadable_files_is_their_size(tmp_path):
    tif = _tiff(tmp_path / "a.tif", 300, 400)
    assert decode_memory(tif, max_side=256, max_pixels=1000) == tif.stat().st_size  # a bomb: never decoded
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    assert decode_memory(junk) == len(b"not an image at all")
    assert decode_memory(tmp_path / "absent.png") == 0
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert decode_memory(tmp_path / "empty.jpg") == 0
    with pytest.raises(ValueError, match="max_side"):
        decode_memory(tif, max_side=0)
    with pytest.raises(TypeError, match="max_pixels"):
        decode_memory(tif, max_pixels=1.5)


FORMATS = {  # suffix -> (PIL save arguments, channels kept, decoded whole for a preview)
    ".tif": ({"compression": "tiff_lzw"}, None, True),
    ".webp": ({"lossless": True}, None, True),
    ".png": ({}, None, True),  # small: under the strip threshold, decoded whole
    ".jpg": ({"quality": 90}, 3, False),
}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    suffix=st.sampled_from(sorted(FORMATS)),
    mode=st.sampled_from(["L", "RGB", "RGBA"]),
    h=st.integers(1, 300),
    w=st.integers(1, 300),
    side=st.one_of(st.none(), st.integers(1, 400)),
)
def test_decode_memory_property_header_facts(tmp_path, suffix, mode, h, w, side):
    """For any size and layout: at least the file's size; exactly the documented formula for
    whole-decoded files; and it agrees with the header's width and height."""
    kwargs, channels, whole = FORMATS[suffix]
    if suffix == ".jpg" and mode == "RGBA":
        mode = "RGB"
    path = tmp_path / f"x{suffix}"
    img = _smooth(h, w, {"L": 1, "RGB": 3, "RGBA": 4}[mode])
    PILImage.fromarray(img[..., 0] if mode == "L" else img, mode).save(path, **kwargs)
    est = decode_memory(path, max_side=side)
    size = path.stat().st_size
    assert est >= size
    assert read_header(path)[:2] == (w, h)
    bands = len(PILImage.open(path).getbands())
    float_rgb = h * w * 12 if side is None else 0
    if whole:
        assert est == size + 2 * h * w * bands + float_rgb
    else:  # JPEG: never more than the full-size decode
        assert size < est <= size + 2 * h * w * max(bands, 3) + float_rgb


# --------------------------------------------------------------------------- the budget


@settings(max_examples=200, deadline=None)
@given(
    budget=st.integers(1, 100),
    costs=st.lists(st.integers(0, 150), min_size=1, max_size=40),
    picks=st.lists(st.integers(0, 1000), min_size=0, max_size=80),
    slots=st.integers(1, 8),
)
def test_budget_admits_in_order_within_the_budget_and_never_starves(budget, costs, picks, slots):
    """Simulated scheduling with random completion order: the admitted total stays within the
    budget unless one file is alone, files start in order, and every file starts."""
    from iea_data.workflows.catalog._ingest import _Budget

    b = _Budget(budget)
    queue = list(enumerate(costs))
    running: list[tuple[int, int]] = []
    started: list[int] = []
    picks = iter(picks)
    while queue or running:
        while queue and len(running) < slots and b.fits(queue[0][1]):
            i, c = queue.pop(0)
            b.take(c)
            running.append((i, c))
            started.append(i)
            assert b.used <= budget or len(running) == 1
        assert running, "nothing running while files wait: starved"
        i, c = running.pop(next(picks, 0) % len(running))
        b.give(c)
    assert started == list(range(len(costs)))
    assert (b.used, b.count) == (0, 0)


def _init_args(ws) -> tuple:
    s = ws.settings
    return (s.max_pixels, s.thumbnail_side, s.stats_side, str(ws.objects.root), frozenset())


def _overlaps(spans) -> bool:
    spans = sorted(spans)
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:]))


@pytest.fixture(scope="module")
def budget_files(tmp_path_factory):
    """Two large whole-decoded TIFFs (~34 MiB estimated each) and ten small ones (~6 MiB)."""
    d = tmp_path_factory.mktemp("budget")
    big = [_tiff(d / f"big{i}.tif", 2400, 2500, seed=i) for i in range(2)]
    small = [_tiff(d / f"small{i}.tif", 1000, 1000, seed=10 + i) for i in range(10)]
    return d, big, small


@pytest.mark.timeout(120)
def test_two_large_files_never_decode_at_once_within_the_budget(sqlite_workspace, budget_files):
    from iea_data.workflows.catalog._ingest import _run_tasks

    _d, big, small = budget_files
    ws = sqlite_workspace

    def cost(path: str) -> int:
        return decode_memory(path, max_side=ws.settings.stats_side, max_pixels=ws.settings.max_pixels)

    assert all(48 * MIB < 2 * cost(str(p)) and cost(str(p)) < 48 * MIB for p in big)
    tasks = [(str(p), p.stat().st_size, 0) for p in [*big, *small]]
    results = {
        r["path"]: r for r in _run_tasks(tasks, workers=2, init_args=_init_args(ws), budget_bytes=48 * MIB, cost=cost)
    }
    assert set(results) == {t[0] for t in tasks}
    assert not [r["error"] for r in results.values() if "error" in r]
    assert not _overlaps([results[str(p)]["decode_span"] for p in big])  # one large file at a time
    # small files, within the same budget, are still decoded side by side
    par = [
        r["decode_span"]
        for r in _run_tasks(tasks[2:], workers=2, init_args=_init_args(ws), budget_bytes=48 * MIB, cost=cost)
    ]
    assert len(par) == len(small) and _overlaps(par)
    # without a budget the two large files are decoded side by side (what the test guards against)
    free = {
        r["path"]: r for r in _run_tasks(tasks[:2], workers=2, init_args=_init_args(ws), budget_bytes=None, cost=cost)
    }
    assert _overlaps([free[str(p)]["decode_span"] for p in big])


@pytest.mark.timeout(120)
def test_a_file_larger_than_the_budget_is_decoded_alone(sqlite_workspace, budget_files):
    from iea_data.workflows.catalog._ingest import _run_tasks

    _d, big, small = budget_files
    ws = sqlite_workspace
    tasks = [(str(p), p.stat().st_size, 0) for p in [small[0], big[0], small[1], small[2]]]
    results = {
        r["path"]: r
        for r in _run_tasks(
            tasks,
            workers=2,
            init_args=_init_args(ws),
            budget_bytes=1 * MIB,
            cost=lambda path: decode_memory(path, max_side=256),
        )
    }
    alone = results[str(big[0])]["decode_span"]
    others = [results[t[0]]["decode_span"] for t in tasks if t[0] != str(big[0])]
    assert not any(_overlaps([alone, span]) for span in others)


@pytest.mark.timeout(120)
def test_ingest_reads_the_budget_from_the_workspace_setting(workspace, budget_files, monkeypatch):
    import iea_data.workflows.catalog._ingest as ing
    from iea_data.store.workspace import Settings, Workspace

    d, big, small = budget_files
    config = workspace.root / "iea.toml"
    assert tomllib.loads(config.read_text())["ingest"]["memory_budget_mb"] == 2048  # the default, written out
    config.write_text(config.read_text().replace("memory_budget_mb = 2048", "memory_budget_mb = 40"))
    ws = Workspace.open(workspace.root)
    assert ws.settings.memory_budget_mb == 40
    seen = []
    real = ing._run_tasks

    def spy(tasks, **kwargs):
        seen.append(kwargs["budget_bytes"])
        return real(tasks, **kwargs)

    monkeypatch.setattr(ing, "_run_tasks", spy)
    report = ingest(ws, [d], workers=2)
    assert (report.n_new, report.n_errors, seen) == (12, 0, [40 * MIB])
    ingest(ws, [d], workers=2, memory_budget_mb=7)
    assert seen[-1] == 7 * MIB
    with pytest.raises(IeaError, match="memory_budget_mb must be an integer >= 1"):
        ingest(ws, [d], workers=2, memory_budget_mb=0)
    with pytest.raises(IeaError, match="'memory_budget_mb' must be a positive integer"):
        Settings(memory_budget_mb=0)


# --------------------------------------------------------------------------- dead workers


@pytest.fixture(scope="module")
def crash_folder(tmp_path_factory):
    """48 small distinct PNGs and two that kill their decoder (their names hold ``crash_me``)."""
    d = tmp_path_factory.mktemp("crash")
    rng = np.random.default_rng(5)
    for i in range(48):
        cv2.imwrite(str(d / f"photo{i:02d}.png"), rng.integers(0, 255, size=(24, 32, 3), dtype=np.uint8))
    for name in ("a_crash_me.png", "m_crash_me.png"):
        cv2.imwrite(str(d / name), rng.integers(0, 255, size=(24, 32, 3), dtype=np.uint8))
    return d


@pytest.mark.timeout(180)
def test_a_killed_decoder_costs_only_its_file_and_the_run_finishes(sqlite_workspace, crash_folder):
    """A worker that SIGKILLs itself (as the OOM killer would) on two files: multiprocessing.Pool
    waited for ever on the lost task; now both files get ``worker-crashed``, the 48 others land,
    ``iea ingest`` exits 3 and the run is ``done``."""
    ws = sqlite_workspace
    res = run_iea(
        "-w",
        str(ws.root),
        "ingest",
        str(crash_folder),
        "--workers",
        "2",
        env={"IEA_TEST_CRASH_ON": "crash_me"},
        timeout=150,
    )
    assert res.returncode == 3, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    with reader(ws) as s:
        assert s.scalar(select(func.count()).select_from(Image)) == 48
        errors = sorted(
            (Path(p).name, r, m)
            for p, r, m in s.execute(select(IngestError.path, IngestError.reason, IngestError.message))
        )
        runs = s.execute(select(IngestRun.status, IngestRun.n_new, IngestRun.n_errors)).all()
    assert [(n, r) for n, r, _ in errors] == [
        ("a_crash_me.png", "worker-crashed"),
        ("m_crash_me.png", "worker-crashed"),
    ]
    assert "decoder process died" in errors[0][2] and "--workers" in errors[0][2]
    assert runs == [("done", 48, 2)]
    # without the crash the next run decodes just those two files
    again = ingest(ws, [crash_folder], workers=1)
    assert (again.n_unchanged, again.n_new, again.n_errors) == (48, 2, 0)


@pytest.mark.timeout(120)
def test_the_crash_hook_is_inert_in_the_ingest_process(sqlite_workspace, crash_folder, monkeypatch, tmp_path):
    """With ``workers=1`` decoding runs in the calling process, where the test hook is never armed."""
    monkeypatch.setenv("IEA_TEST_CRASH_ON", "crash_me")
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(crash_folder / "a_crash_me.png", one)
    report = ingest(sqlite_workspace, [one], workers=1)
    assert (report.n_new, report.n_errors) == (1, 0)
    assert os.environ["IEA_TEST_CRASH_ON"] == "crash_me"


def _forkserver_children() -> list[int]:
    from multiprocessing import forkserver

    server = forkserver._forkserver._forkserver_pid
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[1]) == server:
                        kids.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return kids


@pytest.mark.timeout(120)
def test_workers_killed_from_outside_mid_batch_lose_nothing(sqlite_workspace, crash_folder, caplog):
    """The OOM killer's way: SIGKILL every decoder process (busy or idle) between two results.
    The files they held are scanned again and every file comes back exactly once, unharmed."""
    import signal

    from iea_data.workflows.catalog._ingest import _run_tasks

    files = sorted(p for p in crash_folder.iterdir() if "crash_me" not in p.name)[:24]
    tasks = [(str(p), p.stat().st_size, 0) for p in files]
    results = _run_tasks(
        tasks,
        workers=2,
        init_args=_init_args(sqlite_workspace),
        budget_bytes=64 * MIB,
        cost=lambda path: decode_memory(path, max_side=256),
    )
    first = next(results)
    victims = _forkserver_children()
    assert victims, "no decoder process to kill"
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    rest = list(results)
    paths = sorted(r["path"] for r in [first, *rest])
    assert paths == sorted(t[0] for t in tasks)
    assert [r.get("error") for r in [first, *rest] if "error" in r] == []
    assert "a decoder process died" in caplog.text  # the pool did break, and was replaced
