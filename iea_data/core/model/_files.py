"""Residual maps for image files: decode in DataLoader worker processes while the model runs.

Used by model pre-labels (:func:`iea_data.workflows.labels.prelabel_model`) and by assessment
(:func:`iea_data.workflows.assess.assess`): one loop, so both keep the model fed the same way.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from iea_data.core.errors import ImageDecodeError
from iea_data.core.imaging import label_shape, read_image

if TYPE_CHECKING:  # pragma: no cover - types only; torch is imported where it runs
    import torch

# one decoded file: (index, (3, H, W) input, label shape, error or "")
Item = tuple[int, "torch.Tensor", tuple[int, int], str]
# a collated batch: (indices, (N, 3, H, W) inputs, label shapes, errors)
Batch = tuple[list[int], "torch.Tensor", list[tuple[int, int]], list[str]]

__all__ = ["FileMap", "ImageFileDataset", "predict_batch", "predict_files", "work_beside_model", "DECODE_AHEAD_ENV"]


class ImageFileDataset:
    """Image files as network inputs, decoded in DataLoader workers.

    Item ``i`` is ``(i, x, shape, error)``: ``x`` the float32 (3, h, w) network input,
    ``shape`` the label resolution ``(height, width)`` of the image (long side at most
    ``max_side``, never larger than the image) and ``error`` an empty string, or the reason
    the file could not be read (then ``x`` is zeros and ``shape`` is ``(0, 0)``).

    Parameters
    ----------
    paths : sequence of str
        Image files.
    max_side : int
        Long side of the label resolution.
    input_size : tuple of int
        ``(height, width)`` of the network input.
    """

    def __init__(self, paths: Sequence[str], max_side: int, input_size: tuple[int, int]):
        self.paths = [str(p) for p in paths]
        self.max_side = int(max_side)
        self.input_size: tuple[int, int] = (int(input_size[0]), int(input_size[1]))

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> Item:
        import torch

        from ._boundary import to_batch

        try:
            rgb = read_image(self.paths[i]).rgb
        except (ImageDecodeError, OSError) as exc:
            return i, torch.zeros(3, *self.input_size), (0, 0), str(exc)
        shape = label_shape(rgb.shape[0], rgb.shape[1], self.max_side)
        return i, to_batch([rgb], size=self.input_size)[0], shape, ""


def collate_images(items: Sequence[Item]) -> Batch:
    """DataLoader collate function for :class:`ImageFileDataset` items."""
    import torch

    idx, xs, shapes, errs = zip(*items)
    return list(idx), torch.stack(xs), list(shapes), list(errs)


@dataclass
class FileMap:
    """The model's residual map for one file, or why there is none.

    Attributes
    ----------
    index : int
        Position of the file in the input sequence.
    residual : ndarray or None
        float32 (h, w) in [-1, 1] at label resolution, ``Y(photo) - Y(ideal)``; None on error.
    error : str
        Empty, or the reason the file could not be read.
    """

    index: int
    residual: Optional[np.ndarray]
    error: str = ""


def _thread_batches(
    dataset: ImageFileDataset, batch_size: int, num_workers: int, ahead: bool = True
) -> Iterator[Batch]:
    """Collated batches in order, decoded by ``num_workers`` threads.

    ``ahead``: decode the next batches while the consumer works on this one; otherwise decode
    each batch when it is asked for, its files spread over the threads (for a model that
    already keeps every core busy, see :func:`_decode_ahead`).
    """
    starts = range(0, len(dataset), batch_size)

    def load(start: int) -> Batch:
        return collate_images([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])

    if num_workers == 0:
        for start in starts:
            yield load(start)
        return
    from concurrent.futures import ThreadPoolExecutor

    if not ahead:
        with ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="iea-decode") as pool:
            for start in starts:
                yield collate_images(
                    list(pool.map(dataset.__getitem__, range(start, min(start + batch_size, len(dataset)))))
                )
        return
    todo = iter(starts)
    with ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="iea-decode") as pool:
        pending = collections.deque(pool.submit(load, s) for _, s in zip(range(num_workers + 1), todo))
        while pending:
            batch = pending.popleft().result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append(pool.submit(load, nxt))
            yield batch


#: Environment variable: ``1`` decodes ahead of the model always, ``0`` never (default: decided per device).
DECODE_AHEAD_ENV = "IEA_DECODE_AHEAD"


def work_beside_model(device: str | torch.device) -> bool:
    """Whether a run's other work (decoding, storing maps, commits) should go in threads beside the model.

    False where the model's intra-op threads take every CPU core: there the work is done
    between the model's batches (see :func:`_decode_ahead` for the measurement). The
    environment variable :data:`DECODE_AHEAD_ENV` (``1`` or ``0``) overrides the choice.

    Examples
    --------
    >>> work_beside_model("cuda")
    True
    """
    return _decode_ahead(device)


def _decode_ahead(device: str | torch.device) -> bool:
    """Whether decoding threads should run beside the model (rather than between its batches).

    On a CPU whose cores all run the model's intra-op threads, a decoding thread beside it
    preempts one of them and the others wait for it at every operator's barrier: measured on
    a 2-core machine, a thread decoding photos beside the bf16 model slowed it by 10-25 %
    for ~5 % of the CPU (end to end the two placements measured equal within noise;
    docs/benchmarks.md). There, each batch is decoded on all cores when it is needed. On a
    GPU, or with cores to spare, decoding runs ahead. The environment variable
    :data:`DECODE_AHEAD_ENV` (``1`` or ``0``) overrides the choice (benchmarks compare both).
    """
    import torch

    forced = os.environ.get(DECODE_AHEAD_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    if torch.device(device).type != "cpu":
        return True
    return (os.cpu_count() or 1) > torch.get_num_threads()


def predict_files(
    model: torch.nn.Module,
    paths: Sequence[str],
    *,
    max_side: int = 1024,
    input_size: tuple[int, int] = (256, 256),
    batch_size: int = 8,
    num_workers: int = 2,
    device: str | torch.device = "cpu",
    dtype: Optional[torch.dtype] = None,
    loader: str = "threads",
) -> Iterator[FileMap]:
    """Yield the residual map of each file, in input order, decoding while the model runs.

    Parameters
    ----------
    model : torch.nn.Module
        A residual-map model (such as :class:`~iea_data.core.model.PIEANet`) on ``device``.
    paths : sequence of str
        Image files; unreadable ones are yielded with an ``error``, never raised.
    max_side : int, optional
        Long side of the returned maps (the label resolution), default 1024.
    input_size : tuple of int, optional
        Network input ``(height, width)``, default (256, 256) as released.
    batch_size, num_workers : int, optional
        Images per model batch, and decoding workers (0 decodes in this process, in turn
        with the model).
    loader : {"threads", "processes"}, optional
        ``"threads"`` (default): the workers are threads of this process, prefetching up to
        ``num_workers + 1`` batches (decoding and resizing release the GIL, and nothing has
        to start) on a GPU or where the CPU has cores the model's threads leave free; where
        the model's threads take every core, each batch is decoded on all of them just
        before it runs (a thread beside the model would stall it at every barrier).
        ``"processes"``: a ``torch.utils.data.DataLoader`` with worker processes; starting
        them (a fork server importing torch) took ~6 s on a 2-core machine, the time of
        several batches.
    device : str or torch.device, optional
    dtype : torch.dtype, optional
        ``torch.float32`` (default, no autocast) or ``torch.bfloat16`` / ``torch.float16``:
        the model runs under ``torch.autocast`` in that dtype (see
        :func:`iea_data.core.model.resolve_precision`).

    Yields
    ------
    FileMap
        One per path, in order.

    Notes
    -----
    With ``loader="processes"`` worker processes start from a fork server (plain ``fork``
    can deadlock on OpenCV's thread pool), so a script calling this with
    ``num_workers > 0`` needs an ``if __name__ == "__main__":`` guard.
    """
    import torch

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if loader not in ("threads", "processes"):
        raise ValueError(f"loader must be 'threads' or 'processes', got {loader!r}")
    if dtype is None:
        dtype = torch.float32
    if dtype not in (torch.float32, torch.bfloat16, torch.float16):
        raise ValueError(f"dtype must be torch.float32, torch.bfloat16 or torch.float16; got {dtype}")
    if not paths:
        return
    dataset = ImageFileDataset(paths, max_side, input_size)
    batches: Iterator[Batch] | torch.utils.data.DataLoader[Any]
    if loader == "processes" and num_workers:
        batches = torch.utils.data.DataLoader(
            dataset,  # type: ignore[arg-type]  # a map-style dataset (__len__, __getitem__), not a Dataset subclass
            batch_size=batch_size,
            num_workers=num_workers,
            collate_fn=collate_images,
            multiprocessing_context="forkserver",
        )
    else:
        batches = _thread_batches(dataset, batch_size, num_workers, ahead=_decode_ahead(device))
    for idx, x, shapes, errs in batches:
        for j, (residual, error) in enumerate(predict_batch(model, x, shapes, errs, device=device, dtype=dtype)):
            yield FileMap(idx[j], residual, error)


def predict_batch(
    model: torch.nn.Module,
    x: torch.Tensor | np.ndarray,
    shapes: Sequence[tuple[int, int]],
    errors: Sequence[str],
    *,
    device: str | torch.device = "cpu",
    dtype: Optional[torch.dtype] = None,
) -> list[tuple[Optional[np.ndarray], str]]:
    """Run the model on one decoded batch: ``(residual or None, error)`` per item, in order.

    The step both :func:`predict_files` and the Ray engine's model actors run (so their maps
    are equal by construction).

    Parameters
    ----------
    model : torch.nn.Module
        A residual-map model on ``device``.
    x : Tensor or ndarray, float32, shape (N, 3, H, W), values in [0, 1]
        Network inputs (:meth:`ImageFileDataset.__getitem__` items, stacked).
    shapes : sequence of (int, int)
        Label resolution of each item.
    errors : sequence of str
        ``""``, or why the item could not be read (its input is ignored).
    device, dtype
        As for :func:`predict_files`.

    Returns
    -------
    list of (ndarray or None, str)
        float32 (h, w) maps in [-1, 1] at each item's ``shape``; None where ``errors`` says so.
    """
    import torch

    from ._boundary import resize_maps

    if dtype is None:
        dtype = torch.float32
    if len(shapes) != len(errors) or len(shapes) != len(x):
        raise ValueError(
            f"x, shapes and errors must have one entry per item; got {len(x)}, {len(shapes)}, {len(errors)}"
        )
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32)) if isinstance(x, np.ndarray) else x
    device_type = torch.device(device).type
    # not around the callers' code: it must not run in inference mode
    with torch.inference_mode(), torch.autocast(device_type, dtype=dtype, enabled=dtype != torch.float32):
        out = model(xt.to(device)).float().cpu()
        maps = [
            None
            if errors[j]
            else resize_maps(out[j : j + 1], size=(int(shapes[j][0]), int(shapes[j][1])))[0, 0].numpy()
            for j in range(len(shapes))
        ]
    return [
        (None, errors[j]) if errors[j] or m is None else (np.clip(m, -1.0, 1.0).astype(np.float32), "")
        for j, m in enumerate(maps)
    ]
