"""Loading the released P-IEANet checkpoint: one rename table, one conversion function."""

from __future__ import annotations

import functools
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Optional, Union

import torch
from torch import Tensor, nn

from iea_data.core.errors import IeaError

from ._config import official_weights_path

# what torch.load accepts as ``map_location``
MapLocation = Union[str, torch.device, dict, None]

__all__ = ["load_official_state_dict", "convert_official_state_dict", "to_official_state_dict"]

# Released prefix -> this project's prefix. Order matters only for readability: the
# patterns are anchored and disjoint. ``None`` drops keys the release never uses.
_RENAMES = (
    (r"Low\.conv\.", "dwt_low."),
    (r"High_(\d)\.conv\.", lambda m: f"dwt_high.{int(m[1]) - 1}."),
    (r"ffa_group\.pre\.0\.", "ffa.head."),
    (r"ffa_group\.g(\d)\.gp\.(\d)\.conv(\d)\.", lambda m: f"ffa.groups.{int(m[1]) - 1}.blocks.{m[2]}.conv{m[3]}."),
    (r"ffa_group\.g(\d)\.gp\.(\d)\.calayer\.ca\.0\.", lambda m: f"ffa.groups.{int(m[1]) - 1}.blocks.{m[2]}.ca.reduce."),
    (r"ffa_group\.g(\d)\.gp\.(\d)\.calayer\.ca\.2\.", lambda m: f"ffa.groups.{int(m[1]) - 1}.blocks.{m[2]}.ca.expand."),
    (r"ffa_group\.g(\d)\.gp\.(\d)\.palayer\.pa\.0\.", lambda m: f"ffa.groups.{int(m[1]) - 1}.blocks.{m[2]}.pa.reduce."),
    (r"ffa_group\.g(\d)\.gp\.(\d)\.palayer\.pa\.2\.", lambda m: f"ffa.groups.{int(m[1]) - 1}.blocks.{m[2]}.pa.expand."),
    (r"ffa_group\.g(\d)\.gp\.2\.", lambda m: f"ffa.groups.{int(m[1]) - 1}.conv."),
    (r"ffa_group\.ca\.1\.", "ffa.fuse_ca.reduce."),
    (r"ffa_group\.ca\.3\.", "ffa.fuse_ca.expand."),
    (r"ffa_group\.palayer\.pa\.0\.", "ffa.fuse_pa.reduce."),
    (r"ffa_group\.palayer\.pa\.2\.", "ffa.fuse_pa.expand."),
    (r"ffa_group\.post\.(\d)\.", lambda m: f"ffa.tail.{m[1]}."),
    (r"ffa_group\.post_2\.0\.", "ffa.out."),
    (r"encoder\.conv(\d)\.conv\.", lambda m: f"structure.conv.{m[1]}."),
    (r"encoder\.transformer(\d)\.transformer\.", lambda m: f"structure.transformer.{m[1]}."),
    (r"encoder\.transformer(\d)\.conv\.", lambda m: f"structure.proj.{m[1]}."),
    (r"encoder\.fusion(\d)\.conv\.", lambda m: f"structure.fusion.{m[1]}."),
    (r"fusion\.tail_conv\.(\d)\.", lambda m: f"merge.{m[1]}."),
    (r"fusion\.blur_conv\.", None),  # defined and trained-through in the release, never used
)
_RENAMES_COMPILED = tuple((re.compile(p), r) for p, r in _RENAMES)


def _rename(key: str) -> Optional[str]:
    """This project's name for a released key; ``None`` for a dropped key.

    Raises ``KeyError`` for a key the release does not have.
    """
    for pattern, repl in _RENAMES_COMPILED:
        m = pattern.match(key)
        if m:
            if repl is None:
                return None
            new = repl(m) if callable(repl) else repl
            return new + key[m.end() :]
    raise KeyError(key)


def _convert_official(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a released P-IEANet state dict to this project's keys.

    The one place that knows the released names. Accepts the plain state dict, a dict
    wrapping it under ``"state_dict"`` or ``"model"``, and ``module.``-prefixed keys
    (``nn.DataParallel``). Unused released keys (``fusion.blur_conv.*``) are dropped.

    Parameters
    ----------
    state_dict : mapping of str to Tensor
        As ``torch.load`` returned it.

    Returns
    -------
    dict of str to Tensor
        Keys of :class:`PIEANet`; tensors are the same objects, not copies.

    Raises
    ------
    IeaError
        On the first key that is not a released P-IEANet key.
    """
    for wrapper in ("state_dict", "model"):
        inner = state_dict.get(wrapper) if isinstance(state_dict, Mapping) else None
        if isinstance(inner, Mapping):
            state_dict = inner
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        name = key[len("module.") :] if key.startswith("module.") else key
        try:
            new = _rename(name)
        except KeyError:
            raise IeaError(
                f"not a released P-IEANet checkpoint: unexpected key {key!r} (first "
                "mismatch). Pass the released official_epoch2.pth or a checkpoint "
                "fine-tuned from it with the released training code."
            ) from None
        if new is not None:
            out[new] = value
    return out


_FIX = "Pass the released P-IEANet official_epoch2.pth."


def _load_file(path: str | os.PathLike, map_location: MapLocation) -> Mapping[str, Tensor]:
    """``torch.load(weights_only=True)`` with errors that say what the file is."""
    path = Path(path)
    if not path.is_file():
        raise IeaError(f"checkpoint {str(path)!r} does not exist or is not a file. {_FIX}")
    with open(path, "rb") as fh:
        head = fh.read(4)
    # torch.save writes a zip archive (PK..); old torch versions a bare pickle (0x80).
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        what = "it is empty" if not head else f"it starts with {head!r}, not a zip archive or a pickle"
        raise IeaError(f"{str(path)!r} is not a PyTorch checkpoint: {what}. {_FIX}")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise IeaError(
            f"{str(path)!r} is not a PyTorch state dict: torch.load(weights_only=True) refused "
            f"it (it holds objects other than tensors, or is corrupt). {_FIX}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IeaError(f"{str(path)!r} is not a readable PyTorch checkpoint (torch.load: {reason}). {_FIX}") from None
    if not isinstance(obj, Mapping) or not obj:
        raise IeaError(
            f"{str(path)!r} is a PyTorch file but holds a {type(obj).__name__}, not a state dict of tensors. {_FIX}"
        )
    return obj


@functools.lru_cache(maxsize=1)
def _ours_to_released() -> dict[str, str]:
    """Inverse of the rename table over every released key (for error messages)."""
    return {ours: key for key in _all_released_keys() if (ours := _rename(key)) is not None}


def convert_official_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Public name of :func:`_convert_official`: a released state dict under this project's keys."""
    return _convert_official(state_dict)


def to_official_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """This project's P-IEANet state dict under the released key names (the inverse rename).

    Checkpoints written this way load with the released code and with
    ``create_model("pieanet", weights=PATH)``.

    Raises
    ------
    KeyError
        Naming the first key that has no released name.
    """
    names = _ours_to_released()
    missing = [k for k in state_dict if k not in names]
    if missing:
        raise KeyError(f"state dict key {missing[0]!r} has no released P-IEANet name; is this a PIEANet?")
    return {names[k]: v for k, v in state_dict.items()}


def _all_released_keys() -> list[str]:
    """Every released key, generated from the architecture (472 in the checkpoint)."""
    keys = []
    wb = (".weight", ".bias")
    for name in ("Low", "High_1", "High_2", "High_3"):
        keys += [f"{name}.conv{s}" for s in wb]
    keys += [f"ffa_group.pre.0{s}" for s in wb]
    for g in (1, 2, 3):
        for b in (0, 1):
            p = f"ffa_group.g{g}.gp.{b}"
            for sub in ("conv1", "conv2", "calayer.ca.0", "calayer.ca.2", "palayer.pa.0", "palayer.pa.2"):
                keys += [f"{p}.{sub}{s}" for s in wb]
        keys += [f"ffa_group.g{g}.gp.2{s}" for s in wb]
    for sub in ("ca.1", "ca.3", "palayer.pa.0", "palayer.pa.2", "post.0", "post.1", "post_2.0"):
        keys += [f"ffa_group.{sub}{s}" for s in wb]
    from ._transformer import make_transformer

    tr_keys = list(make_transformer().state_dict())
    for k in range(9):
        keys += [f"encoder.conv{k}.conv{s}" for s in wb]
        keys += [f"encoder.transformer{k}.transformer.{t}" for t in tr_keys]
        keys += [f"encoder.transformer{k}.conv{s}" for s in wb]
        keys += [f"encoder.fusion{k}.conv{s}" for s in wb]
    for i in (0, 2):
        keys += [f"fusion.blur_conv.{i}{s}" for s in wb]
    for i in (0, 2, 4):
        keys += [f"fusion.tail_conv.{i}{s}" for s in wb]
    return keys


def load_official_state_dict(
    path: str | os.PathLike | None, model: nn.Module, *, map_location: MapLocation = "cpu"
) -> dict[str, Tensor]:
    """Read a released checkpoint and return a state dict ``model`` accepts strictly.

    Parameters
    ----------
    path : str or path-like or None
        The checkpoint; ``None`` means :func:`official_weights_path`.
    model : PIEANet
        The network the result must fit (its keys and shapes are the expectation).
    map_location : str or torch.device, optional
        Passed to ``torch.load``.

    Returns
    -------
    dict of str to Tensor

    Raises
    ------
    IeaError
        Not a torch file; not a state dict; the first unexpected, missing or wrongly
        shaped key, named as the release names it.
    """
    path = official_weights_path() if path is None else path
    released = _load_file(path, map_location)
    converted = _convert_official(released)
    expected = model.state_dict()
    names = _ours_to_released()
    for key, value in converted.items():
        if key not in expected:
            raise IeaError(
                f"not a released P-IEANet checkpoint: unexpected key {names.get(key, key)!r} (first mismatch)."
            )
        want = expected[key].shape
        if not isinstance(value, Tensor) or value.shape != want:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise IeaError(
                f"not a released P-IEANet checkpoint: {names.get(key, key)!r} has shape "
                f"{got}, expected {tuple(want)} (first mismatch)."
            )
    missing = [k for k in expected if k not in converted]
    if missing:
        raise IeaError(
            f"not a released P-IEANet checkpoint: key {names.get(missing[0], missing[0])!r} "
            f"is missing ({len(missing)} missing in all; first mismatch)."
        )
    return converted
