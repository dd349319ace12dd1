"""Training: losses logged, checkpoints whole, resume (after an exception or kill -9) equals an uninterrupted run.

Also a DDP smoke test."""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from iea_data.core.errors import IeaError
from iea_data.workflows.training import TrainConfig, read_checkpoint, train

from ._tiny import TinyNet, config, run, tiny_items

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
EPOCHS = 3


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


def _weights(path):
    return torch.load(path, weights_only=True)


def _same_weights(a, b):
    wa, wb = _weights(a), _weights(b)
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _losses(out):
    with open(Path(out) / "train_log.csv") as fh:
        return [(r["epoch"], r["train_loss"], r["val_l1"], r["val_ssim"]) for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("uninterrupted")
    result = run(out, EPOCHS)
    return out, result


def test_run_writes_logs_checkpoints_and_metrics(reference_run):
    out, result = reference_run
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    for name in ("last.pt", "model.pth", "model.json", "best.pth", "best.json", "train_log.csv"):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.tmp"))
    ckpt = read_checkpoint(out / "last.pt")
    assert ckpt["epoch"] == EPOCHS and ckpt["global_step"] == EPOCHS * 3
    assert set(ckpt) >= {"model", "optimizer", "scheduler", "scaler", "rng", "config", "history", "meta"}
    row = result.history[-1]
    for m in (
        "val_l1",
        "val_mae",
        "val_mse",
        "val_psnr",
        "val_ssim",
        "val_pixel_acc",
        "val_miou",
        "val_f1_macro",
        "val_srcc",
        "val_plcc",
        "train_loss",
        "lr",
    ):
        assert m in row
    assert row["val_l1"] == pytest.approx(row["val_mae"], abs=1e-5)  # the same quantity, two code paths
    assert row["lr"] == pytest.approx(0.0, abs=1e-12)  # the cosine schedule ends at 0
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_resume_after_an_exception_equals_uninterrupted(reference_run, tmp_path):
    ref_out, _ = reference_run
    torch.set_num_threads(1)
    out = tmp_path / "run"

    class Boom(Exception):
        pass

    def crash(done, total):
        if done == 5:  # in epoch 2 (3 steps per epoch), after epoch 1's checkpoint
            raise Boom

    torch.manual_seed(123)
    with pytest.raises(Boom):
        train(tiny_items(6, 0), tiny_items(3, 1), out, config=config(EPOCHS), model=TinyNet(), progress=crash)
    assert read_checkpoint(out / "last.pt")["epoch"] == 1
    result = run(out, EPOCHS, resume=True)
    assert result.resumed_from == 1
    assert _same_weights(out / "model.pth", ref_out / "model.pth")
    assert _losses(out) == _losses(ref_out)


def test_resume_after_kill_9_equals_uninterrupted(reference_run, tmp_path):
    ref_out, _ = reference_run
    out = tmp_path / "killed"
    script = HERE / "_tiny.py"
    proc = subprocess.run(
        [sys.executable, str(script), str(out), str(EPOCHS), "--kill-at", "7"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert read_checkpoint(out / "last.pt")["epoch"] == 2
    assert not (out / "model.pth").exists()
    proc = subprocess.run(
        [sys.executable, str(script), str(out), str(EPOCHS), "--resume"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _same_weights(out / "model.pth", ref_out / "model.pth")
    assert _losses(out) == _losses(ref_out)


def test_existing_run_and_changed_settings_are_refused(reference_run, tmp_path):
    ref_out, _ = reference_run
    out = tmp_path / "copy"
    shutil.copytree(ref_out, out)
    with pytest.raises(IeaError, match="already holds a training run.*--resume"):
        train(tiny_items(4, 0), tiny_items(2, 1), out, config=config(EPOCHS), model=TinyNet())
    changed = TrainConfig(**{**config(EPOCHS).to_dict(), "lr": 1e-3, "val_metrics": tuple(config(1).val_metrics)})
    with pytest.raises(IeaError, match="lr=0.005.*lr=0.001"):
        train(tiny_items(4, 0), tiny_items(2, 1), out, config=changed, model=TinyNet(), resume=True)
    with pytest.raises(IeaError, match="not an iea training checkpoint"):
        (tmp_path / "x.pt").write_bytes(b"")
        torch.save({"a": torch.zeros(1)}, tmp_path / "x.pt")
        read_checkpoint(tmp_path / "x.pt")


def test_empty_splits_and_bad_config():
    with pytest.raises(IeaError, match="training split is empty"):
        train([], tiny_items(2, 1), "/nonexistent/never", config=config(1), model=TinyNet())
    with pytest.raises(ValueError, match="`epochs` must be an integer >= 1; got 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="`lr`"):
        TrainConfig(lr=-1)
    with pytest.raises(ValueError, match="`device`"):
        TrainConfig(device="tpu")


def test_ddp_two_cpu_processes_under_torchrun(tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(HERE / "_tiny.py"),
        str(out),
        "2",
    ]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert proc.stdout.count("world=2 epochs=2") == 1  # rank 0 has the history
    ckpt = read_checkpoint(out / "last.pt")
    # 6 items over 2 processes with batch 2: 2 steps per epoch (each process 3 items)
    assert ckpt["epoch"] == 2 and ckpt["global_step"] == 4
    assert len(ckpt["history"]) == 2 and all(h["train_loss"] > 0 for h in ckpt["history"])
    assert not any(k.startswith("module.") for k in ckpt["model"])


def test_amp_on_cpu_runs_bfloat16_without_a_scaler(tmp_path):
    cfg = TrainConfig(**{**config(1).to_dict(), "amp": True, "val_metrics": ("mae",)})
    torch.manual_seed(0)
    result = train(tiny_items(4, 0), tiny_items(2, 1), tmp_path / "amp", config=cfg, model=TinyNet())
    ckpt = read_checkpoint(tmp_path / "amp" / "last.pt")
    assert ckpt["config"]["amp"] is True and not ckpt["scaler"]  # the gradient scaler is for float16 on CUDA only
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["val_mae"]) for h in result.history)


def test_loader_workers_do_not_change_the_result(reference_run, tmp_path):
    """num_workers is a resume-free setting: two worker processes give the same weights."""
    ref_out, _ = reference_run
    torch.set_num_threads(1)
    cfg = TrainConfig(**{**config(EPOCHS).to_dict(), "num_workers": 2, "val_metrics": tuple(config(1).val_metrics)})
    torch.manual_seed(123)
    train(tiny_items(6, 0), tiny_items(3, 1), tmp_path / "w", config=cfg, model=TinyNet())
    assert _same_weights(tmp_path / "w" / "model.pth", ref_out / "model.pth")
