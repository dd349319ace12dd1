"""The core: pure functions on arrays, files the user names and configs; no SQL, no workspace.

``imaging`` (decode, colour, resize, statistics), ``residuals`` (reference differences, ideal
targets from EV maps, sign and unit conversions), ``scenes`` (file-name, EXIF and sidecar
parsers), ``painting`` (the brush rasteriser), ``metrics``, ``rules`` (rule bases and their
scores), ``heatmaps``, ``model`` (P-IEANet), and the shared foundations ``errors``,
``registry``, ``files`` (atomic writes), ``lazy`` and ``redaction``.

Nothing here imports :mod:`iea_data.store` or :mod:`iea_data.workflows` (an import-linter
contract checks it).
"""
