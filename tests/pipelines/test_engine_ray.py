"""``--engine ray``: the same catalog rows, labels and scores as the local engine, and Ray's faults survived.

One local Ray runtime (``ray.init(num_cpus=2)``) is shared by the whole module and shut down
at its end; every engine call joins it (``ray_runtime`` uses a runtime that is already up).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import PG_SKIP_REASON, PG_URL, REPO, _drop_pg, _pg_database, shared_path
from sqlalchemy import func, select
from workflows.conftest import reader  # tests/ is on sys.path (its conftest.py)

from iea_data.core.errors import IeaError
from iea_data.store import Image, ImagePath, IngestError, Label, Scene, dispose_engines
from iea_data.store.workspace import init_workspace
from iea_data.workflows.catalog import ingest
from iea_data.workflows.labels import load_label_map, prelabel_model, prelabel_refdiff

ray = pytest.importorskip("ray", reason="Ray is the optional extra 'ray' (pip install 'iea-toolkit[ray]')")

from pipelines import engines  # noqa: E402
from pipelines.engines import _ray_runtime  # noqa: E402
from pipelines.engines._ray_journal import CRASH_ON_ENV  # noqa: E402

CRASH_MARK = "kills-its-reader"

IMAGE_FACTS = (
    "sha256",
    "status",
    "width",
    "height",
    "channels",
    "bit_depth",
    "format",
    "variant",
    "ev",
    "luma_mean",
    "luma_p50",
    "frac_black",
    "thumbnail",
    "file_size",
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """The module's Ray runtime; model actors write their pid into ``cluster.pid_dir`` (the kill test)."""
    pid_dir = tmp_path_factory.mktemp("actor-pids")
    old = os.environ.get(engines.ACTOR_PID_DIR_ENV)
    old_path = os.environ.get("PYTHONPATH")
    old_crash = os.environ.get(CRASH_ON_ENV)
    os.environ[engines.ACTOR_PID_DIR_ENV] = str(pid_dir)  # inherited by the raylet, hence by the actors
    os.environ[CRASH_ON_ENV] = CRASH_MARK  # a Ray task kills its own process on a file with this in its name
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(
        num_cpus=2,
        object_store_memory=300 << 20,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
    )
    try:
        with engines.ray_runtime() as c:
            yield c, pid_dir
    finally:
        ray.shutdown()
        for key, value in ((engines.ACTOR_PID_DIR_ENV, old), ("PYTHONPATH", old_path), (CRASH_ON_ENV, old_crash)):
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture
def photos(tmp_path, demo_photos):
    """The demo photos plus one file that is not an image."""
    import shutil

    d = tmp_path / "photos"
    shutil.copytree(demo_photos, d)
    (d / "broken.png").write_bytes(b"this is not a PNG")
    return d


def _ws(path: Path):
    os.environ.pop("IEA_DATABASE_URL", None)
    return init_workspace(path)


def _catalog(ws) -> dict:
    """The catalog rows an ingest makes, without ids and times."""
    with reader(ws) as s:
        images = {
            name: tuple(getattr(img, f) for f in IMAGE_FACTS) for img, name in s.execute(select(Image, Image.name))
        }
        paths = sorted(os.path.basename(p) for p in s.scalars(select(ImagePath.path)))
        scenes = sorted(
            (sc.name, s.scalar(select(Image.name).where(Image.id == sc.reference_image_id)))
            for sc in s.scalars(select(Scene))
        )
        errors = sorted((os.path.basename(e.path), e.reason) for e in s.scalars(select(IngestError)))
    return {"images": images, "paths": paths, "scenes": scenes, "errors": errors}


def _labels(ws, kind: str) -> dict:
    with reader(ws) as s:
        return {
            name: lab
            for lab, name in s.execute(
                select(Label, Image.name).join(Image, Image.id == Label.image_id).where(Label.kind == kind)
            )
        }


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(IeaError, match=r"pip install 'iea-toolkit\[ray\]'"):
        engines.require_ray()


def test_actors_decode_themselves_where_their_threads_take_every_cpu(monkeypatch):
    monkeypatch.delenv(engines.DECODE_IN_ACTOR_ENV, raising=False)
    one, two = engines.plan_actors(1, 2, 0), engines.plan_actors(None, 2, 0)
    assert (one.decode_in_actor, one.torch_threads, one.num_cpus, one.decode_cpus) == (True, 2, 2.0, 0.0)
    assert (two.actors, two.decode_in_actor, two.torch_threads, two.num_cpus) == (2, True, 1, 1.0)
    assert "decoding in the actors" in one.describe()
    # the CPU default: actors of at most 4 threads, at least 2 a node, no more than the memory holds
    big = engines.plan_actors(None, 64, 0, nodes=2)
    assert (big.actors, big.torch_threads, big.num_cpus) == (16, 4, 4.0)  # 32 CPUs a node: 8 actors each
    tight = engines.plan_actors(None, 64, 0, nodes=2, memory=2 * 2.5 * 2**30)
    assert (tight.actors, tight.torch_threads, tight.num_cpus) == (4, 16, 16.0)
    assert engines.plan_actors(None, 1, 0).actors == 1
    per_node = engines.plan_actors(4, 64, 0, nodes=4)  # threads per node, not per cluster
    assert (per_node.torch_threads, per_node.num_cpus, per_node.decode_in_actor) == (16, 16.0, True)
    gpu = engines.plan_actors(None, 64, 8, nodes=8)
    assert (gpu.actors, gpu.num_gpus, gpu.decode_in_actor, gpu.decode_cpus) == (8, 1, False, 1.0)
    # forced: separate decoding tasks keep a quarter CPU each beside the actors
    tasks = engines.plan_actors(1, 2, 0, decode_in_actor=False)
    assert (tasks.decode_in_actor, tasks.num_cpus, tasks.decode_cpus) == (False, 1.5, 0.25)
    assert "decoding in separate tasks" in tasks.describe()
    monkeypatch.setenv(engines.DECODE_IN_ACTOR_ENV, "0")
    assert not engines.plan_actors(None, 2, 0).decode_in_actor
    monkeypatch.setenv(engines.DECODE_IN_ACTOR_ENV, "1")
    assert engines.plan_actors(None, 64, 8).decode_in_actor
    monkeypatch.setenv(engines.DECODE_IN_ACTOR_ENV, "yes")
    with pytest.raises(ValueError, match=engines.DECODE_IN_ACTOR_ENV):
        engines.plan_actors(None, 2, 0)


def test_decoding_hashes_the_files_only_where_asked(demo_photos):
    import hashlib

    from pipelines.engines._ray_model import decode_batch

    paths = sorted(str(p) for p in demo_photos.glob("*.png"))[:2]
    batch = {"i": np.arange(len(paths)), "path": np.asarray(paths, dtype=object)}
    kw = {"max_side": 64, "input_size": (32, 32)}
    hashed, plain = decode_batch(batch, hash_files=True, **kw), decode_batch(batch, hash_files=False, **kw)
    assert list(hashed["sha256"]) == [hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths]
    assert list(plain["sha256"]) == ["", ""]  # pre-labels: nothing reads the hash
    np.testing.assert_array_equal(hashed["x"], plain["x"])
    assert plain["x"].shape == (2, 3, 32, 32) and list(plain["error"]) == ["", ""]


def test_the_storage_check_refuses_a_workspace_the_driver_does_not_see_written(cluster, tmp_path, monkeypatch):
    c, _ = cluster
    ws = _ws(tmp_path / "ws")
    assert engines.check_shared_storage(ws.root) == 1  # the real probe passes on one machine
    assert not list(ws.root.glob(".iea-storage-probe-*"))  # and is removed
    # the driver reads another disk than the node wrote on (what a workspace on local disks gives)
    monkeypatch.setattr(_ray_runtime, "read_probe", lambda root, token: None)
    with pytest.raises(engines.StorageError, match="not on storage every Ray node sees"):
        engines.prelabel_ray(ws, c, method="refdiff")
    with pytest.raises(engines.StorageError):
        engines.ingest_ray(ws, [tmp_path], c)
    with reader(ws) as s:  # refused before anything was written
        assert s.scalar(select(func.count()).select_from(Image)) == 0


@pytest.mark.slow
def test_ingest_and_refdiff_equal_the_local_engine_and_resume(cluster, tmp_path, photos):
    c, _ = cluster
    local, remote = _ws(tmp_path / "local"), _ws(tmp_path / "ray")
    r_local = ingest(local, [photos], workers=1)
    r_ray = engines.ingest_ray(remote, [photos], c, batch_size=4)
    assert (r_ray.n_new, r_ray.n_errors, r_ray.n_scenes) == (r_local.n_new, r_local.n_errors, r_local.n_scenes)
    assert (r_ray.n_new, r_ray.n_errors) == (10, 1)  # the bad file is a row with its reason, the rest landed
    assert _catalog(remote) == _catalog(local)
    assert engines.ingest_ray(remote, [photos], c).n_unchanged == 10  # resumable as today

    p_local = prelabel_refdiff(local)
    p_ray = engines.prelabel_ray(remote, c, method="refdiff", batch_size=3)
    assert (p_ray.n_selected, p_ray.n_saved, p_ray.errors) == (p_local.n_selected, p_local.n_saved, []) == (8, 8, [])
    lab_local, lab_ray = _labels(local, "refdiff"), _labels(remote, "refdiff")
    assert lab_local.keys() == lab_ray.keys()
    for name, lab in lab_ray.items():
        ref = lab_local[name]
        assert lab.map_object == ref.map_object  # the same float16 bytes: computed by the same function
        assert (lab.height, lab.width, lab.mean, lab.revision) == (ref.height, ref.width, ref.mean, 1)
        params = json.loads(lab.params)
        assert params.pop("engine") == "ray" and params.pop("ray_nodes") == 1
        assert params.keys() == json.loads(ref.params).keys()
    again = engines.prelabel_ray(remote, c, method="refdiff")
    assert (again.n_saved, again.n_skipped) == (0, 8)


@pytest.mark.slow
@pytest.mark.postgres
def test_ingest_and_refdiff_on_postgresql(cluster, tmp_path, photos, monkeypatch):
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    c, _ = cluster
    local = _ws(tmp_path / "local")
    ingest(local, [photos], workers=1)
    prelabel_refdiff(local)
    url, name, admin = _pg_database()
    try:
        monkeypatch.setenv("IEA_DATABASE_URL", url)
        remote = init_workspace(tmp_path / "pg")
        assert remote.database_url.startswith("postgresql")
        assert engines.ingest_ray(remote, [photos], c).n_new == 10
        assert engines.prelabel_ray(remote, c, method="refdiff").n_saved == 8
        assert _catalog(remote) == _catalog(local)
        got = {n: lab.map_object for n, lab in _labels(remote, "refdiff").items()}
        assert got == {n: lab.map_object for n, lab in _labels(local, "refdiff").items()}
    finally:
        monkeypatch.delenv("IEA_DATABASE_URL")
        dispose_engines()
        _drop_pg(name, admin)


@pytest.mark.slow
@pytest.mark.reference
def test_model_prelabels_equal_local_and_survive_a_killed_actor(cluster, tmp_path, demo_photos):
    shared_path("reference", "p-ieanet-official", "official_epoch2.pth")
    c, pid_dir = cluster
    local, remote = _ws(tmp_path / "local"), _ws(tmp_path / "ray")
    for ws in (local, remote):
        ingest(ws, [demo_photos], workers=1)
    rep_local = prelabel_model(local, scene="coffee", num_workers=1, batch_size=2, precision="fp32")
    killed: list[int] = []

    def kill_the_actor(done: int, total: int) -> None:
        if done and not killed:  # after the first committed batch: the next ones are in flight
            pids = [int(p.name) for p in pid_dir.iterdir()]
            assert pids, "the model actor wrote no pid file"
            killed.append(pids[-1])
            os.kill(pids[-1], signal.SIGKILL)

    rep_ray = engines.prelabel_ray(
        remote, c, method="model", scene="coffee", batch_size=2, precision="fp32", progress=kill_the_actor
    )
    assert killed
    assert (rep_ray.n_saved, rep_ray.errors) == (rep_local.n_saved, []) == (5, [])
    with reader(remote) as s:  # no lost and no duplicated label
        per_image = s.execute(select(Label.image_id, func.count()).group_by(Label.image_id)).all()
    assert len(per_image) == 5 and {n for _, n in per_image} == {1}
    lab_local, lab_ray = _labels(local, "model"), _labels(remote, "model")
    for name, lab in lab_ray.items():
        ref = lab_local[name]
        assert (lab.height, lab.width, lab.model_sha256) == (ref.height, ref.width, ref.model_sha256)
        diff = np.abs(load_label_map(remote.objects, lab) - load_label_map(local.objects, ref)).max()
        assert diff <= 2e-3, (name, diff)  # within float16 storage rounding
        params, ref_params = json.loads(lab.params), json.loads(ref.params)
        ray_params = tuple(params.pop(k) for k in ("engine", "ray_actors", "ray_nodes", "ray_decode"))
        assert ray_params == ("ray", 2, 1, "actor")  # 2 CPUs: two actors of one thread, each decodes itself
        assert params == ref_params  # the local engine's provenance, plus the engine and cluster size


@pytest.mark.slow
@pytest.mark.reference
@pytest.mark.parametrize("decode", ["actor", "tasks"])
def test_assess_rows_equal_local_scores_and_a_bad_file_is_a_row(cluster, tmp_path, photos, decode, monkeypatch):
    import pandas as pd

    from iea_data.workflows.assess import assess

    shared_path("reference", "p-ieanet-official", "official_epoch2.pth")
    c, _ = cluster
    monkeypatch.setenv(engines.DECODE_IN_ACTOR_ENV, "1" if decode == "actor" else "0")
    rules = ["strict_landscape", "portrait_first"]
    files = sorted(str(p) for p in photos.iterdir() if p.name.startswith(("coffee", "broken")))
    local = assess(files, rule_bases=rules, num_workers=1, batch_size=3)
    rep = engines.assess_ray(files, c, out=tmp_path / "scores", rule_bases=rules, batch_size=3)
    assert f"decoding in {'the actors' if decode == 'actor' else 'separate tasks'}" in rep.engine
    df = pd.read_parquet(tmp_path / "scores")
    assert len(df) == 6 and sorted(df["path"]) == files
    bad = df[df["path"].str.endswith("broken.png")].iloc[0]
    assert "not an image" in bad["error"] and pd.isna(bad["strict_landscape.score"])
    assert [p for p, _ in rep.errors] == [p for p, _ in local.errors]
    by_path = {r["path"]: r for r in rep.scored}
    for res in local.results:
        row = by_path[res.path]
        assert row["sha256"] and row["mean_abs"] == pytest.approx(res.mean_abs, abs=1e-6)
        for s in res.scores:
            assert (row[f"{s.rule_base}.score"], row[f"{s.rule_base}.level"]) == (s.score, s.level)


@pytest.mark.slow
def test_a_killed_driver_leaves_whole_rows_and_a_rerun_finishes(cluster, tmp_path):
    from iea_data.workflows.demo import write_demo_photos

    photos = tmp_path / "photos"
    photos.mkdir()
    write_demo_photos(photos)  # every demo scene: more variants than one batch
    ws = _ws(tmp_path / "ws")
    ingest(ws, [photos], workers=1)
    address = ray.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": str(REPO), "IEA_HOME": str(ws.root)}
    env.pop("IEA_DATABASE_URL", None)
    cmd = [sys.executable, "-m", "pipelines.cli", "prelabel", "--method", "refdiff", "--engine", "ray"]
    cmd += ["--ray-address", address, "--batch-size", "1"]
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    n = 0
    while time.monotonic() < deadline and driver.poll() is None:
        with reader(ws) as s:
            n = s.scalar(select(func.count()).select_from(Label))
        if n:
            break
        time.sleep(0.05)
    assert driver.poll() is None, f"the driver ended before it could be killed: {driver.stderr.read().decode()[-2000:]}"
    driver.send_signal(signal.SIGKILL)
    driver.wait(30)
    variants = len([p for p in photos.iterdir() if "EV" in p.name])
    with reader(ws) as s:
        first = s.scalar(select(func.count()).select_from(Label))
    assert 0 < first < variants
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{variants - first} saved" in rerun.stdout and f"{first} already labelled" in rerun.stdout
    with reader(ws) as s:
        per_image = s.execute(select(Label.image_id, func.count()).group_by(Label.image_id)).all()
        whole = s.scalar(select(func.count()).select_from(Label).where(Label.map_object.is_not(None)))
    assert len(per_image) == variants and {k for _, k in per_image} == {1} and whole == variants


def _address() -> str:
    return ray.get_runtime_context().gcs_address


@pytest.mark.slow
def test_cli_ingest_on_ray_names_the_bad_file_and_exits_3(cluster, tmp_path, photos):
    from conftest import run_iea

    ws = tmp_path / "ws"
    assert run_iea("init", str(ws)).returncode == 0
    r = run_iea("--workspace", str(ws), "ingest", str(photos), "--engine", "ray", "--ray-address", _address())
    assert r.returncode == 3, r.stderr
    assert "broken.png" in r.stderr and "ray: the Ray cluster at" in r.stderr
    assert "Ingest run" in r.stdout and "core_worker" not in r.stderr  # Ray's own logs stay out
    bad = run_iea("--workspace", str(ws), "ingest", str(photos), "--engine", "spark")
    assert bad.returncode == 1 and "--engine must be local or ray" in bad.stderr


@pytest.mark.slow
@pytest.mark.reference
def test_cli_assess_on_ray_writes_a_parquet_dataset(cluster, tmp_path, photos):
    import pyarrow.dataset as pads
    from conftest import run_iea

    shared_path("reference", "p-ieanet-official", "official_epoch2.pth")
    files = [str(photos / "coffee.png"), str(photos / "broken.png")]
    out, maps = tmp_path / "scores", tmp_path / "maps"
    args = ("--rules", "strict_landscape", "--engine", "ray", "--ray-address", _address(), "--heatmaps", str(maps))
    r = run_iea("assess", *files, *args, "--out", str(out))
    assert r.returncode == 3, r.stderr  # one file failed: its row says why, the other is scored
    assert "1 assessed" in r.stdout and "Parquet dataset" in r.stdout
    table = pads.dataset(str(out)).to_table().to_pylist()
    assert sorted(row["path"] for row in table) == sorted(files)
    bad, good = sorted(table, key=lambda row: row["path"])
    assert bad["error"] and bad["heatmap"] is None and not good["error"]
    assert Path(good["heatmap"]).parent == maps and Path(good["heatmap"]).name.startswith("coffee-")
    assert Path(good["heatmap"]).stat().st_size > 1000


def test_a_file_that_kills_its_reader_every_time_is_an_error_row_not_an_endless_retry(cluster, tmp_path, photos):
    """The journal names the file a dead task held; Ray's retry skips it (ingest and assess), the rest lands."""
    import shutil

    import pandas as pd

    c, _ = cluster
    good = sorted(photos.glob("coffee*.png"))[0]
    shutil.copy(good, photos / f"{CRASH_MARK}.png")  # a valid photo: only the hook kills its reader
    ws = _ws(tmp_path / "ws")
    rep = engines.ingest_ray(ws, [photos], c, batch_size=4)
    errors = dict(_catalog(ws)["errors"])
    assert errors == {"broken.png": "not-an-image", f"{CRASH_MARK}.png": "worker-crashed"}
    assert (rep.n_new, rep.n_errors) == (10, 2)  # every other file of the dead task's batch landed
    assert not (ws.root / ".iea-ray-journal").exists()

    shared_path("reference", "p-ieanet-official", "official_epoch2.pth")
    files = [str(good), str(photos / f"{CRASH_MARK}.png")]
    rep = engines.assess_ray(files, c, out=tmp_path / "scores", rule_bases=["strict_landscape"], batch_size=2)
    df = pd.read_parquet(tmp_path / "scores").set_index("path")
    assert df.loc[files[1], "error"].startswith("worker-crashed:")
    assert df.loc[files[0], "error"] == "" and not pd.isna(df.loc[files[0], "strict_landscape.score"])
    assert not [p for p in os.listdir(tmp_path / "scores") if p.startswith(".")]  # the journal is gone
