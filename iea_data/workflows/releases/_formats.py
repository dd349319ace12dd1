"""Writers of the release formats: native, official (released training layout), WebDataset, Hugging Face.

Every writer receives the samples one at a time (with the residual map computed once) and
records each file it writes in a :class:`FileLog`, which becomes the manifest's file list.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import tarfile
from collections import defaultdict
from pathlib import Path
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from iea_data.core.residuals import residual_to_official_map
from iea_data.workflows.catalog import format_score

from ._errors import ReleaseError
from ._files import place_file, sha256_file
from ._gather import Sample, SceneRef
from ._schema import release_arrow_schema

__all__ = [
    "FORMATS",
    "DEFAULT_SHARD_BYTES",
    "FileLog",
    "NativeWriter",
    "OfficialWriter",
    "WebDatasetWriter",
    "HfWriter",
    "npy_bytes",
]

log = logging.getLogger(__name__)

FORMATS = ("native", "official", "webdataset", "hf")
#: Largest WebDataset shard (bytes) unless ``shard_bytes`` says otherwise.
DEFAULT_SHARD_BYTES = 256 * 1024 * 1024
HF_MAP_SIZE = (256, 256)


def npy_bytes(arr: np.ndarray) -> bytes:
    """``arr`` as ``.npy`` bytes (no pickles)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


class FileLog:
    """Every file of a release being built, with size, sha256 and how it got there."""

    def __init__(self, root: Path):
        self.root = root
        self._root = str(root)
        self._dirs: set[str] = set()
        self.files: dict[str, dict] = {}
        self.references: dict[str, dict] = {}
        self.modes: dict[str, int] = defaultdict(int)

    def write(self, rel: str, data: bytes) -> str:
        path = os.path.join(self._root, rel)
        parent = os.path.dirname(path)
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)
        with open(path, "wb") as fh:
            fh.write(data)
        self.files[rel] = {
            "path": rel,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "mode": "written",
        }
        return rel

    def add_existing(self, rel: str, mode: str = "written") -> None:
        size, sha = sha256_file(self.root / rel)
        self.files[rel] = {"path": rel, "size": size, "sha256": sha, "mode": mode}

    def place(self, rel: str, src: str, *, sha256: str, copy: bool, image: str) -> str:
        """Hard link (or copy) ``src``, the workspace's stored copy of an image, to ``rel``; record a reference
        when linking is refused."""
        if rel in self.files or rel in self.references:
            return self.files.get(rel, {}).get("mode") or "reference"
        size = os.stat(src).st_size
        mode = place_file(src, self.root / rel, copy=copy)
        self.modes[mode] += 1
        if mode == "reference":
            self.references[rel] = {"path": rel, "size": size, "sha256": sha256, "image": image}
        else:
            self.files[rel] = {"path": rel, "size": size, "sha256": sha256, "mode": mode}
        return mode


def _write_table(flog: FileLog, rel: str, table: str, rows: list[dict]) -> None:
    schema = release_arrow_schema(table)
    arrays = [pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema]
    path = flog.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)
    flog.add_existing(rel)


class NativeWriter:
    """``native/``: Parquet tables (images, scenes, labels, splits, agreement), images, float32 maps."""

    def __init__(self, flog: FileLog, *, copy: bool, policy: str):
        self.flog, self.copy, self.policy = flog, copy, policy
        self.images: list[dict] = []
        self.labels: list[dict] = []
        self.splits: list[dict] = []
        self.agreement: list[dict] = []
        self.scene_splits: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, smp: Sample, residual: Optional[np.ndarray], map_npy: Optional[bytes], info: dict) -> None:
        file_rel, mode = None, "none"
        if smp.path is not None and smp.sha256:
            file_rel = f"native/images/{smp.key}{smp.ext}"
            mode = self.flog.place(file_rel, smp.path, sha256=smp.sha256, copy=self.copy, image=smp.name)
        map_rel = None
        if residual is not None:
            map_rel = f"native/maps/{smp.key}.npy"
            self.flog.write(map_rel, map_npy)
            self.labels.append(
                {
                    "image_key": smp.key,
                    "policy": self.policy,
                    "method": info["method"],
                    "map_file": map_rel,
                    "map_sha256": self.flog.files[map_rel]["sha256"],
                    "height": residual.shape[0],
                    "width": residual.shape[1],
                    **info["stats"],
                    "label_ids": json.dumps([lab.id for lab in smp.labels]),
                }
            )
        if info.get("agreement"):
            self.agreement.append({"image_key": smp.key, **info["agreement"], "method": info["method"]})
        m = smp.meta
        self.images.append(
            {
                "image_key": smp.key,
                "image_id": smp.image_id,
                "name": smp.name,
                "sha256": smp.sha256,
                "split": smp.split,
                "position": smp.position,
                "scene": smp.scene,
                "variant": m.get("variant"),
                "ev": m.get("ev"),
                "width": m.get("width"),
                "height": m.get("height"),
                "format": m.get("format"),
                "camera": m.get("camera"),
                "score": smp.score,
                "score_source": smp.score_source,
                "file": file_rel,
                "file_mode": mode,
                "map_file": map_rel,
                "luma_mean": m.get("luma_mean"),
                "frac_black": m.get("frac_black"),
                "frac_white": m.get("frac_white"),
            }
        )
        self.splits.append({"split": smp.split, "image_key": smp.key, "position": smp.position})
        if smp.scene is not None:
            self.scene_splits[(smp.scene, smp.split)] += 1

    def close(self, scenes: dict[str, SceneRef]) -> None:
        scene_rows = []
        for (name, split), n in sorted(self.scene_splits.items()):
            ref = scenes.get(name) or SceneRef(name)
            ref_rel = None
            if ref.reference_path and ref.reference_sha256:
                ext = os.path.splitext(ref.reference_path)[1].lower()
                ref_rel = f"native/images/{ref.reference_sha256}{ext}"
                self.flog.place(
                    ref_rel, ref.reference_path, sha256=ref.reference_sha256, copy=self.copy, image=ref.reference
                )
            scene_rows.append(
                {
                    "scene": name,
                    "split": split,
                    "n_images": n,
                    "reference": ref.reference,
                    "reference_sha256": ref.reference_sha256,
                    "reference_file": ref_rel,
                }
            )
        for table, rows in (
            ("images", self.images),
            ("labels", self.labels),
            ("splits", self.splits),
            ("agreement", self.agreement),
            ("scenes", scene_rows),
        ):
            _write_table(self.flog, f"native/{table}.parquet", table, rows)


class OfficialWriter:
    """``official/``: the released P-IEANet training layout.

    Per split ``<split>.csv`` (``img_id,ref_id,score`` in split order, scores written as the
    released CSVs write them), ``images/<img_id>``, ``maps/<img_id stem>.npy`` (float32
    256 x 256, ``-residual * 255``; see :func:`residual_to_official_map`) and
    ``references/<ref_id>``. An image without a score gets ``nan`` (the released code
    loads the score but does not use it); one without a scene reference is left out.
    """

    def __init__(self, flog: FileLog, *, copy: bool, scenes: dict[str, SceneRef]):
        self.flog, self.copy, self.scenes = flog, copy, scenes
        self.rows: dict[str, list] = defaultdict(list)
        self.names: dict[str, str] = {}
        self.skipped: list[tuple[str, str]] = []
        self.no_map = 0
        self.no_score = 0  # written as "nan" (the released code loads the score but does not use it)
        self.refs_done: set[str] = set()

    def add(self, smp: Sample, residual: Optional[np.ndarray]) -> None:
        ref = self.scenes.get(smp.scene) if smp.scene else None
        if ref is None or ref.reference is None:
            self.skipped.append((smp.name, "no scene reference (ref_id); left out of the official CSV"))
            return
        ident = smp.sha256 or f"name:{smp.name}"
        if self.names.setdefault(smp.name, ident) != ident:
            self.skipped.append(
                (smp.name, "another image of the release has this file name; left out of the official layout")
            )
            return
        if smp.score is None:
            self.no_score += 1
        self.rows[smp.split].append((smp.name, ref.reference, "nan" if smp.score is None else format_score(smp.score)))
        if smp.path is not None and smp.sha256:
            self.flog.place(f"official/images/{smp.name}", smp.path, sha256=smp.sha256, copy=self.copy, image=smp.name)
        if residual is not None:
            self.flog.write(
                f"official/maps/{os.path.splitext(smp.name)[0]}.npy", npy_bytes(residual_to_official_map(residual))
            )
        else:
            self.no_map += 1
        if ref.reference not in self.refs_done:
            self.refs_done.add(ref.reference)
            if ref.reference_path and ref.reference_sha256:
                self.flog.place(
                    f"official/references/{ref.reference}",
                    ref.reference_path,
                    sha256=ref.reference_sha256,
                    copy=self.copy,
                    image=ref.reference,
                )

    def close(self, split_names: list[str]) -> None:
        for split in split_names:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(("img_id", "ref_id", "score"))
            w.writerows(self.rows.get(split, []))
            self.flog.write(f"official/{split}.csv", buf.getvalue().encode("utf-8"))


class WebDatasetWriter:
    """``webdataset/<split>-NNNNNN.tar``: per sample ``<key>.<ext>`` (image bytes), ``<key>.npy``
    (float32 residual, project sign) and ``<key>.json`` (metadata). A shard closes before
    it would pass ``shard_bytes`` (a single sample larger than that gets a shard of its
    own). Samples without an image file are left out (counted)."""

    def __init__(self, flog: FileLog, *, shard_bytes: int = DEFAULT_SHARD_BYTES):
        if not isinstance(shard_bytes, int) or shard_bytes < 10_240:
            raise ValueError(f"shard_bytes must be an integer >= 10240, got {shard_bytes!r}")
        self.flog, self.shard_bytes = flog, shard_bytes
        self.tar: Optional[tarfile.TarFile] = None
        self.rel: Optional[str] = None
        self.split: Optional[str] = None
        self.index: dict[str, int] = defaultdict(int)
        self.size = 0
        self.skipped = 0

    def _close_shard(self) -> None:
        if self.tar is not None:
            self.tar.close()
            self.flog.add_existing(self.rel)
            self.tar = None

    def _open_shard(self, split: str) -> None:
        self._close_shard()
        self.rel = f"webdataset/{split}-{self.index[split]:06d}.tar"
        self.index[split] += 1
        path = self.flog.root / self.rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tar = tarfile.open(path, "w", format=tarfile.USTAR_FORMAT)
        self.split, self.size = split, 1024

    def add(self, smp: Sample, map_npy: Optional[bytes], meta: dict) -> None:
        if smp.path is None:
            self.skipped += 1
            return
        with open(smp.path, "rb") as fh:
            image = fh.read()
        members = [(f"{smp.key}{smp.ext}", image), (f"{smp.key}.json", json.dumps(meta, sort_keys=True).encode())]
        if map_npy is not None:
            members.append((f"{smp.key}.npy", map_npy))
        need = sum(512 + -(-len(d) // 512) * 512 for _, d in members)
        # a tar ends with two zero blocks and is padded to 10240-byte records
        final = -(-(self.size + need) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE
        if self.tar is None or self.split != smp.split or (final > self.shard_bytes and self.size > 1024):
            self._open_shard(smp.split)
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            self.tar.addfile(info, io.BytesIO(data))
        self.size += need

    def close(self) -> None:
        self._close_shard()


class HfWriter:
    """``hf/<split>.parquet``: Hugging Face ``datasets`` Parquet with an ``Image`` feature
    (the image bytes), an ``Array2D`` (256, 256) float32 ``residual`` (project sign,
    resized to the released size; the native maps keep full resolution), and metadata."""

    BATCH = 256

    def __init__(self, flog: FileLog):
        try:
            import datasets
        except ImportError:
            raise ReleaseError("format 'hf' needs the Hugging Face `datasets` package: pip install datasets") from None
        f = datasets.Features(
            {
                "image": datasets.Image(),
                "residual": datasets.Array2D(shape=HF_MAP_SIZE, dtype="float32"),
                "has_label": datasets.Value("bool"),
                "score": datasets.Value("float64"),
                "image_key": datasets.Value("string"),
                "name": datasets.Value("string"),
                "scene": datasets.Value("string"),
                "variant": datasets.Value("string"),
            }
        )
        self.features = f
        self.schema = f.arrow_schema
        self.flog = flog
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.buffers: dict[str, list] = defaultdict(list)
        self.skipped = 0

    def add(self, smp: Sample, residual: Optional[np.ndarray]) -> None:
        if smp.path is None:
            self.skipped += 1
            return
        from iea_data.core.imaging import resize_map

        with open(smp.path, "rb") as fh:
            image = fh.read()
        small = resize_map(residual, HF_MAP_SIZE) if residual is not None else np.zeros(HF_MAP_SIZE, np.float32)
        self.buffers[smp.split].append((image, small, residual is not None, smp))
        if len(self.buffers[smp.split]) >= self.BATCH:
            self._flush(smp.split)

    def _flush(self, split: str) -> None:
        rows = self.buffers.pop(split, [])
        if not rows:
            return
        ext = self.schema.field("residual").type
        flat = pa.array(np.concatenate([r[1].ravel() for r in rows]).astype(np.float32))
        h, w = HF_MAP_SIZE
        inner = pa.ListArray.from_arrays(pa.array(np.arange(0, len(rows) * h + 1) * w, pa.int32()), flat)
        outer = pa.ListArray.from_arrays(pa.array(np.arange(0, len(rows) + 1) * h, pa.int32()), inner)
        residual = pa.ExtensionArray.from_storage(ext, outer.cast(ext.storage_type))
        cols = {
            "image": pa.array([{"bytes": r[0], "path": r[3].name} for r in rows], type=self.schema.field("image").type),
            "residual": residual,
            "has_label": pa.array([r[2] for r in rows]),
            "score": pa.array([r[3].score for r in rows], type=pa.float64()),
            "image_key": pa.array([r[3].key for r in rows]),
            "name": pa.array([r[3].name for r in rows]),
            "scene": pa.array([r[3].scene for r in rows], type=pa.string()),
            "variant": pa.array([r[3].meta.get("variant") for r in rows], type=pa.string()),
        }
        table = pa.Table.from_arrays([cols[f.name] for f in self.schema], schema=self.schema)
        if split not in self.writers:
            path = self.flog.root / f"hf/{split}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writers[split] = pq.ParquetWriter(path, self.schema)
        self.writers[split].write_table(table)

    def close(self) -> None:
        for split in list(self.buffers):
            self._flush(split)
        for split, w in self.writers.items():
            w.close()
            self.flog.add_existing(f"hf/{split}.parquet")
