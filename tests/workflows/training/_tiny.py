"""A tiny residual-map network and data for fast, deterministic training tests.

Also runnable as a script (used by the kill -9 and torchrun tests)::

    python _tiny.py OUT EPOCHS [--resume] [--kill-at STEP]
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np
import torch
from torch import nn

SIZE = (16, 16)


class TinyNet(nn.Module):
    """conv-ReLU-dropout-conv-tanh: dropout makes the result depend on the RNG state."""

    input_size = SIZE

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Dropout2d(0.25), nn.Conv2d(8, 1, 3, padding=1), nn.Tanh()
        )

    def forward(self, x):
        return self.net(x)


def tiny_items(n: int, seed: int):
    """Photos from scikit-image at 16x16 with EV variants; labels Y(photo) - Y(reference)."""
    import cv2
    import skimage.data

    from iea_data.core.imaging import apply_ev, luma

    rng = np.random.default_rng(seed)
    names = ["astronaut", "coffee", "chelsea", "rocket", "camera"]
    items = []
    for i in range(n):
        photo = getattr(skimage.data, names[i % len(names)])()
        if photo.ndim == 2:
            photo = np.stack([photo] * 3, -1)
        ref = (cv2.resize(photo, SIZE[::-1], interpolation=cv2.INTER_AREA) / 255.0).astype(np.float32)
        img = apply_ev(ref, float(rng.uniform(-2, 2)))
        res = (luma(img) - luma(ref)).astype(np.float32)
        items.append(
            {
                "image": torch.from_numpy(img.transpose(2, 0, 1).copy()),
                "residual": torch.from_numpy(res[None]),
                "score": float("nan"),
                "name": f"{names[i % len(names)]}_{i}",
                "scene": names[i % len(names)],
                "image_id": i,
            }
        )
    return items


def config(epochs: int):
    from iea_data.workflows.training import TrainConfig

    return TrainConfig(model="pieanet", init="scratch", epochs=epochs, batch_size=2, lr=5e-3, seed=3, device="cpu")


def run(out, epochs: int, *, resume: bool = False, kill_at: int | None = None):
    from iea_data.workflows.training import train

    torch.manual_seed(123)
    model = TinyNet()

    def progress(done, total):
        if kill_at is not None and done == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    return train(
        tiny_items(6, 0), tiny_items(3, 1), out, config=config(epochs), model=model, resume=resume, progress=progress
    )


if __name__ == "__main__":
    args = sys.argv[1:]
    kill = int(args[args.index("--kill-at") + 1]) if "--kill-at" in args else None
    torch.set_num_threads(1)
    result = run(args[0], int(args[1]), resume="--resume" in args, kill_at=kill)
    print(f"world={result.world_size} epochs={len(result.history)}")
