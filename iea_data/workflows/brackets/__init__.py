"""Exposure brackets rendered from camera RAW (``iea brackets render``).

One demosaic per RAW to linear light, every EV scaled from it in linear light and encoded
with the project's sRGB curve; file names, a sidecar CSV and provenance JSON made for
``iea ingest`` and ``iea scenes sidecar``; ``iea ingest --from-render`` groups them into one
scene per RAW with their EVs and provenance (:func:`ingest_render`), and :func:`raw_source`
finds the RAW a catalogued image was rendered from. The pure parts are in
:mod:`iea_data.core.raw`.
"""

from ._from_render import RawSource, RenderIngestReport, ingest_render, raw_source, read_render_provenance
from ._render import (
    FORMATS,
    NAME_STYLES,
    PROVENANCE_SUFFIX,
    SIDECAR_NAME,
    BracketError,
    BracketReport,
    bracket_names,
    parse_evs,
    render_brackets,
)

__all__ = [
    "FORMATS",
    "NAME_STYLES",
    "PROVENANCE_SUFFIX",
    "SIDECAR_NAME",
    "BracketError",
    "BracketReport",
    "bracket_names",
    "parse_evs",
    "render_brackets",
    "RenderIngestReport",
    "RawSource",
    "ingest_render",
    "raw_source",
    "read_render_provenance",
]
