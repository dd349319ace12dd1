"""Typed model configurations and the location of the released P-IEANet weights.

Nothing here imports torch, so the catalog and the CLI can read a model's facts
(input size, weight hash, licence) without paying for the import.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from iea_data.core.errors import IeaError
from iea_data.core.files import sha256_file

__all__ = [
    "ModelCfg",
    "PIEANET_CFG",
    "WEIGHTS_ENV_VAR",
    "official_weights_path",
    "sha256_file",
]

#: Environment variable naming the released ``official_epoch2.pth`` explicitly.
WEIGHTS_ENV_VAR = "IEA_PIEANET_WEIGHTS"

# <repo>/iea_data/core/model/_config.py -> parents[3] is the repository root; the shared
# reference material sits beside it at <repo>/../shared.
_REPO_ROOT = Path(__file__).resolve().parents[3]
_SHARED_WEIGHTS = _REPO_ROOT / ".." / "shared" / "reference" / "p-ieanet-official" / "official_epoch2.pth"


@dataclass(frozen=True)
class ModelCfg:
    """Facts about one registered model and its released weights.

    Parameters
    ----------
    name : str
        Registry name (``"pieanet"``).
    input_size : tuple of int
        ``(height, width)`` the network takes; images are resized to it by
        :func:`iea_data.core.model.to_batch`.
    source : str
        Where the architecture and the weights come from.
    weights_file : str
        File name of the released checkpoint.
    sha256 : str
        SHA-256 of the released checkpoint, hex; ``create_model(weights="official")``
        refuses a file with another hash.
    license : str
        Licence terms of the weights as far as the release states them.
    notes : str
        Anything a user of the weights should know (sign convention, quirks).
    """

    name: str
    input_size: tuple[int, int]
    source: str
    weights_file: str
    sha256: str
    license: str
    notes: str = ""


PIEANET_CFG = ModelCfg(
    name="pieanet",
    input_size=(256, 256),
    source=(
        "He, Zheng, Ming, Wu, Ma: 'Rethinking No-reference Image Exposure Assessment from "
        "Holism to Pixel: Models, Datasets and Benchmarks', NeurIPS 2024; the released, "
        "simplified P-IEANet code and its epoch-2 checkpoint."
    ),
    weights_file="official_epoch2.pth",
    sha256="6f1cf2a5ca446235120252c51faf1463b55514acf8822b96d6275d885ba02700",
    license=(
        "Released by the authors with the paper's public code; no separate licence file "
        "ships with the weights. Research use; do not redistribute inside this project."
    ),
    notes=(
        "The released network outputs ideal - test; iea_data returns test - ideal "
        "(official_to_residual). Fixed 256x256 input. The released code lets attention "
        "mix images of one batch; iea_data computes each image on its own (per-token form), "
        "which equals the release's own one-image-as-duplicated-pair inference."
    ),
)


def official_weights_path() -> Path:
    """Locate the released ``official_epoch2.pth``.

    Looks first at the environment variable ``IEA_PIEANET_WEIGHTS`` (a path to the
    file), then at ``../shared/reference/p-ieanet-official/official_epoch2.pth`` next to
    the repository root.

    Returns
    -------
    pathlib.Path
        An existing file (its hash is not checked here; ``create_model`` checks it).

    Raises
    ------
    IeaError
        If the variable names a missing file, or neither place holds the weights; the
        message says where to put them.
    """
    env = os.environ.get(WEIGHTS_ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise IeaError(
                f"{WEIGHTS_ENV_VAR}={env!r} does not name a file. Point it at the released "
                f"P-IEANet checkpoint ({PIEANET_CFG.weights_file}, sha256 "
                f"{PIEANET_CFG.sha256[:12]}...) or unset it."
            )
        return path
    path = _SHARED_WEIGHTS.resolve()
    if path.is_file():
        return path
    raise IeaError(
        f"the released P-IEANet weights ({PIEANET_CFG.weights_file}) were not found at "
        f"{path}. Download them from the authors' release and either place them there or "
        f"set {WEIGHTS_ENV_VAR}=/path/to/{PIEANET_CFG.weights_file}; or pass weights=None "
        "for an untrained network."
    )
