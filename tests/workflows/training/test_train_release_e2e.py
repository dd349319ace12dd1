"""End to end on a demo release: `iea train` fine-tunes P-IEANet (loss falls), the checkpoint loads with
create_model and serves `iea assess`, `iea prelabel --weights` and `iea benchmark`; the collate resizes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import run_iea, shared_path

from iea_data.workflows.training import collate_train

from ._tiny import tiny_items

REPO = Path(__file__).resolve().parents[3]


def iea(*args: str) -> subprocess.CompletedProcess:
    return run_iea(*args)


def test_collate_resizes_to_the_model_size():
    b = collate_train(tiny_items(2, 0), size=(32, 24))
    assert tuple(b["image"].shape) == (2, 3, 32, 24) and tuple(b["residual"].shape) == (2, 1, 32, 24)
    assert float(b["image"].min()) >= 0 and float(b["image"].max()) <= 1
    assert torch.isnan(b["score"]).all()
    with pytest.raises(ValueError, match=r"items\[0\]\['image'\] must be \(3, H, W\)"):
        collate_train(
            [{"image": np.zeros((4, 4), np.float32), "residual": np.zeros((1, 4, 4), np.float32)}], size=(4, 4)
        )


@pytest.fixture(scope="module")
def demo_release(tmp_path_factory):
    """Two demo scenes with one -1 EV variant each, refdiff labels, released as train / test (one image each)."""
    from iea_data.store import dispose_engines
    from iea_data.store.workspace import init_workspace
    from iea_data.workflows.demo import build_demo
    from iea_data.workflows.labels import prelabel_refdiff
    from iea_data.workflows.releases import build_release

    saved = os.environ.pop("IEA_DATABASE_URL", None)
    try:
        ws = init_workspace(tmp_path_factory.mktemp("e2e") / "ws")
        assert build_demo(ws, photos=("astronaut", "coffee"), evs=(-1.0,), workers=1).n_errors == 0
        assert prelabel_refdiff(ws).n_saved == 2
        rep = build_release(ws, "demo", "1.0.0", labels="refdiff", ratios=(0.5, 0.5), seed=0)
        assert rep.counts == {"train": 1, "test": 1}
        yield ws, Path(rep.path)
    finally:
        dispose_engines()
        if saved is not None:
            os.environ["IEA_DATABASE_URL"] = saved


@pytest.mark.slow
def test_train_on_demo_release_then_use_the_checkpoint(demo_release, tmp_path):
    shared_path("reference", "p-ieanet-official", "official_epoch2.pth")
    ws, release = demo_release
    out = tmp_path / "ft"
    r = iea(
        "train",
        "--release",
        str(release),
        "--val-split",
        "test",
        "--epochs",
        "2",
        "--batch-size",
        "1",
        "--lr",
        "2e-5",
        "--device",
        "cpu",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    log = pd.read_csv(out / "train_log.csv")
    assert list(log["epoch"]) == [1, 2] and log["train_loss"][1] < log["train_loss"][0]
    info = json.loads((out / "model.json").read_text())
    assert info["init"] == "official" and info["model_keys"] == "official" and "NeurIPS 2024" in info["source"]

    from iea_data.core.model import create_model, sha256_file

    assert info["sha256"] == sha256_file(out / "model.pth")
    tuned = create_model("pieanet", weights=out / "model.pth").state_dict()
    from_last = create_model("pieanet", weights=out / "last.pt").state_dict()
    assert all(torch.equal(tuned[k], from_last[k]) for k in tuned)

    # the checkpoint serves `iea assess` (the command passes --weights to this call) ...
    from iea_data.workflows.assess import assess

    photo = ws.root / "demo-photos" / "coffee_-1EV.png"
    tuned_rep = assess([photo], weights=str(out / "model.pth"), device="cpu", num_workers=0)
    assert not tuned_rep.errors and len(tuned_rep.results) == 1
    # ... `iea prelabel --weights`, with the checkpoint's own hash as the labels' provenance ...
    r = iea(
        "-w",
        str(ws.root),
        "prelabel",
        "--method",
        "model",
        "--weights",
        str(out / "model.pth"),
        "--scene",
        "coffee",
        "--device",
        "cpu",
        "--loader-workers",
        "0",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    from sqlalchemy import select

    from iea_data.store import Label

    with ws.session() as s:
        shas = set(s.scalars(select(Label.model_sha256).where(Label.kind == "model")))
    assert shas == {info["sha256"]}
    # ... and the benchmark, beside the baselines and the refdiff oracle (references from the release)
    from iea_data.workflows.benchmark import benchmark_release

    result, files = benchmark_release(
        release,
        "test",
        out=tmp_path / "bench",
        methods=["zero", "global_offset", "refdiff", f"checkpoint:{out / 'model.pth'}"],
    )
    table = result.table.set_index("method")
    assert list(table.index) == ["zero", "global_offset", "refdiff", "checkpoint:model.pth"]
    assert table.loc["refdiff", "mae"] < 0.25 * table.loc["zero", "mae"]
    assert "checkpoint:model.pth" in files["html"].read_text()


def test_benchmark_cli_list_and_errors(demo_release, tmp_path):
    from iea_data.core.errors import IeaError
    from iea_data.workflows.benchmark import benchmark_release
    from iea_data.workflows.training import TrainConfig, train_release

    r = iea("benchmark", "--list")
    assert r.returncode == 0 and "clahe" in r.stdout and "refdiff" in r.stdout and "srcc" in r.stdout
    _, release = demo_release
    r = iea("benchmark", "--release", str(release), "--split", "test", "--out", str(tmp_path / "b"), "--methods", "zer")
    assert r.returncode == 1 and "Did you mean 'zero'" in r.stderr and "Traceback" not in r.stderr
    # no split named: val, else valid, else test (this release has train and test)
    r = iea(
        "benchmark",
        "--release",
        str(release),
        "--out",
        str(tmp_path / "b"),
        "--methods",
        "zero,refdiff",
        "--resize",
        "64",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    summary = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert summary["n_images"] == 1 and [row["method"] for row in summary["table"]] == ["zero", "refdiff"]
    assert (tmp_path / "b" / "report.html").is_file()
    # a release exported only in the released training layout is read in that format
    from iea_data.workflows.releases import build_release

    ws, _ = demo_release
    official = Path(
        build_release(
            ws, "demo-official", "1.0.0", labels="refdiff", ratios=(0.5, 0.5), seed=0, formats=("official",)
        ).path
    )
    assert not (official / "native" / "images.parquet").exists()
    result, _ = benchmark_release(official, "test", methods=["zero", "refdiff"], out=tmp_path / "o", resize=64)
    assert result.n_images == 1 and result.method_info["refdiff"]["status"] == "skipped"
    with pytest.raises(IeaError, match="has none of the splits val, valid; it has train, test"):
        train_release(release, tmp_path / "t", config=TrainConfig(epochs=1))
    with pytest.raises(IeaError, match="does not exist"):
        benchmark_release(tmp_path / "nope", "val", methods=["zero"], out=tmp_path / "c")
