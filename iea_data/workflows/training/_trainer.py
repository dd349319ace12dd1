"""The training loop: L1 on residual maps, validation metrics each epoch, resumable, DDP-aware."""

from __future__ import annotations

import csv
import functools
import io
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from iea_data.core.errors import IeaError

from ._checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_save,
    atomic_write_text,
    capture_rng,
    load_model_state,
    model_state_for_save,
    read_checkpoint,
    restore_rng,
    write_weights,
)
from ._config import TrainConfig
from ._process_group import close_process_group
from ._step import amp_dtype, train_step

__all__ = ["TrainResult", "train", "train_release", "collate_train", "validate", "TRAIN_FILES"]

log = logging.getLogger(__name__)

Progress = Optional[Callable[[int, int], None]]

#: Files a run writes in its output folder.
TRAIN_FILES = {
    "checkpoint": "last.pt",
    "weights": "model.pth",
    "best": "best.pth",
    "log": "train_log.csv",
}


@dataclass
class TrainResult:
    """What a training run did.

    Attributes
    ----------
    out : Path
        Output folder.
    history : list of dict
        One row per epoch: ``epoch, train_loss, val_l1, val_<metric>..., lr, seconds, images_per_s``.
    best_epoch : int
        Epoch with the lowest validation L1 (``best.pth``).
    resumed_from : int
        Epochs already done when this call started (0 for a fresh run).
    files : dict
        kind -> path (see :data:`TRAIN_FILES`).
    world_size : int
        Processes that trained (1 without DDP).
    """

    out: Path
    history: list[dict[str, Any]]
    best_epoch: int
    resumed_from: int
    files: dict[str, Path]
    world_size: int = 1


# --------------------------------------------------------------------------- data


def _tensor(x, name: str) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return t.to(torch.float32)


def collate_train(items: Sequence[dict], *, size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Stack release items into network batches at the model's input size.

    Parameters
    ----------
    items : sequence of dict
        ``image`` float32 (3, H, W) in [0, 1], ``residual`` float32 (1, H, W) in [-1, 1]
        (tensors or arrays), optional ``score``.
    size : tuple of int
        ``(height, width)`` of the model input; other sizes are resized bilinearly with
        antialias (as :func:`iea_data.core.model.to_batch`), images then clamped to [0, 1].

    Returns
    -------
    dict
        ``image`` (N, 3, h, w), ``residual`` (N, 1, h, w), ``score`` (N,) float32 (NaN if none).

    Examples
    --------
    >>> b = collate_train([{"image": np.zeros((3, 4, 4), np.float32),
    ...                     "residual": np.zeros((1, 4, 4), np.float32)}], size=(2, 2))
    >>> tuple(b["image"].shape), tuple(b["residual"].shape)
    ((1, 3, 2, 2), (1, 1, 2, 2))
    """
    imgs, res, scores = [], [], []
    for i, it in enumerate(items):
        x, r = _tensor(it["image"], "image"), _tensor(it["residual"], "residual")
        if x.dim() != 3 or x.shape[0] != 3:
            raise ValueError(f"items[{i}]['image'] must be (3, H, W); got {tuple(x.shape)}")
        if r.dim() == 2:
            r = r[None]
        if r.dim() != 3 or r.shape[0] != 1:
            raise ValueError(f"items[{i}]['residual'] must be (1, H, W); got {tuple(r.shape)}")
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0].clamp_(0, 1)
        if tuple(r.shape[-2:]) != tuple(size):
            r = F.interpolate(r[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
        imgs.append(x)
        res.append(r.clamp(-1, 1))
        s = it.get("score")
        scores.append(float("nan") if s is None else float(s))
    return {
        "image": torch.stack(imgs),
        "residual": torch.stack(res),
        "score": torch.tensor(scores, dtype=torch.float32),
    }


# --------------------------------------------------------------------------- distributed


@dataclass
class _Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0


def _dist_setup(device: torch.device) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    here = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        here = True
    return _Dist(dist.get_world_size(), dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), here)


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise IeaError("device 'cuda' was asked for but torch sees no CUDA device; use --device cpu")
        if name == "cuda":
            name = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return torch.device(name)


# --------------------------------------------------------------------------- model


def _build_model(config: TrainConfig, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    from iea_data.core.model import create_model, get_model_cfg, official_weights_path, sha256_file

    cfg = get_model_cfg(config.model)
    meta = {"model": config.model, "source": cfg.source, "license": cfg.license}
    torch.manual_seed(config.seed)
    if config.init == "official":
        model = create_model(config.model, weights="official")
        meta.update(init="official", init_sha256=cfg.sha256)
        meta["init_path"] = str(official_weights_path())
    elif config.init == "scratch":
        model = create_model(config.model, weights=None)
        meta.update(init="scratch", init_sha256=None)
    else:
        path = Path(config.init).expanduser()
        if not path.is_file():
            raise IeaError(f"--init {config.init!r}: not 'official', 'scratch' or an existing checkpoint file")
        model = create_model(config.model, weights=str(path))
        meta.update(init=str(path), init_sha256=sha256_file(path))
    meta["input_size"] = list(cfg.input_size)
    return model.to(device), meta


# --------------------------------------------------------------------------- validation


def validate(
    model: nn.Module,
    loader,
    *,
    device: torch.device,
    metric_names: Sequence[str],
    amp: bool = False,
) -> dict[str, float]:
    """L1 and metrics of ``model`` on a validation loader.

    Returns
    -------
    dict
        ``val_l1`` and ``val_<metric>`` for each name (map metrics: mean over images; score
        metrics: on ``mean_abs`` image scores against the dataset's scores, or the
        ``mean_abs`` score of the true map when some image has none). A score metric that
        is undefined (constant scores, one image) is NaN.
    """
    from iea_data.core.metrics import MetricInputError, create
    from iea_data.workflows.benchmark import mean_abs_score

    mets = [create(n) for n in metric_names]
    was_training = model.training
    model.eval()
    preds, targets, scores = [], [], []
    total, n = 0.0, 0
    with torch.inference_mode(), torch.autocast(device_type=device.type, dtype=amp_dtype(device), enabled=amp):
        for batch in loader:
            x = batch["image"].to(device)
            y = batch["residual"].to(device)
            p = model(x).float()
            total += float((p - y).abs().mean(dim=(1, 2, 3)).sum())
            n += x.shape[0]
            preds.append(p.clamp(-1, 1)[:, 0].cpu().numpy().astype(np.float64))
            targets.append(y[:, 0].cpu().numpy().astype(np.float64))
            scores.append(batch["score"].numpy())
    model.train(was_training)
    if n == 0:
        raise IeaError("the validation split is empty")
    pred, target, score = np.concatenate(preds), np.concatenate(targets), np.concatenate(scores).astype(np.float64)
    out = {"val_l1": total / n}
    pred_s = np.array([mean_abs_score(m) for m in pred])
    true_s = score if np.all(np.isfinite(score)) else np.array([mean_abs_score(m) for m in target])
    for m in mets:
        try:
            if m.cfg.kind == "map":
                out[f"val_{m.name}"] = m.aggregate(m(pred, target))
            else:
                out[f"val_{m.name}"] = float(m(pred_s, true_s))
        except MetricInputError as exc:
            log.info("validation %s undefined: %s", m.name, exc)
            out[f"val_{m.name}"] = float("nan")
    return out


# --------------------------------------------------------------------------- loop


def _write_log(history: list[dict[str, Any]], path: Path) -> None:
    if not history:
        return
    cols = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for row in history:
        w.writerow(row)
    atomic_write_text(buf.getvalue(), path)


def _tensorboard(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:
        return None
    return SummaryWriter(log_dir=str(out / "tensorboard"))


def train(
    train_data,
    val_data,
    out: Union[str, os.PathLike],
    *,
    config: TrainConfig = TrainConfig(),
    model: Optional[nn.Module] = None,
    resume: bool = False,
    progress: Progress = None,
) -> TrainResult:
    """Train a residual-map model with L1 loss; validate, log and checkpoint every epoch.

    Parameters
    ----------
    train_data, val_data : map-style dataset of dict
        Items as :class:`iea_data.workflows.releases.ReleaseDataset` returns them: ``image``
        float32 (3, H, W) in [0, 1], ``residual`` float32 (1, H, W) in [-1, 1]
        (project sign ``Y(photo) - Y(ideal)``), ``score``. Resized to the model's
        input size by :func:`collate_train` when they differ.
    out : path-like
        Output folder: ``last.pt``, ``model.pth`` (+ ``model.json``), ``best.pth``
        (+ ``best.json``), ``train_log.csv`` (and ``tensorboard/`` when installed).
    config : TrainConfig, optional
        Model, initialisation (``"official"`` by default: fine-tuning), epochs, batch size,
        learning rate, AMP, seed, device.
    model : torch.nn.Module, optional
        A module to train instead of building ``config.model`` (it must map (N, 3, h, w)
        images in [0, 1] to (N, 1, h, w) residuals; batches use the size of its
        ``input_size`` attribute, else the items' size).
    resume : bool, optional
        Continue from ``out/last.pt``: model, optimiser, scheduler, scaler, epoch and RNG
        states are restored, so a run killed at any point (even ``kill -9``) and resumed
        ends with the same weights as an uninterrupted one (same machine, threads and
        DataLoader settings). Without a checkpoint the run starts fresh (logged).
    progress : callable, optional
        ``progress(done_steps, total_steps)`` after optimiser steps (main process only).

    Returns
    -------
    TrainResult

    Raises
    ------
    IeaError
        ``out`` already holds a run and ``resume`` is False; the checkpoint's configuration
        differs from ``config``; an empty split; a bad ``init``.

    Notes
    -----
    Loss: mean absolute error between predicted and labelled residual maps, as in the
    released P-IEANet training code. Adam with a cosine learning-rate schedule stepped per
    optimiser step. Each epoch's order is a permutation seeded by ``seed + epoch``
    (``DistributedSampler``), so it does not depend on what ran before. P-IEANet trains
    with its fast path (each image computed on its own, as at inference; the released
    code lets the transformers attend across a batch); its transformers' dropout does not
    apply there.

    Under ``torchrun`` (``WORLD_SIZE`` > 1) the model is wrapped in
    ``DistributedDataParallel`` (gloo on CPU, NCCL on CUDA), each process reads its share
    of every epoch, and only rank 0 validates and writes files.

    Examples
    --------
    >>> import tempfile
    >>> items = [{"image": torch.rand(3, 8, 8), "residual": torch.zeros(1, 8, 8)} for _ in range(2)]
    >>> net = nn.Sequential(nn.Conv2d(3, 1, 3, padding=1), nn.Tanh())
    >>> cfg = TrainConfig(epochs=2, batch_size=2, device="cpu", val_metrics=("mae",))
    >>> with tempfile.TemporaryDirectory() as d:
    ...     res = train(items, items, d, config=cfg, model=net)
    ...     sorted(p.name for p in Path(d).iterdir() if p.suffix in (".pt", ".pth", ".csv"))
    ['best.pth', 'last.pt', 'model.pth', 'train_log.csv']
    >>> [row["epoch"] for row in res.history]
    [1, 2]
    """
    from torch.utils.data import DataLoader, DistributedSampler

    out = Path(out)
    files = {k: out / v for k, v in TRAIN_FILES.items()}
    device = _resolve_device(config.device)
    dist_info = _dist_setup(device)
    if dist_info.world > 1 and device.type == "cuda":
        device = torch.device(f"cuda:{dist_info.local_rank}")
        torch.cuda.set_device(device)
    try:
        return _train(
            train_data,
            val_data,
            out,
            files,
            config,
            model,
            resume,
            progress,
            device,
            dist_info,
            DataLoader,
            DistributedSampler,
        )
    finally:
        if dist_info.initialised_here and not close_process_group():
            log.warning("the gloo worker threads were still busy 5 s after training; the process may abort on exit")


def _train(
    train_data, val_data, out, files, config, model, resume, progress, device, d, DataLoader, DistributedSampler
):
    if len(train_data) == 0:
        raise IeaError("the training split is empty")
    if len(val_data) == 0:
        raise IeaError("the validation split is empty")
    ckpt = None
    if files["checkpoint"].exists():
        if not resume:
            raise IeaError(
                f"{out} already holds a training run ({files['checkpoint'].name}); pass --resume to "
                "continue it, or choose another --out"
            )
        ckpt = read_checkpoint(files["checkpoint"])
        saved = TrainConfig.from_dict(ckpt["config"])
        diff = saved.differences(config)
        if diff:
            k, (was, now) = next(iter(diff.items()))
            raise IeaError(
                f"cannot resume {out}: the run was started with {k}={was!r}, now {k}={now!r}; "
                "resume with the same settings (or start a new --out)"
            )
    elif resume:
        log.warning("no checkpoint in %s: starting a fresh run", out)
    if d.main:
        out.mkdir(parents=True, exist_ok=True)

    if model is None:
        model, meta = _build_model(config, device)
        from iea_data.core.model import get_model_cfg

        size = tuple(get_model_cfg(config.model).input_size)
    else:
        model = model.to(device)
        meta = {"model": type(model).__name__, "source": "module passed to train()", "license": "", "init": "given"}
        size = tuple(getattr(model, "input_size", ())) or tuple(np.asarray(train_data[0]["image"]).shape[-2:])
    model.train()

    collate = functools.partial(collate_train, size=size)  # picklable for spawned DataLoader workers

    sampler = DistributedSampler(
        train_data, num_replicas=d.world, rank=d.rank, shuffle=True, seed=config.seed, drop_last=False
    )
    loader = DataLoader(
        train_data, batch_size=config.batch_size, sampler=sampler, num_workers=config.num_workers, collate_fn=collate
    )
    val_loader = DataLoader(
        val_data, batch_size=config.batch_size, shuffle=False, num_workers=config.num_workers, collate_fn=collate
    )
    steps_per_epoch = len(loader)
    total_steps = steps_per_epoch * config.epochs

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    use_scaler = config.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_scaler)

    start_epoch, global_step, history, best = 0, 0, [], {"epoch": 0, "val_l1": math.inf}
    if ckpt is not None:
        load_model_state(model, ckpt)
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        scaler.load_state_dict(ckpt["scaler"])
        start_epoch, global_step = int(ckpt["epoch"]), int(ckpt["global_step"])
        history, best = list(ckpt["history"]), dict(ckpt["best"])
        restore_rng(ckpt["rng"])
        meta = dict(ckpt.get("meta", meta))
        log.info("resuming %s after epoch %d (step %d)", out, start_epoch, global_step)

    net = model
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = DDP(model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True)

    tb = _tensorboard(out) if d.main else None
    if progress is not None and d.main:
        progress(global_step, total_steps)
    for epoch in range(start_epoch, config.epochs):
        sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        loss_sum = torch.zeros(2, dtype=torch.float64)
        for batch in loader:
            loss = train_step(net, batch, optimizer, device=device, amp=config.amp, scaler=scaler, scheduler=scheduler)
            global_step += 1
            n = batch["image"].shape[0]
            loss_sum += torch.tensor([float(loss) * n, n], dtype=torch.float64)
            if progress is not None and d.main and (global_step % config.log_every == 0 or global_step == total_steps):
                progress(global_step, total_steps)
        if d.world > 1:
            import torch.distributed as dist

            dist.all_reduce(loss_sum)
        seconds = time.perf_counter() - t0
        if d.main:
            val = validate(model, val_loader, device=device, metric_names=config.val_metrics, amp=config.amp)
            row = {
                "epoch": epoch + 1,
                "train_loss": float(loss_sum[0] / loss_sum[1]),
                **val,
                "lr": float(optimizer.param_groups[0]["lr"]),
                "seconds": round(seconds, 3),
                "images_per_s": round(float(loss_sum[1]) / seconds, 4) if seconds > 0 else None,
            }
            history.append(row)
            if val["val_l1"] < best["val_l1"]:
                best = {"epoch": epoch + 1, "val_l1": val["val_l1"]}
                write_weights(
                    model, files["best"], {**meta, "config": config.to_dict(), "epoch": epoch + 1, "metrics": val}
                )
            state, keys = model_state_for_save(model)
            atomic_save(
                {
                    "format": CHECKPOINT_FORMAT,
                    "model": state,
                    "model_keys": keys,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "epoch": epoch + 1,
                    "global_step": global_step,
                    "rng": capture_rng(),
                    "config": config.to_dict(),
                    "history": history,
                    "best": best,
                    "meta": json.loads(json.dumps({**meta, "torch": str(torch.__version__)}, default=str)),
                },
                files["checkpoint"],
            )
            _write_log(history, files["log"])
            if tb is not None:
                for k, v in row.items():
                    if isinstance(v, float) and k != "epoch":
                        tb.add_scalar(k, v, epoch + 1)
            log.info(
                "epoch %d/%d: train L1 %.5f, val L1 %.5f", epoch + 1, config.epochs, row["train_loss"], val["val_l1"]
            )
        if d.world > 1:
            import torch.distributed as dist

            dist.barrier()
    if d.main:
        final = {**meta, "config": config.to_dict(), "epoch": config.epochs, "metrics": history[-1] if history else {}}
        write_weights(model, files["weights"], final)
        if tb is not None:
            tb.close()
    if d.world > 1:  # every process returns once the weights are written
        import torch.distributed as dist

        dist.barrier()
    return TrainResult(
        out=out,
        history=history,
        best_epoch=int(best["epoch"]),
        resumed_from=start_epoch,
        files=files,
        world_size=d.world,
    )


def train_release(
    release: Union[str, os.PathLike],
    out: Union[str, os.PathLike],
    *,
    train_split: str = "train",
    val_split: Optional[str] = None,
    config: TrainConfig = TrainConfig(),
    resume: bool = False,
    progress: Progress = None,
) -> TrainResult:
    """Train on a built release's splits: the one call behind ``iea train``.

    Parameters
    ----------
    release : path-like
        A built release folder.
    out : path-like
        Output folder (see :func:`train`).
    train_split : str
        Split to train on.
    val_split : str, optional
        Split to validate on; default ``val`` (planned releases), else ``valid`` (the
        released IEA40K manifests).
    config : TrainConfig
    resume : bool
    progress : callable, optional
        See :func:`train`.

    Returns
    -------
    TrainResult

    Examples
    --------
    >>> result = train_release("ws/releases/demo/1.0.0", "runs/ft1", config=TrainConfig(epochs=2))  # doctest: +SKIP
    >>> result.files["weights"]                                                                    # doctest: +SKIP
    PosixPath('runs/ft1/model.pth')
    """
    from iea_data.core.model import get_model_cfg
    from iea_data.workflows.benchmark import default_split, open_release_split

    val_split = default_split(release, val_split, ("val", "valid"))
    side = get_model_cfg(config.model).input_size[0]
    tr = open_release_split(release, train_split, resize=side)
    va = open_release_split(release, val_split, resize=side)
    return train(tr, va, out, config=config, resume=resume, progress=progress)
