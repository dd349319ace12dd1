"""A tiny release-like dataset from scikit-image photos: exposure variants with reference-difference labels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from iea_data.core.imaging import apply_ev, luma


def make_items(
    photos=("astronaut", "coffee", "chelsea"), evs=(-1.5, 1.0), size=(48, 64), *, scores=False, references=True
):
    """Items as ReleaseDataset returns them: image (3,H,W), residual (1,H,W), score, names."""
    items = []
    for name in photos:
        ref = cv2.resize(getattr(skimage.data, name)(), (size[1], size[0]), interpolation=cv2.INTER_AREA)
        ref = (ref / 255.0).astype(np.float32)
        for ev in evs:
            img = apply_ev(ref, ev)
            res = np.clip(luma(img) - luma(ref), -1, 1).astype(np.float32)
            item = {
                "image": img.transpose(2, 0, 1).copy(),
                "residual": res[None],
                "image_id": len(items),
                "name": f"{name}_{ev:+g}EV",
                "scene": name,
                "score": float(10 - 2 * abs(ev) + 0.1 * len(items)) if scores else float("nan"),
            }
            if references:
                item["reference"] = ref.transpose(2, 0, 1).copy()
            items.append(item)
    return items


@pytest.fixture(scope="session")
def items():
    return make_items()
