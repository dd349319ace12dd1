"""Group exposure brackets into scenes: pure functions, no database.

A *scene* is a bracket of one subject: its variant images, each with a variant tag
(``N2``, ``-1EV``) and, where known, an EV offset, plus its reference (the image the
ideal-exposure target starts from). The catalog calls these functions; they only look at
names, EXIF-like records and sidecar CSV files, and never touch the database.

Three ways to find scenes:

- :func:`group_by_filename` -- the IEA40K / FiveK convention ``<scene>_<variant>.<ext>``
  (parsed by :func:`parse_variant_name`), with the reference named ``<scene>.<ext>``.
- :func:`group_by_exif` -- consecutive shots of one camera with different exposures
  (auto-exposure bracketing); :func:`ev_offsets` gives each member's EV offset.
- :func:`read_sidecar` -- an explicit CSV (``path,scene[,variant,ev,is_reference]``).

Variant tags
------------
``N1``..``N4`` (darker renderings, ``N4`` darkest) and ``P0``..``P4`` (``P0`` the base
rendering, ``P1``..``P4`` brighter) are the IEA40K tokens; they are matched in upper case
only. Their EV is ``None``: the IEA40K renderings are not defined in stops.

EV tags are a signed decimal number of stops followed by ``EV`` (any case):
``-1EV``, ``+2ev``, ``0EV``, ``-0.5EV``, ``+1.5ev``, ``.5EV``. ``m`` and ``p`` may stand
for the sign (``m1ev`` = ``-1EV``, ``p0.5EV`` = ``+0.5EV``), a spelling some bracketing
tools write because ``+`` is awkward in file names. The canonical tag
(:func:`format_ev_tag`) is the shortest decimal with an explicit sign, and ``0EV`` for zero.

Modules: ``_tags`` (variant tags), ``_types`` (the results), one per parser:
``_filenames``, ``_exif``, ``_sidecar``.
"""

from ._exif import ev_offsets, group_by_exif
from ._filenames import group_by_filename, parse_variant_name
from ._sidecar import SIDECAR_COLUMNS, SidecarRow, read_sidecar
from ._tags import IEA40K_VARIANTS, format_ev_tag, variant_sort_key
from ._types import Conflict, SceneGroup, VariantName

__all__ = [
    "IEA40K_VARIANTS",
    "VariantName",
    "SceneGroup",
    "Conflict",
    "SidecarRow",
    "parse_variant_name",
    "format_ev_tag",
    "variant_sort_key",
    "group_by_filename",
    "group_by_exif",
    "ev_offsets",
    "read_sidecar",
    "SIDECAR_COLUMNS",
]
