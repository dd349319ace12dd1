"""``ReleaseDataset``: a torch ``Dataset`` over one split of a built release."""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from iea_data.core.imaging import read_image, resize_image, resize_map
from iea_data.core.residuals import official_map_to_residual

from ._errors import ReleaseError
from ._files import MANIFEST_NAME, resolve_file

__all__ = ["ReleaseDataset"]

log = logging.getLogger(__name__)
_FORMATS = ("native", "official")


class ReleaseDataset(Dataset):
    """One split of a release as a torch ``Dataset`` of dicts.

    Parameters
    ----------
    path : path-like
        The release folder (``WORKSPACE/releases/NAME/X.Y.Z``, holding ``manifest.json``).
    split : str
        A split of the release (``train``, ``val``, ``test``, or the imported names).
    resize : None, int or (int, int), optional
        ``None``: the image at full size and the residual resized to it; ``256`` (or
        ``(h, w)``): both resized to 256 x 256 as the released network takes them (area
        when shrinking, bilinear when growing).
    format : {"native", "official"}
        Read the native tables and float32 maps, or the released training layout (CSV +
        ``maps/*.npy`` in the released units, converted back with
        :func:`official_map_to_residual`).
    labelled_only : bool
        Leave out images without a file or without a residual map (default True: every
        item then has both; ``skipped`` counts the rest). False keeps them with a NaN
        residual (and raises on a missing file when the item is read).
    workspace : Workspace, optional
        Catalog used to resolve files the release holds by reference (default: the
        workspace the release lives in).

    Items
    -----
    dict with ``image`` float32 tensor (3, H, W) in [0, 1]; ``residual`` float32 tensor
    (1, H, W) in [-1, 1], ``Y(photo) - Y(ideal)`` (negative = too dark); ``score`` float
    (NaN if none); ``image_id`` int (catalog id, -1 if unknown); ``name`` str; ``scene``
    str ("" if none).

    Examples
    --------
    >>> ds = ReleaseDataset("ws/releases/iea-demo/1.0.0", "train", resize=256)   # doctest: +SKIP
    >>> item = ds[0]; item["image"].shape, item["residual"].shape                  # doctest: +SKIP
    (torch.Size([3, 256, 256]), torch.Size([1, 256, 256]))
    >>> loader = torch.utils.data.DataLoader(ds, batch_size=8, num_workers=2)      # doctest: +SKIP
    """

    def __init__(
        self, path, split: str, *, resize=None, format: str = "native", labelled_only: bool = True, workspace=None
    ):
        self.path = Path(path)
        if not (self.path / MANIFEST_NAME).is_file():
            raise ReleaseError(f"{self.path} is not a release (no {MANIFEST_NAME}); pass WORKSPACE/releases/NAME/X.Y.Z")
        if format not in _FORMATS:
            raise ValueError(f"format must be one of {', '.join(_FORMATS)}, got {format!r}")
        if resize is None:
            self.size = None
        elif isinstance(resize, int) and not isinstance(resize, bool) and resize > 0:
            self.size = (resize, resize)
        elif (
            isinstance(resize, (tuple, list)) and len(resize) == 2 and all(isinstance(v, int) and v > 0 for v in resize)
        ):
            self.size = (int(resize[0]), int(resize[1]))
        else:
            raise ValueError(f"resize must be None, a positive int (e.g. 256) or an (h, w) pair, got {resize!r}")
        self.split, self.format, self.workspace = split, format, workspace
        rows = self._native_rows() if format == "native" else self._official_rows()
        if not rows and not self._has_split():
            raise ReleaseError(
                f"release {self.path} has no split {split!r}; splits: {', '.join(self._splits()) or 'none'}"
            )
        keep = [r for r in rows if r["file"] and r["map"]] if labelled_only else rows
        self.skipped = len(rows) - len(keep)
        if self.skipped:
            log.info(
                "%s/%s: %d of %d images left out (no file or no residual map)",
                self.path,
                split,
                self.skipped,
                len(rows),
            )
        self.rows = keep

    # -- index building
    def _manifest_counts(self) -> dict:
        import json

        return json.loads((self.path / MANIFEST_NAME).read_text(encoding="utf-8"))["splits"]["counts"]

    def _splits(self) -> list[str]:
        return list(self._manifest_counts())

    def _has_split(self) -> bool:
        return self.split in self._manifest_counts()

    def _native_rows(self) -> list[dict]:
        import pyarrow.parquet as pq

        table = self.path / "native" / "images.parquet"
        if not table.is_file():
            raise ReleaseError(
                f"release {self.path} has no native format (native/images.parquet); try format='official'"
            )
        t = pq.read_table(
            table, columns=["image_id", "name", "scene", "split", "position", "score", "file", "map_file"]
        )
        rows = [r for r in t.to_pylist() if r["split"] == self.split]
        rows.sort(key=lambda r: r["position"])
        return [
            {
                "image_id": r["image_id"],
                "name": r["name"],
                "scene": r["scene"] or "",
                "score": r["score"],
                "file": r["file"],
                "map": r["map_file"],
            }
            for r in rows
        ]

    def _official_rows(self) -> list[dict]:
        csv_path = self.path / "official" / f"{self.split}.csv"
        if not csv_path.is_file():
            if not (self.path / "official").is_dir():
                raise ReleaseError(f"release {self.path} has no official format (official/); try format='native'")
            return []
        ids: dict[str, int] = {}
        native = self.path / "native" / "images.parquet"
        if native.is_file():
            import pyarrow.parquet as pq

            ids = {r["name"]: r["image_id"] for r in pq.read_table(native, columns=["name", "image_id"]).to_pylist()}
        rows = []
        with open(csv_path, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                stem = os.path.splitext(r["img_id"])[0]
                img_rel = f"official/images/{r['img_id']}"
                map_rel = f"official/maps/{stem}.npy"
                rows.append(
                    {
                        "image_id": ids.get(r["img_id"], -1),
                        "name": r["img_id"],
                        "scene": os.path.splitext(r["ref_id"])[0],
                        "score": float(r["score"]),
                        "file": img_rel if self._exists(img_rel) else None,
                        "map": map_rel if (self.path / map_rel).is_file() else None,
                    }
                )
        return rows

    def _exists(self, rel: str) -> bool:
        if (self.path / rel).is_file():
            return True
        from ._files import _manifest_cached

        return rel in _manifest_cached(str(self.path.resolve()))

    # -- items
    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        if not -len(self.rows) <= index < len(self.rows):
            raise IndexError(f"index {index} out of range for {len(self.rows)} items")
        r = self.rows[index]
        if r["file"] is None:
            raise ReleaseError(f"{r['name']} has no image file in release {self.path}")
        rgb = read_image(resolve_file(self.path, r["file"], workspace=self.workspace)).rgb
        if self.size is not None:
            rgb = resize_image(rgb, self.size)
        shape = rgb.shape[:2]
        if r["map"] is None:
            residual = np.full(shape, np.nan, np.float32)
        else:
            arr = np.load(self.path / r["map"], allow_pickle=False)
            residual = (
                official_map_to_residual(arr) if self.format == "official" else arr.astype(np.float32, copy=False)
            )
            if residual.shape != shape:
                residual = resize_map(residual, shape)
        score = r["score"]
        return {
            "image": torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))),
            "residual": torch.from_numpy(np.ascontiguousarray(residual[None])),
            "score": float("nan")
            if score is None or (isinstance(score, float) and math.isnan(score))
            else float(score),
            "image_id": int(r["image_id"]),
            "name": r["name"],
            "scene": r["scene"],
        }
