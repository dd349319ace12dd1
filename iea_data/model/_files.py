"""Residual maps for image files: decode in DataLoader worker processes while the model runs.

Used by model pre-labels (:func:`iea_data.labels.prelabel_model`) and by assessment
(:func:`iea_data.rules.assess`): one loop, so both keep the model fed the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Optional, Sequence

import numpy as np

from ..errors import ImageDecodeError
from ..imaging import label_shape, read_image

__all__ = ["FileMap", "ImageFileDataset", "predict_files"]


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
        self.input_size = tuple(input_size)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        import torch

        from ._boundary import to_batch

        try:
            rgb = read_image(self.paths[i]).rgb
        except (ImageDecodeError, OSError) as exc:
            return i, torch.zeros(3, *self.input_size), (0, 0), str(exc)
        shape = label_shape(rgb.shape[0], rgb.shape[1], self.max_side)
        return i, to_batch([rgb], size=self.input_size)[0], shape, ""


def collate_images(items):
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


def predict_files(model, paths: Sequence[str], *, max_side: int = 1024, input_size: tuple[int, int] = (256, 256),
                  batch_size: int = 8, num_workers: int = 2, device="cpu") -> Iterator[FileMap]:
    """Yield the residual map of each file, in input order, decoding in worker processes.

    Parameters
    ----------
    model : torch.nn.Module
        A residual-map model (such as :class:`~iea_data.model.PIEANet`) on ``device``.
    paths : sequence of str
        Image files; unreadable ones are yielded with an ``error``, never raised.
    max_side : int, optional
        Long side of the returned maps (the label resolution), default 1024.
    input_size : tuple of int, optional
        Network input ``(height, width)``, default (256, 256) as released.
    batch_size, num_workers : int, optional
        DataLoader batch size and decoding processes (0 decodes in this process).
    device : str or torch.device, optional

    Yields
    ------
    FileMap
        One per path, in order.

    Notes
    -----
    Worker processes start from a fork server (plain ``fork`` can deadlock on OpenCV's
    thread pool), so a script calling this with ``num_workers > 0`` needs an
    ``if __name__ == "__main__":`` guard.
    """
    import torch

    from ._boundary import resize_maps

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    if not paths:
        return
    loader = torch.utils.data.DataLoader(
        ImageFileDataset(paths, max_side, input_size), batch_size=batch_size, num_workers=num_workers,
        collate_fn=collate_images, multiprocessing_context="forkserver" if num_workers else None,
    )
    for idx, x, shapes, errs in loader:
        with torch.inference_mode():  # not around the yields: the caller's code must not run in inference mode
            out = model(x.to(device)).float().cpu()
            maps = [None if errs[j] else resize_maps(out[j:j + 1], size=tuple(shapes[j]))[0, 0].numpy()
                    for j in range(len(idx))]
        for j, i in enumerate(idx):
            if errs[j]:
                yield FileMap(i, None, errs[j])
            else:
                yield FileMap(i, np.clip(maps[j], -1.0, 1.0).astype(np.float32), "")
