"""Ingest never loses a batch, and recovers exactly after a crash (issue 10, section 1).

- a file name that is not valid UTF-8 is an error row (``bad-file-name``), the rest lands;
- a row the database refuses is retried alone and recorded, the rest of its batch lands;
- ``kill -9`` at any point, then a re-run, gives the catalog of one uninterrupted run,
  scenes included; the killed run is marked ``interrupted``, a live one is left alone;
- one worker's peak memory on a large 16-bit PNG stays near the decoded size.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from iea_data.store import Image, ImagePath, IngestError, IngestRun, Scene, dispose_engines
from iea_data.workflows.catalog import ingest, list_errors

from ..conftest import reader

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tests"))
from conftest import run_iea  # noqa: E402


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO)
    env.pop("IEA_HOME", None)
    return env


# --------------------------------------------------------------------------- 1. no lost batch


def _bad_name_folder(tmp_path: Path, demo_photos: Path) -> Path:
    d = tmp_path / "names"
    shutil.copytree(demo_photos, d)
    bad = os.path.join(os.fsencode(d), b"caf\xe9.png")  # Latin-1 bytes: not valid UTF-8
    shutil.copyfile(os.fsencode(demo_photos / "coffee_-2EV.png"), bad)
    with open(bad, "ab") as fh:  # distinct bytes, so it is not a duplicate of a good file
        fh.write(b"\0")
    return d


def test_non_utf8_file_name_is_an_error_row_and_the_good_files_land(workspace, demo_photos, tmp_path):
    d = _bad_name_folder(tmp_path, demo_photos)
    report = ingest(workspace, [d], workers=2)
    assert report.n_new == 10 and report.n_scenes == 2
    assert [(e.path, e.reason) for e in report.errors] == [(f"{d}/caf\\xe9.png", "bad-file-name")]
    assert "UTF-8" in report.errors[0].message and "rename" in report.errors[0].message
    with reader(workspace) as s:
        assert s.scalar(select(func.count()).select_from(Image)) == 10
        rows = [(e["path"], e["reason"]) for e in list_errors(workspace)]
        run = s.get(IngestRun, report.run_id)
    assert rows == [(f"{d}/caf\\xe9.png", "bad-file-name")]
    assert (run.status, run.n_new, run.n_errors) == ("done", 10, 1)
    again = ingest(workspace, [d], workers=1)  # a re-run fails the same single file, nothing else
    assert (again.n_unchanged, again.n_new, [e.reason for e in again.errors]) == (10, 0, ["bad-file-name"])


def test_cli_ingest_with_a_non_utf8_name_exits_3_and_names_the_file(sqlite_workspace, demo_photos, tmp_path):
    d = _bad_name_folder(tmp_path, demo_photos)
    res = run_iea("-w", str(sqlite_workspace.root), "ingest", str(d), "--workers", "1")
    assert res.returncode == 3, res.stderr
    assert "caf\\xe9.png" in res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    with reader(sqlite_workspace) as s:
        assert s.scalar(select(func.count()).select_from(Image)) == 10


def _refuse_one_image_name(workspace, name: str) -> None:
    """A real database-level failure for one row: a trigger that aborts inserting ``name``."""
    with workspace.engine().begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER refuse_one BEFORE INSERT ON images WHEN NEW.name = '{name}' "
                "BEGIN SELECT RAISE(ABORT, 'injected failure for one row'); END"
            )
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_one() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.name = '{name}' THEN RAISE EXCEPTION 'injected failure for one row'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_one BEFORE INSERT ON images FOR EACH ROW EXECUTE FUNCTION refuse_one()"
            )


def test_a_row_the_database_refuses_fails_alone_and_its_batch_lands(workspace, demo_photos):
    _refuse_one_image_name(workspace, "coffee_+1EV.png")
    report = ingest(workspace, [demo_photos], workers=1, commit_every=64)  # all 10 files in one batch
    assert report.n_new == 9
    assert [(Path(e.path).name, e.reason) for e in report.errors] == [("coffee_+1EV.png", "database-error")]
    assert "injected failure for one row" in report.errors[0].message
    with reader(workspace) as s:
        names = set(s.scalars(select(Image.name)))
        errors = s.execute(select(IngestError.path, IngestError.reason)).all()
        coffee = s.scalar(select(Scene).where(Scene.name == "coffee"))
        members = set(s.scalars(select(Image.variant).where(Image.scene_id == coffee.id, Image.variant.is_not(None))))
    assert names == {p.name for p in demo_photos.iterdir()} - {"coffee_+1EV.png"}
    assert [(Path(p).name, r) for p, r in errors] == [("coffee_+1EV.png", "database-error")]
    assert members == {"-2EV", "-1EV", "+2EV"}


def test_a_per_file_exception_while_recording_fails_alone(sqlite_workspace, demo_photos, monkeypatch):
    import iea_data.workflows.catalog._ingest as ing

    real = ing.scan_file

    def broken_result(task):
        out = real(task)
        if out["path"].endswith("astronaut_-1EV.png"):
            out["image"]["width"] = object()  # a value no database driver can bind
        return out

    monkeypatch.setattr(ing, "scan_file", broken_result)
    report = ingest(sqlite_workspace, [demo_photos], workers=1, commit_every=64)
    assert report.n_new == 9
    assert [(Path(e.path).name, e.reason) for e in report.errors] == [("astronaut_-1EV.png", "database-error")]
    with reader(sqlite_workspace) as s:
        assert s.scalar(select(func.count()).select_from(Image)) == 9
        assert s.scalar(select(func.count()).select_from(IngestError)) == 1


def test_db_text_escapes_bad_bytes_and_nul():
    from iea_data.workflows.catalog._ingest import db_text, is_storable

    assert db_text(os.fsdecode(b"/x/caf\xe9.png")) == "/x/caf\\xe9.png"
    assert db_text("a\x00b") == "a\\x00b"
    assert db_text("ünï.png") == "ünï.png" and is_storable("ünï.png")
    assert not is_storable(os.fsdecode(b"\xff"))


# --------------------------------------------------------------------------- 2./3. crash recovery


@pytest.fixture(scope="module")
def bracket_photos(tmp_path_factory):
    """8 scenes x (reference + 4 EV variants), one duplicate copy and one bad file: 42 files."""
    import cv2

    d = tmp_path_factory.mktemp("brackets")
    rng = np.random.default_rng(11)
    for i in range(8):
        base = rng.integers(40, 200, size=(24, 32, 3), dtype=np.uint8)
        for tag, gain in (("", 1.0), ("_-2EV", 0.25), ("_-1EV", 0.5), ("_+1EV", 1.6), ("_+2EV", 2.4)):
            img = np.clip(base * gain, 0, 255).astype(np.uint8)
            cv2.imwrite(str(d / f"scene{i}{tag}.png"), img)
    (d / "dup").mkdir()
    shutil.copy(d / "scene3_-1EV.png", d / "dup" / "scene3_-1EV.png")
    (d / "broken.png").write_bytes(b"not an image at all\n")
    return d


def _catalog_state(ws) -> dict:
    """The catalog as content: images by sha256, paths, scenes, members, references, open errors."""
    with reader(ws) as s:
        images = {
            sha: (name, status, variant, ev, scene, width, height, luma_mean, thumb)
            for sha, name, status, variant, ev, scene, width, height, luma_mean, thumb in s.execute(
                select(
                    Image.sha256,
                    Image.name,
                    Image.status,
                    Image.variant,
                    Image.ev,
                    Scene.name,
                    Image.width,
                    Image.height,
                    Image.luma_mean,
                    Image.thumbnail,
                ).outerjoin(Scene, Scene.id == Image.scene_id)
            )
        }
        paths = dict(s.execute(select(ImagePath.path, Image.sha256).join(Image, Image.id == ImagePath.image_id)).all())
        scenes = dict(
            s.execute(select(Scene.name, Image.sha256).outerjoin(Image, Image.id == Scene.reference_image_id)).all()
        )
        errors = sorted((Path(e["path"]).name, e["reason"]) for e in list_errors(ws))
    return {"images": images, "paths": paths, "scenes": scenes, "errors": errors}


KILLABLE_CLI = """
import sys, time
import iea_data.workflows.catalog._ingest as ing
real_init = ing._Writer.__init__
def small_batches(self, *args, **kwargs):  # 3 results per transaction: many points to be killed between
    real_init(self, *args, **kwargs)
    self.commit_every = 3
ing._Writer.__init__ = small_batches
real_scan = ing.scan_file
def slow_scan(task):
    time.sleep(0.015)
    return real_scan(task)
ing.scan_file = slow_scan
from pipelines.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _killed_ingest(ws_root: Path, photos: Path, *, kill_at_images: int, extra_delay: float) -> bool:
    """Run ``iea ingest`` in a subprocess and ``kill -9`` it once the catalog holds ``kill_at_images``
    images (then ``extra_delay`` s more). Returns whether it was killed before it finished."""
    from iea_data.store.workspace import Workspace

    ws = Workspace.open(ws_root)
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_CLI, "-w", str(ws_root), "ingest", str(photos), "--workers", "1"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                with reader(ws) as s:
                    n = s.scalar(select(func.count()).select_from(Image))
            except Exception:  # the schema check or first run row may hold the lock for a moment
                n = -1
            if n >= kill_at_images:
                break
            time.sleep(0.01)
        time.sleep(extra_delay)
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    dispose_engines()
    return killed


@pytest.fixture(scope="module")
def uninterrupted_state(bracket_photos, tmp_path_factory):
    from iea_data.store.workspace import init_workspace

    old = os.environ.pop("IEA_DATABASE_URL", None)
    try:
        ws = init_workspace(tmp_path_factory.mktemp("whole") / "ws")
        report = ingest(ws, [bracket_photos], workers=1)
        assert report.n_new == 40 and report.n_duplicate == 1 and report.n_scenes == 8
        state = _catalog_state(ws)
        dispose_engines()
    finally:
        if old is not None:
            os.environ["IEA_DATABASE_URL"] = old
    return state


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kill_at_images=st.integers(min_value=0, max_value=40), extra_delay=st.floats(min_value=0, max_value=0.3))
def test_kill_9_at_any_point_then_rerun_equals_one_uninterrupted_run(
    bracket_photos, uninterrupted_state, monkeypatch, kill_at_images, extra_delay
):
    from iea_data.store.workspace import Workspace, init_workspace

    monkeypatch.delenv("IEA_DATABASE_URL", raising=False)
    tmp = Path(tempfile.mkdtemp(prefix="iea-kill-"))
    try:
        init_workspace(tmp / "ws")
        dispose_engines()
        killed = _killed_ingest(tmp / "ws", bracket_photos, kill_at_images=kill_at_images, extra_delay=extra_delay)
        ws = Workspace.open(tmp / "ws")
        rerun = ingest(ws, [bracket_photos], workers=1)
        assert _catalog_state(ws) == uninterrupted_state
        with reader(ws) as s:
            statuses = [st for (st,) in s.execute(select(IngestRun.status).order_by(IngestRun.id))]
        assert statuses[-1] == "done" and rerun.n_errors == 1
        if killed and len(statuses) == 2:
            assert statuses[0] in ("interrupted", "done")  # killed after it finished writing: done
        dispose_engines()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


SLOW_LIB_INGEST = """
import sys, time
from iea_data.store.workspace import Workspace
from iea_data.workflows.catalog import ingest
ws = Workspace.open(sys.argv[1])
ingest(ws, [sys.argv[2]], workers=1, commit_every=3, group=sys.argv[3],
       progress=lambda done, total: time.sleep(0.02))
"""


def test_killed_run_is_marked_interrupted_and_a_live_run_is_not(workspace, bracket_photos):
    from iea_data.workflows.catalog._run_lock import mark_interrupted_runs

    env = _env()
    if "IEA_DATABASE_URL" in os.environ:
        env["IEA_DATABASE_URL"] = os.environ["IEA_DATABASE_URL"]
    # the first run never reaches grouping: killed after 12 images; --group none in the second
    # copy keeps it alive (slowly) while another run starts
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_LIB_INGEST, str(workspace.root), str(bracket_photos), "filename"], env=env
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with reader(workspace) as s:
                if s.scalar(select(func.count()).select_from(Image)) >= 12:
                    break
            assert proc.poll() is None, "the ingest finished before it could be killed"
            time.sleep(0.02)
        # alive: another process's check leaves it running
        assert mark_interrupted_runs(workspace.engine()) == []
        with reader(workspace) as s:
            first = s.scalar(select(IngestRun).order_by(IngestRun.id))
            assert first.status == "running"
            first_id = first.id
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    with reader(workspace) as s:
        assert s.get(IngestRun, first_id).status == "running"  # nobody has looked yet
        assert s.scalar(select(func.count()).select_from(Scene)) == 0
    report = ingest(workspace, [bracket_photos], workers=1)
    assert report.n_scenes == 8  # grouping covers the images the killed run committed
    with reader(workspace) as s:
        run = s.get(IngestRun, first_id)
        assert run.status == "interrupted" and run.finished_at is not None
        assert (
            s.scalar(select(func.count()).select_from(Image).where(Image.scene_id.is_(None), Image.status == "ok")) == 0
        )
        assert s.scalar(select(func.count()).select_from(Scene).where(Scene.reference_image_id.is_(None))) == 0
        if workspace.database_url.startswith("sqlite"):
            assert s.execute(text("PRAGMA foreign_key_check")).all() == []


def test_a_finished_run_is_never_marked_interrupted(sqlite_workspace, demo_photos):
    from iea_data.workflows.catalog._run_lock import mark_interrupted_runs

    report = ingest(sqlite_workspace, [demo_photos], workers=1)
    assert mark_interrupted_runs(sqlite_workspace.engine()) == []
    with reader(sqlite_workspace) as s:
        assert s.get(IngestRun, report.run_id).status == "done"
    lock_dir = Path(str(sqlite_workspace.engine().url.database) + "-runs")
    assert list(lock_dir.iterdir()) == []  # a finished run leaves no lock file behind


# --------------------------------------------------------------------------- 4. memory


PEAK = r"""
import json, sys
from iea_data.workflows.catalog import _scan as scan
def hwm():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
scan.init_worker(10**9, 256, 256, sys.argv[2], frozenset())
base = hwm()
out = scan.scan_file((sys.argv[1], 0, 0))
width = out["image"]["width"] if "image" in out else None
print(json.dumps({"error": out.get("error"), "base": base, "peak": hwm(), "width": width}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc (Linux) to read a process's peak RSS")
@pytest.mark.parametrize("alpha", [False, True], ids=["rgb16", "rgba16"])
def test_one_worker_peak_memory_on_a_large_16bit_png_stays_within_the_stated_bound(tmp_path, alpha):
    from pipelines.benchmarks.ingest_memory import make_png

    side = 3000  # 51 MiB (RGB) / 69 MiB (RGBA) decoded: above the 16 MiB at which PNGs are decoded in strips
    png = make_png(tmp_path / "big.png", side, 16, alpha, level=1)
    res = subprocess.run(
        [sys.executable, "-c", PEAK, str(png), str(tmp_path / "objects")],
        env=_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    m = json.loads(res.stdout.strip().splitlines()[-1])
    assert m["error"] is None and m["width"] == side
    decoded = side * side * (4 if alpha else 3) * 2
    # README, "Ingest in detail": a large PNG is decoded in strips, so a worker adds at most the
    # file, 48 MiB and a float32 (height x 256) RGB intermediate, not the image: decoding it whole
    # (before) added 2 x the decoded size, and its float32 copy alone is 2 x (RGB) the decoded size
    added = m["peak"] - m["base"]
    bound = png.stat().st_size + 48 * 2**20 + side * 256 * 3 * 4
    assert added <= bound < 1.5 * decoded, (m, decoded, bound)


@settings(max_examples=60, deadline=None)
@given(
    height=st.integers(1, 40),
    width=st.integers(1, 40),
    channels=st.sampled_from([1, 3, 4]),
    depth=st.sampled_from([8, 16]),
    level=st.sampled_from([0, 1, 9]),
    rows=st.integers(1, 41),
    seed=st.integers(0, 2**16),
)
def test_png_strips_are_exactly_the_whole_decode(height, width, channels, depth, level, rows, seed):
    """Strips (each led by the row above, stored unfiltered) decode to exactly OpenCV's pixels of the whole file."""
    import cv2

    from iea_data.core.imaging import _preview

    rng = np.random.default_rng(seed)
    dtype, top = (np.uint16, 65535) if depth == 16 else (np.uint8, 255)
    ramp = np.linspace(0, top * 0.8, height * width).reshape(height, width, 1)  # smooth + noise: every filter type
    img = np.clip(ramp + rng.integers(0, top // 5, (height, width, channels)), 0, top).astype(dtype)
    img = img[..., 0] if channels == 1 else img
    data = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, level])[1].tobytes()
    whole = _preview._to_rgb_order(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED))
    colour = {1: 0, 3: 2, 4: 6}[channels]
    strips = list(_preview._png_strips(data, width, height, depth, colour, rows))
    assert all(s.shape[0] <= rows for s in strips)
    assert np.array_equal(np.concatenate(strips), whole)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_preview_in_strips_matches_the_whole_image_preview(monkeypatch, rng, channels):
    import cv2

    from iea_data.core.imaging import _preview, read_image_bytes

    img = rng.integers(0, 65536, size=(301, 203, channels), dtype=np.uint16)
    data = cv2.imencode(".png", img[..., 0] if channels == 1 else img)[1].tobytes()
    monkeypatch.setattr(_preview, "_PNG_STRIP_MIN_BYTES", 1 << 40)
    whole = read_image_bytes(data, max_side=64)
    monkeypatch.setattr(_preview, "_PNG_STRIP_MIN_BYTES", 0)
    monkeypatch.setattr(_preview, "_STRIP_BYTES", 203 * 12 * 7)  # 7 rows a strip
    calls = []
    real = _preview._png_strips
    monkeypatch.setattr(_preview, "_png_strips", lambda *a: calls.append(a) or real(*a))
    strips = read_image_bytes(data, max_side=64)
    assert calls, "the strip decoder was not used"
    assert strips.rgb.shape == whole.rgb.shape == (64, 43, 3) and strips.rgb.dtype == np.float32
    assert (strips.width, strips.height, strips.channels, strips.bit_depth, strips.format) == (
        whole.width,
        whole.height,
        whole.channels,
        whole.bit_depth,
        whole.format,
    )
    # the whole path rounds its area average to 16-bit levels, the strips keep float32
    assert np.abs(strips.rgb - whole.rgb).max() <= 0.5 / 65535 + 1e-6


def test_png_preview_in_strips_applies_the_exif_orientation(monkeypatch, rng):
    import io

    from PIL import Image as PILImage

    from iea_data.core.imaging import _preview, read_image_bytes

    img = rng.integers(0, 256, size=(120, 80, 3), dtype=np.uint8)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    PILImage.fromarray(img).save(buf, "PNG", exif=exif)
    data = buf.getvalue()
    monkeypatch.setattr(_preview, "_PNG_STRIP_MIN_BYTES", 1 << 40)
    whole = read_image_bytes(data, max_side=40)
    monkeypatch.setattr(_preview, "_PNG_STRIP_MIN_BYTES", 0)
    strips = read_image_bytes(data, max_side=40)
    assert (strips.width, strips.height) == (whole.width, whole.height) == (120, 80)
    assert strips.rgb.shape == whole.rgb.shape == (27, 40, 3)
    assert np.abs(strips.rgb - whole.rgb).max() <= 0.5 / 65535 + 1e-6
