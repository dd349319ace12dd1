"""The ``METHODS`` registry: everything that maps photos to residual maps, behind one call.

A method is built by :func:`create_method` and called on a list of library images; it
returns one float32 residual map (``Y(photo) - Y(ideal)``, clipped to [-1, 1]) per image,
at the image's own size. Baselines are NumPy / OpenCV / scikit-image; P-IEANet (released
weights or a trained checkpoint) loads torch on first use.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from iea_data.core.errors import IeaError
from iea_data.core.imaging import check_image, luma
from iea_data.core.registry import Registry

__all__ = ["METHODS", "MethodCfg", "Method", "create_method", "list_methods", "get_method_cfg", "parse_method_spec"]

log = logging.getLogger(__name__)

#: Registry of methods: name -> ``(MethodCfg, factory)``; ``factory(**params)`` returns
#: ``predict(images, references) -> list of maps``.
METHODS = Registry("method")

#: Prefix of a method spec naming a trained P-IEANet checkpoint: ``checkpoint:PATH``.
CHECKPOINT_PREFIX = "checkpoint:"


@dataclass(frozen=True)
class MethodCfg:
    """Facts about one method.

    Parameters
    ----------
    name : str
        Registry name.
    kind : {"baseline", "model", "oracle"}
        What it is, for reports.
    description : str
        One line: what the method computes, in the project's sign.
    needs : tuple of str
        Inputs beyond the photo (``("reference",)`` for the reference-difference oracle).
    reference : str
        Where the method comes from (paper, library function).
    params : mapping
        Keyword parameters with defaults; :func:`create_method` overrides them.
    """

    name: str
    kind: str
    description: str
    needs: tuple[str, ...] = ()
    reference: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)


class Method:
    """A configured method: ``method(images, references=None)`` -> list of residual maps.

    Parameters
    ----------
    cfg : MethodCfg
        Its configuration (``params`` are the values in use).
    predict : callable
        ``predict(images, references)`` returning float32 (H, W) maps, one per image.
    label : str, optional
        Name shown in reports (default ``cfg.name``; ``checkpoint:model.pth`` for checkpoints).

    Examples
    --------
    >>> m = create_method("global_offset")
    >>> img = np.full((4, 6, 3), 0.75, np.float32)
    >>> [float(v) for v in np.unique(m([img])[0])]
    [0.25]
    """

    def __init__(self, cfg: MethodCfg, predict: Callable[..., list[np.ndarray]], *, label: Optional[str] = None):
        self.cfg = cfg
        self.label = label or cfg.name
        self._predict = predict

    @property
    def name(self) -> str:
        return self.cfg.name

    def __call__(
        self, images: Sequence[np.ndarray], references: Optional[Sequence[Optional[np.ndarray]]] = None
    ) -> list[np.ndarray]:
        """Residual maps for ``images``.

        Parameters
        ----------
        images : sequence of ndarray
            float32 (H, W, 3) RGB in [0, 1]; sizes may differ.
        references : sequence of ndarray or None, optional
            The scene's ideal reference per image, needed by methods whose ``cfg.needs``
            holds ``"reference"``.

        Returns
        -------
        list of ndarray
            float32 (H, W) at each image's size, in [-1, 1] (clipped).
        """
        if isinstance(images, np.ndarray) and images.ndim == 3:
            raise TypeError("images must be a list of (H, W, 3) arrays; wrap a single image as [image]")
        images = [check_image(img, f"images[{i}]") for i, img in enumerate(images)]
        if "reference" in self.cfg.needs:
            if references is None or len(references) != len(images) or any(r is None for r in references):
                raise IeaError(
                    f"method {self.label!r} needs the scene's reference image for every photo; "
                    "this data has none for some images (use it only where references exist)"
                )
            references = [check_image(r, f"references[{i}]") for i, r in enumerate(references)]
        maps = self._predict(images, references)
        out = []
        for img, m in zip(images, maps):
            m = np.asarray(m, dtype=np.float32)
            if m.shape != img.shape[:2]:
                from iea_data.core.imaging import resize_map

                m = resize_map(m, img.shape[:2])
            out.append(np.clip(m, -1.0, 1.0).astype(np.float32, copy=False))
        return out

    def __repr__(self) -> str:
        return f"Method({self.label!r})"


def _register(cfg: MethodCfg):
    def deco(factory):
        METHODS.register(cfg.name)((cfg, factory))
        return factory

    return deco


# --------------------------------------------------------------------------- baselines


@_register(MethodCfg("zero", "baseline", "all-ideal: a zero map for every photo", reference="trivial lower bound"))
def _zero(**_):
    return lambda images, refs: [np.zeros(img.shape[:2], np.float32) for img in images]


@_register(
    MethodCfg(
        "global_offset",
        "baseline",
        "mean luma minus mid-grey, the same value at every pixel",
        reference="mean-brightness rule of thumb",
        params={"grey": 0.5},
    )
)
def _global_offset(*, grey: float):
    def predict(images, refs):
        return [np.full(img.shape[:2], float(luma(img).mean(dtype=np.float64)) - grey, np.float32) for img in images]

    return predict


@_register(
    MethodCfg(
        "local_offset",
        "baseline",
        "Gaussian-blurred luma minus mid-grey (sigma a fraction of the long side)",
        reference="local mean brightness",
        params={"grey": 0.5, "sigma": 0.05},
    )
)
def _local_offset(*, grey: float, sigma: float):
    import cv2

    def predict(images, refs):
        out = []
        for img in images:
            s = max(0.5, sigma * max(img.shape[:2]))
            out.append(cv2.GaussianBlur(luma(img), (0, 0), s, borderType=cv2.BORDER_REFLECT) - np.float32(grey))
        return out

    return predict


@_register(
    MethodCfg(
        "histeq",
        "baseline",
        "luma minus its histogram-equalised version",
        reference="skimage.exposure.equalize_hist (256 bins)",
        params={"nbins": 256},
    )
)
def _histeq(*, nbins: int):
    from skimage.exposure import equalize_hist

    def predict(images, refs):
        out = []
        for img in images:
            y = luma(img)
            eq = equalize_hist(y, nbins=nbins) if np.ptp(y) > 0 else y
            out.append((y - eq).astype(np.float32))
        return out

    return predict


@_register(
    MethodCfg(
        "clahe",
        "baseline",
        "luma minus its CLAHE version (contrast-limited adaptive equalisation)",
        reference="OpenCV createCLAHE on 16-bit luma (Zuiderveld 1994)",
        params={"clip_limit": 2.0, "tiles": 8},
    )
)
def _clahe(*, clip_limit: float, tiles: int):
    import cv2

    def predict(images, refs):
        out = []
        clahe = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(tiles, tiles))
        for img in images:
            y = luma(img)
            y16 = np.round(y * 65535.0).astype(np.uint16)
            eq = clahe.apply(y16).astype(np.float32) / 65535.0
            out.append(y - eq)
        return out

    return predict


@_register(
    MethodCfg(
        "refdiff",
        "oracle",
        "Y(photo) - Y(scene reference): the reference difference (needs references)",
        needs=("reference",),
        reference="iea_data.workflows.labels.refdiff_map (how refdiff pre-labels are made)",
    )
)
def _refdiff(**_):
    from iea_data.core.residuals import refdiff_map

    return lambda images, refs: [refdiff_map(img, ref, img.shape[:2]) for img, ref in zip(images, refs)]


# --------------------------------------------------------------------------- P-IEANet


@_register(
    MethodCfg(
        "pieanet",
        "model",
        "P-IEANet; weights 'official' (released) or a checkpoint path",
        reference="He et al., NeurIPS 2024",
        params={"weights": "official", "device": "cpu", "batch_size": 8},
    )
)
def _pieanet(*, weights, device, batch_size: int):
    from iea_data.core.model import create_model
    from iea_data.core.model import predict as model_predict

    model = create_model("pieanet", weights=weights, device=device)

    def predict(images, refs):
        return model_predict(model, list(images), batch_size=batch_size, sizes="input")

    return predict


# --------------------------------------------------------------------------- front door


def list_methods(pattern: str = "*") -> list[str]:
    """Names of the registered methods matching an fnmatch ``pattern``.

    Examples
    --------
    >>> list_methods()
    ['clahe', 'global_offset', 'histeq', 'local_offset', 'pieanet', 'refdiff', 'zero']
    """
    return METHODS.list(pattern)


def get_method_cfg(name: str) -> MethodCfg:
    """The default :class:`MethodCfg` of a method (unknown names raise with a hint).

    Examples
    --------
    >>> get_method_cfg("refdiff").needs
    ('reference',)
    """
    return METHODS.get(name)[0]


def create_method(name: str, **overrides: Any) -> Method:
    """Build a method.

    Parameters
    ----------
    name : str
        A registry name (see :func:`list_methods`), or ``"checkpoint:PATH"`` for a trained
        P-IEANet checkpoint (same as ``create_method("pieanet", weights=PATH)``).
    **overrides
        Method parameters (``grey=0.45``, ``weights=...``, ``device="cuda"``); unknown
        names raise.

    Returns
    -------
    Method

    Raises
    ------
    IeaError
        Unknown method (with "did you mean") or parameter; a checkpoint that is not there.

    Examples
    --------
    >>> create_method("local_offset", sigma=0.1).cfg.params["sigma"]
    0.1
    """
    label = None
    if name.startswith(CHECKPOINT_PREFIX):
        path = Path(name[len(CHECKPOINT_PREFIX) :]).expanduser()
        if not path.is_file():
            raise IeaError(f"checkpoint {str(path)!r} (from method {name!r}) is not a file")
        overrides = {**overrides, "weights": str(path)}
        label, name = f"{CHECKPOINT_PREFIX}{path.name}", "pieanet"
    cfg, factory = METHODS.get(name)
    unknown = sorted(set(overrides) - set(cfg.params))
    if unknown:
        known = ", ".join(sorted(cfg.params)) or "none"
        raise IeaError(f"method {name!r} has no parameter {unknown[0]!r}; its parameters: {known}")
    from dataclasses import replace

    cfg = replace(cfg, params={**cfg.params, **overrides})
    if name == "pieanet" and label is None and cfg.params["weights"] is None:
        label = "pieanet:random-init"
    elif name == "pieanet" and label is None and cfg.params["weights"] != "official":
        label = f"{CHECKPOINT_PREFIX}{Path(os.fspath(cfg.params['weights'])).name}"
    return Method(cfg, factory(**cfg.params), label=label)


def parse_method_spec(spec: str) -> list[str]:
    """Split a comma-separated ``--methods`` value; ``"all"`` or ``"*"`` means every registered one.

    Examples
    --------
    >>> parse_method_spec("zero, clahe")
    ['zero', 'clahe']
    >>> parse_method_spec("all") == list_methods()
    True
    """
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise IeaError("--methods is empty; name at least one method (see `iea benchmark --list`)")
    out: list[str] = []
    for n in names:
        out += list_methods() if n in ("all", "*") else [n]
    return list(dict.fromkeys(out))
