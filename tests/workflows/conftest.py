"""Fixtures for the annotation workflow: users of every role and a small hand-built catalog."""

from __future__ import annotations

import numpy as np
import pytest
from argon2 import PasswordHasher

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def fast_hashes(monkeypatch):
    """Cheap argon2 parameters so that tests can create many users (the algorithm is the same)."""
    import iea_data.workflows.users._accounts as accounts

    monkeypatch.setattr(accounts, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    monkeypatch.setattr(accounts, "_dummy_hash", None)


@pytest.fixture
def people(workspace):
    """admin, rev (reviewer), rev2 (reviewer), ann1, ann2 (annotators) as UserInfo, by name."""
    from iea_data.workflows.users import add_user

    roles = {"admin": "admin", "rev": "reviewer", "rev2": "reviewer", "ann1": "annotator", "ann2": "annotator"}
    with workspace.session() as s:
        return {name: add_user(s, name, role=role, password=PASSWORD) for name, role in roles.items()}


H, W = 6, 8


def model_map(i: int) -> np.ndarray:
    return np.full((H, W), -0.1 * (i % 5), np.float32)


def refdiff_of(i: int) -> np.ndarray:
    return np.full((H, W), 0.05 * (i % 3), np.float32)


@pytest.fixture
def catalog(workspace):
    """One scene ``s`` with a reference and three variants (H x W images), each with a model and a refdiff label.

    Returns a dict: ``scene_id``, ``ref_id``, ``images`` (variant ids), ``model`` and ``refdiff``
    (image id -> label id).
    """
    from iea_data.store import Image, Scene
    from iea_data.workflows.labels import save_label

    with workspace.session() as s, s.begin():
        scene = Scene(name="s")
        s.add(scene)
        s.flush()
        ref = Image(name="s.png", status="ok", width=W, height=H, scene_id=scene.id)
        variants = [
            Image(name=f"s_N{i}.png", status="ok", width=W, height=H, scene_id=scene.id, variant=f"N{i}")
            for i in range(1, 4)
        ]
        s.add_all([ref, *variants])
        s.flush()
        scene.reference_image_id = ref.id
    out = {"scene_id": scene.id, "ref_id": ref.id, "images": [v.id for v in variants], "model": {}, "refdiff": {}}
    with workspace.session() as s:
        for i, image_id in enumerate(out["images"]):
            out["model"][image_id] = save_label(
                s, workspace.objects, model_map(i), image_id=image_id, kind="model", model_name="pieanet"
            ).id
            out["refdiff"][image_id] = save_label(
                s, workspace.objects, refdiff_of(i), image_id=image_id, kind="refdiff"
            ).id
    return out
