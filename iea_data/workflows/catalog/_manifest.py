"""Import and export of the released IEA40K split manifests (``img_id,ref_id,score``).

A manifest names, per row, a rendered exposure variant (``img_id``), its scene's ideal
reference (``ref_id``) and an image-level score on 0–10. Importing it creates the scenes,
variants, references, scores (source ``manifest:<split>``) and the split's membership,
all in one transaction. Rows whose files are absent are kept with status ``missing``;
ingesting the files later (or ``--images DIR``) links them by file name.

Ids are file names, and a manifest may come from anyone: an id is refused (the line named,
nothing imported) when it holds a control character (C0, DEL or C1: NUL, tab, newline, ESC...)
or a path separator, is ``.`` or ``..``, is longer than 255 bytes in UTF-8 (a file name's
limit), or starts with a character a spreadsheet would run as a formula (``=``, ``+``, ``-``,
``@``; OWASP's CSV-injection list, whose tab and CR are control characters already). Export
never writes a cell that looks like a formula unquoted.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import pandas as pd
from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from iea_data.core import scenes as scene_rules
from iea_data.core.errors import IeaError, ManifestError, NotFoundError
from iea_data.core.files import atomic_write
from iea_data.store import Image, Scene, Score, SplitMember, insert_ignore, utcnow

if TYPE_CHECKING:  # pragma: no cover - types only
    from iea_data.store import Workspace

__all__ = [
    "link_missing_files",
    "MANIFEST_COLUMNS",
    "ManifestReport",
    "read_manifest",
    "import_manifest",
    "export_manifest",
    "format_score",
]

MANIFEST_COLUMNS = ("img_id", "ref_id", "score")

#: Longest id in UTF-8 bytes (the longest file name most file systems take).
MAX_ID_BYTES = 255

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: First characters a spreadsheet reads as a formula (OWASP CSV injection), after any spaces.
_FORMULA_START = re.compile(r"^[ \t\r\n]*[=+\-@\t\r]")
_CHUNK = 900  # bound parameters per IN (...) query: below SQLite's limits


@dataclass
class ManifestReport:
    """What :func:`import_manifest` did."""

    split: str
    n_rows: int
    n_scenes: int
    n_images_new: int
    n_missing_files: int
    n_linked: int = 0
    link_errors: list = field(default_factory=list)


def format_score(value: float) -> str:
    """Write a score the way the released CSVs do: ``2`` for integers, else the shortest repr.

    >>> format_score(7.25), format_score(2.0), format_score(5.1)
    ('7.25', '2', '5.1')
    """
    if float(value).is_integer():
        return str(int(value))
    return repr(float(value))


def read_manifest(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read and validate a manifest CSV.

    Returns
    -------
    DataFrame
        Columns ``img_id`` (str), ``ref_id`` (str), ``score`` (float64), ``scene`` (str, the
        stem of ``ref_id``), ``variant`` and ``ev`` (from the file name), ``line`` (1-based
        line in the file, the header being line 1).

    Raises
    ------
    ManifestError
        Missing or extra column, no rows, an id that cannot be a file name (empty, a control
        character or path separator, ``.``/``..``, over 255 UTF-8 bytes, or starting like a
        spreadsheet formula), non-numeric or out-of-range score (0–10), duplicated ``img_id``,
        or a variant whose scene has two ``ref_id``; the message names the line(s).
    """
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False, skipinitialspace=False)
    except FileNotFoundError:
        raise ManifestError(f"{path}: no such file") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ManifestError(f"{path}: not a readable CSV ({exc})") from None
    except pd.errors.EmptyDataError:
        raise ManifestError(f"{path}: the file is empty; expected a header img_id,ref_id,score") from None
    cols = [c.strip() for c in df.columns]
    missing = [c for c in MANIFEST_COLUMNS if c not in cols]
    if missing:
        raise ManifestError(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"the header must be img_id,ref_id,score (got {','.join(cols)})"
        )
    extra = [c for c in cols if c not in MANIFEST_COLUMNS]
    if extra:
        raise ManifestError(f"{path}: unexpected column(s) {', '.join(extra)}; expected exactly img_id,ref_id,score")
    df.columns = cols
    df = df[list(MANIFEST_COLUMNS)].copy()
    df["line"] = range(2, len(df) + 2)
    if not len(df):
        raise ManifestError(f"{path}: no rows after the header; a manifest needs one img_id,ref_id,score row per image")
    for col in ("img_id", "ref_id"):
        _check_ids(df, col, path)
    scores = pd.to_numeric(df["score"].str.strip(), errors="coerce")
    bad = df[scores.isna()]
    if len(bad):
        raise ManifestError(f"{path}: line {bad['line'].iloc[0]}: score {bad['score'].iloc[0]!r} is not a number")
    out_of_range = df[(scores < 0) | (scores > 10) | ~scores.map(math.isfinite)]
    if len(out_of_range):
        row = out_of_range.iloc[0]
        raise ManifestError(f"{path}: line {row['line']}: score {row['score']} is outside 0..10")
    df["score"] = scores.astype("float64")
    dup = df[df["img_id"].duplicated(keep=False)]
    if len(dup):
        first = dup.iloc[0]["img_id"]
        lines = dup[dup["img_id"] == first]["line"].tolist()
        raise ManifestError(f"{path}: img_id {first!r} appears on lines {', '.join(map(str, lines))}; each image once")
    parsed = [scene_rules.parse_variant_name(name) for name in df["img_id"]]
    df["variant"] = [p.variant for p in parsed]
    df["ev"] = [p.ev for p in parsed]
    df["scene"] = [os.path.splitext(r)[0] for r in df["ref_id"]]
    df["name_scene"] = [p.scene for p in parsed]
    n_refs = df.groupby("name_scene")["ref_id"].nunique()
    split_scene = n_refs[n_refs > 1]
    if len(split_scene):
        key = split_scene.index[0]
        rows = df[df["name_scene"] == key].drop_duplicates("ref_id")
        detail = "; ".join(f"line {r.line}: {r.ref_id}" for r in rows.itertuples())
        raise ManifestError(
            f"{path}: the variants of scene {key!r} name two references ({detail}); a scene has one reference"
        )
    return df.drop(columns=["name_scene"])


def _check_ids(df: pd.DataFrame, col: str, path: Path) -> None:
    """Refuse the first line whose ``col`` cannot be a file name, saying why; strip spaces."""
    raw = df[col]
    ids = raw.str.strip()
    checks = [  # (refused, why), in the order a line's reasons are told
        # on the raw text: strip() would quietly drop a leading tab or a trailing newline
        (raw.str.contains(_CONTROL), None),
        (ids == "", None),
        (ids.str.contains(r"[/\\]", regex=True), "contains a path separator; use file names"),
        (ids.isin([".", ".."]), "is not a file name"),
        (
            ids.map(lambda v: len(v.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES),
            f"is longer than {MAX_ID_BYTES} bytes in UTF-8, the longest file name",
        ),
        (
            ids.str.match(_FORMULA_START),
            "starts with a character a spreadsheet runs as a formula (= + - @); rename the file",
        ),
    ]
    bad = checks[0][0].copy()
    for refused, _ in checks[1:]:
        bad |= refused
    if bad.any():
        i = int(bad.to_numpy().argmax())
        line, value = df["line"].iloc[i], raw.iloc[i]
        k = next(k for k, (refused, _) in enumerate(checks) if refused.iloc[i])
        if k == 0:
            char = _CONTROL.search(value).group()
            why = f"contains the control character U+{ord(char):04X}; ids are file names: remove it"
        elif k == 1:
            raise ManifestError(f"{path}: line {line}: empty {col}")
        else:
            why = checks[k][1]
        shown = value if k == 0 else ids.iloc[i]  # the raw text shows the control character, escaped
        raise ManifestError(f"{path}: line {line}: {col} {shown!r:.300} {why}")
    df[col] = ids


def _ids_by_name(s: Session, names: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for i in range(0, len(names), _CHUNK):
        chunk = names[i : i + _CHUNK]
        for name, image_id in s.execute(
            select(Image.name, func.min(Image.id)).where(Image.name.in_(chunk)).group_by(Image.name)
        ):
            out[name] = image_id
    return out


def import_manifest(
    ws: Workspace,
    path: str | os.PathLike[str],
    *,
    split: str,
    replace: bool = False,
) -> ManifestReport:
    """Import a released manifest into the catalog in one transaction.

    Parameters
    ----------
    ws : Workspace
        The workspace; the import (one unit of work) commits on success and rolls back on any error.
    path : path-like
        The CSV (``img_id,ref_id,score``).
    split : str
        The split name its rows join (e.g. ``train``).
    replace : bool
        Replace the split's existing membership; without it, importing into a split that
        already has other members is refused.

    Returns
    -------
    ManifestReport

    Notes
    -----
    Importing the same file twice changes nothing. Linking files (``iea import-manifest
    --images DIR``) is done afterwards by an ingest of those files.
    """
    if not split or not split.strip():
        raise IeaError("split must be a non-empty name such as 'train'")
    df = read_manifest(path)
    source = f"manifest:{split}"
    now = utcnow()
    with ws.unit() as uow:
        session = uow.session
        existing_split = session.scalar(select(func.count()).select_from(SplitMember).where(SplitMember.split == split))
        if existing_split and not replace:
            raise IeaError(
                f"split {split!r} already has {existing_split} images; pass --replace to replace its membership"
            )
        if existing_split:
            session.execute(delete(SplitMember).where(SplitMember.split == split))
        # scenes
        scene_names = sorted(set(df["scene"]))
        insert_ignore(
            session,
            Scene.__table__,
            [{"name": n, "source": "manifest", "created_at": now} for n in scene_names],
            conflict=["name"],
        )
        scene_ids: dict[str, int] = {}
        scene_refs: dict[str, Optional[int]] = {}
        for i in range(0, len(scene_names), _CHUNK):
            for sid, name, ref in session.execute(
                select(Scene.id, Scene.name, Scene.reference_image_id).where(
                    Scene.name.in_(scene_names[i : i + _CHUNK])
                )
            ):
                scene_ids[name] = sid
                scene_refs[name] = ref
        # images (variants and references), missing until a file is linked
        names = list(dict.fromkeys(list(df["img_id"]) + list(df["ref_id"])))
        ids = _ids_by_name(session, names)
        new = [n for n in names if n not in ids]
        if new:
            session.execute(
                Image.__table__.insert(),
                [{"name": n, "status": "missing", "created_at": now, "updated_at": now} for n in new],
            )
        ids.update(_ids_by_name(session, new))
        # references
        refs = df.drop_duplicates("scene")[["scene", "ref_id", "line"]]
        ref_updates, scene_updates = [], []
        for r in refs.itertuples():
            ref_id = ids[r.ref_id]
            current = scene_refs[r.scene]
            if current is not None and current != ref_id:
                cur_name = session.scalar(select(Image.name).where(Image.id == current))
                raise ManifestError(
                    f"{path}: line {r.line}: scene {r.scene!r} already has reference {cur_name!r} in the catalog, "
                    f"the manifest says {r.ref_id!r}; fix one of them (`iea scenes set-reference`)"
                )
            ref_updates.append({"b_id": ref_id, "b_scene": scene_ids[r.scene]})
            scene_updates.append({"b_id": scene_ids[r.scene], "b_ref": ref_id})
        session.execute(
            update(Image.__table__)
            .where(Image.__table__.c.id == bindparam("b_id"))
            .values(scene_id=bindparam("b_scene"), variant=None, ev=None),
            ref_updates,
        )
        session.execute(
            update(Scene.__table__)
            .where(Scene.__table__.c.id == bindparam("b_id"))
            .values(reference_image_id=bindparam("b_ref")),
            scene_updates,
        )
        # variants
        session.execute(
            update(Image.__table__)
            .where(Image.__table__.c.id == bindparam("b_id"))
            .values(scene_id=bindparam("b_scene"), variant=bindparam("b_variant"), ev=bindparam("b_ev")),
            [
                {"b_id": ids[r.img_id], "b_scene": scene_ids[r.scene], "b_variant": r.variant, "b_ev": r.ev}
                for r in df.itertuples()
            ],
        )
        # scores: insert the new ones, update changed values
        image_ids = [ids[n] for n in df["img_id"]]
        insert_ignore(
            session,
            Score.__table__,
            [
                {"image_id": iid, "value": float(v), "source": source, "created_at": now}
                for iid, v in zip(image_ids, df["score"])
            ],
            conflict=["image_id", "source"],
        )
        session.execute(
            update(Score.__table__)
            .where(Score.__table__.c.image_id == bindparam("b_image"), Score.__table__.c.source == source)
            .values(value=bindparam("b_value")),
            [{"b_image": iid, "b_value": float(v)} for iid, v in zip(image_ids, df["score"])],
        )
        # membership, in file order
        session.execute(
            SplitMember.__table__.insert(),
            [
                {"split": split, "image_id": iid, "position": pos, "source": os.path.basename(path), "created_at": now}
                for pos, iid in enumerate(image_ids)
            ],
        )
    n_missing = 0
    all_ids = list(set(ids.values()))
    with ws.unit() as uow:
        for i in range(0, len(all_ids), _CHUNK):
            n_missing += uow.session.scalar(
                select(func.count())
                .select_from(Image)
                .where(Image.id.in_(all_ids[i : i + _CHUNK]), Image.status == "missing")
            )
    return ManifestReport(
        split=split, n_rows=len(df), n_scenes=len(scene_names), n_images_new=len(new), n_missing_files=n_missing
    )


def _csv_cell(value: str) -> str:
    """One CSV cell; quoted when it looks like a formula or holds a comma, quote or line break.

    Otherwise as ``csv.writer`` writes it (so the released files round-trip byte for byte),
    except that a lone CR is quoted too (``csv.writer`` with a ``\\n`` terminator leaves it bare).

    >>> _csv_cell("a.png"), _csv_cell("=1+2"), _csv_cell('say "hi", x')
    ('a.png', '"=1+2"', '"say ""hi"", x"')
    """
    if _FORMULA_START.match(value) or any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def export_manifest(ws: Workspace, split: str, out: str | os.PathLike[str] | None = None) -> str:
    """Write the split's rows back in the released format (file order kept); return the CSV text.

    Each row's score is the one from the split's manifest (``manifest:<split>``), else the
    newest score of the image. Rows without a scene reference are refused. A cell that a
    spreadsheet would read as a formula (an ingested file name such as ``=x.png``; import
    refuses such ids) is always written in double quotes.

    Examples
    --------
    >>> import tempfile
    >>> from iea_data.store import init_workspace
    >>> export_manifest(init_workspace(tempfile.mkdtemp()), "train")
    Traceback (most recent call last):
    ...
    iea_data.core.errors.NotFoundError: split 'train' has no images; known splits: none
    """
    with ws.unit() as uow:
        return _export_manifest(uow.session, split, out)


def _export_manifest(session: Session, split: str, out: str | os.PathLike[str] | None) -> str:
    ref = Image.__table__.alias("ref")
    rows = session.execute(
        select(Image.name, ref.c.name, Image.id)
        .select_from(SplitMember)
        .join(Image, Image.id == SplitMember.image_id)
        .join(Scene, Scene.id == Image.scene_id, isouter=True)
        .join(ref, ref.c.id == Scene.reference_image_id, isouter=True)
        .where(SplitMember.split == split)
        .order_by(SplitMember.position, SplitMember.id)
    ).all()
    if not rows:
        known = session.scalars(select(SplitMember.split).distinct()).all()
        raise NotFoundError(f"split {split!r} has no images; known splits: {', '.join(sorted(known)) or 'none'}")
    from_manifest: dict[int, float] = {}
    newest: dict[int, float] = {}
    ids = [r[2] for r in rows]
    for i in range(0, len(ids), _CHUNK):
        for image_id, value, source in session.execute(
            select(Score.image_id, Score.value, Score.source)
            .where(Score.image_id.in_(ids[i : i + _CHUNK]))
            .order_by(Score.created_at, Score.id)
        ):
            newest[image_id] = value
            if source == f"manifest:{split}":
                from_manifest[image_id] = value
    scores = {**newest, **from_manifest}
    buf = io.StringIO()
    buf.write(",".join(MANIFEST_COLUMNS) + "\n")
    for name, ref_name, image_id in rows:
        if ref_name is None:
            raise IeaError(
                f"image {name!r} of split {split!r} has no scene reference; set one with `iea scenes set-reference`"
            )
        if image_id not in scores:
            raise IeaError(f"image {name!r} of split {split!r} has no score")
        buf.write(",".join(_csv_cell(c) for c in (name, ref_name, format_score(scores[image_id]))) + "\n")
    text = buf.getvalue()
    if out is not None:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = text[exc.start : exc.end].encode("utf-8", "backslashreplace").decode("ascii")
            raise IeaError(
                f"split {split!r} holds a file name that is not valid UTF-8 (at {bad}); "
                "a manifest is UTF-8 text: rename the file and ingest it again"
            ) from None
        atomic_write(out, data)
    return text


def link_missing_files(workspace: Workspace, images_dir: str | os.PathLike[str], *, progress=None):
    """Ingest the files in ``images_dir`` named like catalog rows that have no file yet.

    Returns the ingest report, or None when no such file is there.
    """
    from ._ingest import ingest

    folder = Path(images_dir)
    if not folder.is_dir():
        raise IeaError(f"--images {folder} is not a folder")
    with workspace.unit() as uow:
        names = list(
            uow.session.scalars(
                select(Image.name).where(Image.status == "missing", Image.sha256.is_(None)).order_by(Image.id)
            )
        )
    files = [folder / n for n in names if (folder / n).exists()]
    if not files:
        return None
    return ingest(workspace, files, group="none", progress=progress, kind="manifest-link")
