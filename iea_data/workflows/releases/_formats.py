"""Writers of the release formats: native, official (released training layout), WebDataset, Hugging Face.

Every format is one class following :class:`FormatWriter`, registered in :data:`FORMATS` with
:func:`register_format`: ``open(flog, options)`` once, ``add(item)`` per sample (with the
residual map computed once, :class:`ReleaseItem`), ``close()`` at the end. Each file a writer
makes is recorded in the :class:`FileLog`, which becomes the manifest's file list.

Examples
--------
>>> list_formats()
['native', 'official', 'webdataset', 'hf']
>>> FORMATS.get("official").name
'official'
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Optional, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from iea_data.core.registry import Registry
from iea_data.core.residuals import residual_to_official_map
from iea_data.workflows.catalog import format_score

from ._errors import ReleaseError
from ._files import place_file, sha256_file
from ._gather import Sample, SceneRef
from ._schema import release_arrow_schema

__all__ = [
    "FORMATS",
    "FormatWriter",
    "ReleaseItem",
    "WriteOptions",
    "register_format",
    "list_formats",
    "DEFAULT_SHARD_BYTES",
    "FileLog",
    "NativeWriter",
    "OfficialWriter",
    "WebDatasetWriter",
    "HfWriter",
    "npy_bytes",
]

log = logging.getLogger(__name__)

#: The release formats by name: writer classes following :class:`FormatWriter`.
FORMATS = Registry("release format")
_ORDER: list[str] = []  # registration order: writers run, and are listed, in it
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

    def paths_under(self, prefix: str) -> list[str]:
        """Sorted release paths (files and references) starting with ``prefix``."""
        return sorted(p for p in (*self.files, *self.references) if p.startswith(prefix))

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
        size, sha = os.path.getsize(self.root / rel), sha256_file(self.root / rel)
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


@dataclass(frozen=True)
class WriteOptions:
    """What a build tells every writer when it opens it.

    Attributes
    ----------
    copy : bool
        Copy image files instead of hard-linking the workspace's stored copies.
    labels : str
        The label policy (``consensus``, ``accepted``, ``prelabel``, ``refdiff``).
    shard_bytes : int
        Largest WebDataset shard.
    scenes : dict of str to SceneRef
        Every scene of the catalog, with its reference image (paths already in the store).
    split_names : list of str
        The release's splits, in order.
    """

    copy: bool = False
    labels: str = "consensus"
    shard_bytes: int = DEFAULT_SHARD_BYTES
    scenes: dict[str, SceneRef] = field(default_factory=dict)
    split_names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ReleaseItem:
    """One sample as the writers receive it: the sample, its residual map (None without a label),
    the map as ``.npy`` bytes, and ``info`` (``method``, ``stats``, ``agreement`` when known)."""

    sample: Sample
    residual: Optional[np.ndarray] = None
    map_npy: Optional[bytes] = None
    info: dict = field(default_factory=dict)


class FormatWriter(Protocol):
    """One release format. A new format is one class with these members, decorated with :func:`register_format`.

    Attributes
    ----------
    name : str
        The format's name (``--format NAME``); its files go under ``NAME/`` in the release.
    left_out : list of (str, str)
        Images this format left out, with the reason (the build reports those of ``official``).
    """

    name: ClassVar[str]
    left_out: list[tuple[str, str]]

    @classmethod
    def check(cls) -> None:
        """Raise :class:`ReleaseError` when the format cannot be written here (checked before any file is)."""

    def open(self, flog: FileLog, options: WriteOptions) -> None:
        """Start writing into the release that ``flog`` records."""

    def add(self, item: ReleaseItem) -> None:
        """Write (or buffer) one sample."""

    def close(self) -> list[str]:
        """Finish; return the release paths (files and references) this format holds, sorted."""


W = TypeVar("W", bound=type)


def register_format(cls: W) -> W:
    """Class decorator: register a :class:`FormatWriter` under its ``name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"a release format class needs a non-empty str `name`, got {name!r}")
    FORMATS.register(name)(cls)
    _ORDER.append(name)
    return cls


def list_formats() -> list[str]:
    """The registered format names, in registration order (the order writers run in)."""
    return list(_ORDER)


def _write_table(flog: FileLog, rel: str, table: str, rows: list[dict]) -> None:
    schema = release_arrow_schema(table)
    arrays = [pa.array([r.get(f.name) for r in rows], type=f.type) for f in schema]
    path = flog.root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), path)
    flog.add_existing(rel)


class _Writer:
    """Defaults shared by the built-in writers."""

    name: ClassVar[str] = ""

    def __init__(self) -> None:
        self.left_out: list[tuple[str, str]] = []

    @classmethod
    def check(cls) -> None:
        return None

    def open(self, flog: FileLog, options: WriteOptions) -> None:
        self.flog, self.options = flog, options

    def close(self) -> list[str]:
        return self.flog.paths_under(f"{self.name}/")


@register_format
class NativeWriter(_Writer):
    """``native/``: Parquet tables (images, scenes, labels, splits, agreement), images, float32 maps."""

    name = "native"

    def open(self, flog: FileLog, options: WriteOptions) -> None:
        super().open(flog, options)
        self.copy, self.policy, self.scenes = options.copy, options.labels, options.scenes
        self.images: list[dict] = []
        self.labels: list[dict] = []
        self.splits: list[dict] = []
        self.agreement: list[dict] = []
        self.scene_splits: dict[tuple[str, str], int] = defaultdict(int)

    def add(self, item: ReleaseItem) -> None:
        smp, residual, map_npy, info = item.sample, item.residual, item.map_npy, item.info
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

    def close(self) -> list[str]:
        scene_rows = []
        for (name, split), n in sorted(self.scene_splits.items()):
            ref = self.scenes.get(name) or SceneRef(name)
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
        return super().close()


@register_format
class OfficialWriter(_Writer):
    """``official/``: the released P-IEANet training layout.

    Per split ``<split>.csv`` (``img_id,ref_id,score`` in split order, scores written as the
    released CSVs write them), ``images/<img_id>``, ``maps/<img_id stem>.npy`` (float32
    256 x 256, ``-residual * 255``; see :func:`residual_to_official_map`) and
    ``references/<ref_id>``. An image without a score gets ``nan`` (the released code
    loads the score but does not use it); one without a scene reference is left out.
    """

    name = "official"

    def open(self, flog: FileLog, options: WriteOptions) -> None:
        super().open(flog, options)
        self.copy, self.scenes = options.copy, options.scenes
        self.rows: dict[str, list] = defaultdict(list)
        self.names: dict[str, str] = {}
        self.skipped = self.left_out
        self.no_map = 0
        self.no_score = 0  # written as "nan" (the released code loads the score but does not use it)
        self.refs_done: set[str] = set()

    def add(self, item: ReleaseItem) -> None:
        smp, residual = item.sample, item.residual
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

    def close(self) -> list[str]:
        for split in self.options.split_names:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(("img_id", "ref_id", "score"))
            w.writerows(self.rows.get(split, []))
            self.flog.write(f"official/{split}.csv", buf.getvalue().encode("utf-8"))
        return super().close()


@register_format
class WebDatasetWriter(_Writer):
    """``webdataset/<split>-NNNNNN.tar``: per sample ``<key>.<ext>`` (image bytes), ``<key>.npy``
    (float32 residual, project sign) and ``<key>.json`` (metadata). A shard closes before
    it would pass ``shard_bytes`` (a single sample larger than that gets a shard of its
    own). Samples without an image file are left out (counted)."""

    name = "webdataset"

    def open(self, flog: FileLog, options: WriteOptions) -> None:
        shard_bytes = options.shard_bytes
        if not isinstance(shard_bytes, int) or shard_bytes < 10_240:
            raise ValueError(f"shard_bytes must be an integer >= 10240, got {shard_bytes!r}")
        super().open(flog, options)
        self.shard_bytes = shard_bytes
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

    def add(self, item: ReleaseItem) -> None:
        smp, map_npy = item.sample, item.map_npy
        if smp.path is None:
            self.skipped += 1
            return
        meta = {
            "image_key": smp.key,
            "name": smp.name,
            "split": smp.split,
            "scene": smp.scene,
            "score": smp.score,
            "variant": smp.meta.get("variant"),
            "sha256": smp.sha256,
            "has_map": item.residual is not None,
            "label_method": item.info.get("method"),
        }
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

    def close(self) -> list[str]:
        self._close_shard()
        return super().close()


@register_format
class HfWriter(_Writer):
    """``hf/<split>.parquet``: Hugging Face ``datasets`` Parquet with an ``Image`` feature
    (the image bytes), an ``Array2D`` (256, 256) float32 ``residual`` (project sign,
    resized to the released size; the native maps keep full resolution), and metadata."""

    name = "hf"
    BATCH = 256

    @classmethod
    def check(cls) -> None:
        import importlib.util

        if importlib.util.find_spec("datasets") is None:
            raise ReleaseError("format 'hf' needs the Hugging Face `datasets` package: pip install datasets")

    def open(self, flog: FileLog, options: WriteOptions) -> None:
        try:
            import datasets
        except ImportError:
            raise ReleaseError("format 'hf' needs the Hugging Face `datasets` package: pip install datasets") from None
        super().open(flog, options)
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
        self.writers: dict[str, pq.ParquetWriter] = {}
        self.buffers: dict[str, list] = defaultdict(list)
        self.skipped = 0

    def add(self, item: ReleaseItem) -> None:
        smp, residual = item.sample, item.residual
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

    def close(self) -> list[str]:
        for split in list(self.buffers):
            self._flush(split)
        for split, w in self.writers.items():
            w.close()
            self.flog.add_existing(f"hf/{split}.parquet")
        return super().close()
