"""Errors of :mod:`iea_data.workflows.releases` (all user errors: the CLI prints one line and exits 1)."""

from __future__ import annotations

from iea_data.core.errors import IeaError

__all__ = ["ReleaseError", "ReleaseExistsError", "LeakageError", "ManifestSchemaError"]


class ReleaseError(IeaError):
    """A release cannot be built, read or compared as asked."""


class ReleaseExistsError(ReleaseError):
    """The version was built already: a release never changes, build a new version."""


class LeakageError(ReleaseError):
    """Images shared or near-duplicated across splits; ``pairs`` lists them.

    Parameters
    ----------
    message : str
        A sentence naming the first pairs and the fix.
    pairs : list of dict
        One entry per pair: ``kind`` (``"identical"``: the same bytes or catalog image,
        ``"same-scene"``: one scene cut by imported splits, or ``"near-duplicate"``), ``a``, ``b``
        (image names), ``split_a``, ``split_b`` and ``distance`` (Hamming distance of the
        perceptual hashes; 0 for identical bytes).
    """

    def __init__(self, message: str, pairs: list[dict]):
        super().__init__(message)
        self.pairs = pairs


class ManifestSchemaError(ReleaseError):
    """A ``manifest.json`` does not follow ``schemas/release/manifest.v1.schema.json``."""
