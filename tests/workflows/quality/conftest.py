"""Fixtures for the quality workflows: a catalog of small images and experts with known bias and noise."""

from __future__ import annotations

import numpy as np
import pytest

H, W = 6, 8


def add_images(ws, n: int, *, prefix: str = "img") -> list[int]:
    """``n`` decoded-looking images (H x W, status ok) named ``<prefix>_<i>.png``; their ids."""
    from iea_data.store import Image

    with ws.unit() as uow:
        rows = [
            Image(name=f"{prefix}_{i:03d}.png", sha256=f"{prefix}{i:060d}"[:64], status="ok", width=W, height=H)
            for i in range(n)
        ]
        uow.session.add_all(rows)
        uow.session.flush()
        return [r.id for r in rows]


def truth_map(i: int) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W]
    return (0.4 * np.sin(0.7 * xx + 0.3 * i) * np.cos(0.5 * yy)).astype(np.float32)


def expert_map(i: int, bias: float, sd: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(truth_map(i) + bias + rng.normal(0, sd, (H, W)), -1, 1).astype(np.float32)


def save_expert(ws, user_id: int, image_id: int, residual: np.ndarray, status: str = "accepted") -> int:
    from iea_data.workflows.labels import chain_head, chain_key, save_label

    with ws.unit() as uow:
        head = chain_head(uow, image_id, chain_key("annotation", author_id=user_id))
        return save_label(
            uow,
            residual,
            image_id=image_id,
            kind="annotation",
            author_id=user_id,
            parent_id=head.id if head else None,
            params={"n_strokes": 3},
            status=status,
        ).id


@pytest.fixture
def qws(sqlite_workspace):
    return sqlite_workspace
