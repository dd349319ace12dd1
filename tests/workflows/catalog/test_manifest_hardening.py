"""Hostile manifests (issue 10, section 7): ids are file names, spreadsheets never run a cell.

Every refusal names the line and imports nothing; a header-only CSV is a one-line error; an
export never writes a formula-looking cell unquoted. The released manifests still round-trip
byte for byte (tests/workflows/catalog/test_manifest.py).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata

import pytest
from conftest import run_iea
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from iea_data.core.errors import ManifestError
from iea_data.store import Image, Scene, Score, SplitMember
from iea_data.workflows.catalog import export_manifest, import_manifest, read_manifest

from ..conftest import reader


def _cell(v: str) -> str:
    # minimal quoting, CR included (csv.writer with a "\n" terminator leaves a lone CR bare)
    return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\r\n') else v


def write_rows(path, rows):
    """A manifest as a careful CSV writer would write it (quoting commas, quotes and line breaks)."""
    lines = ["img_id,ref_id,score"] + [",".join(_cell(c) for c in row) for row in rows]
    path.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path


def assert_nothing_imported(ws):
    with reader(ws) as s:
        for model in (Image, Scene, Score, SplitMember):
            assert s.scalar(select(func.count()).select_from(model)) == 0, model.__name__


HOSTILE = {
    "NUL": ("a\x00b_N1.png", "U\\+0000"),
    "newline": ("a\nb_N1.png", "U\\+000A"),
    "carriage return": ("ab_N1.png\r", "U\\+000D"),
    "ESC (terminal colours)": ("\x1b[31mred_N1.png", "U\\+001B"),
    "leading tab (OWASP)": ("\t=1+2_N1.png", "U\\+0009"),
    "DEL": ("a\x7f_N1.png", "U\\+007F"),
    "C1 NEL": ("a\x85_N1.png", "U\\+0085"),
    "C1 CSI": ("a\x9b31m_N1.png", "U\\+009B"),
    "dot": (".", "is not a file name"),
    "dot dot": ("..", "is not a file name"),
    "dot dot with spaces": (" .. ", "is not a file name"),
    "256 bytes": ("é" * 126 + "_N1.png", "longer than 255 bytes"),
    "formula =": ("=cmd|' -c calc'!A0", "formula"),
    "formula +": ("+1+cmd_N1.png", "formula"),
    "formula -": ("-2+3_N1.png", "formula"),
    "formula @": ("@SUM(1+9)*cmd_N1.png", "formula"),
    "formula after spaces": ("  =1+2_N1.png", "formula"),
    "backslash": ("a\\b_N1.png", "path separator"),
}


@pytest.mark.parametrize("column", ["img_id", "ref_id"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_an_id_that_cannot_be_a_file_name_is_refused_with_its_line(sqlite_workspace, tmp_path, case, column):
    hostile, why = HOSTILE[case]
    row = [hostile, "b.png", "3"] if column == "img_id" else ["b_N1.png", hostile, "3"]
    path = write_rows(tmp_path / "bad.csv", [["a_N1.png", "a.png", "4"], row])
    with pytest.raises(ManifestError, match=rf"line 3: {column} .*{why}") as info:
        import_manifest(sqlite_workspace, path, split="train")
    msg = str(info.value)
    assert "\n" not in msg and "\x1b" not in msg and "\x00" not in msg  # printable on one line
    assert_nothing_imported(sqlite_workspace)


def test_the_first_bad_line_is_named_whatever_is_wrong_with_it(sqlite_workspace, tmp_path):
    path = write_rows(
        tmp_path / "bad.csv",
        [["ok_N1.png", "ok.png", "4"], ["=1+2_N1.png", "a.png", "3"], ["\x1bx_N1.png", "x.png", "3"]],
    )
    with pytest.raises(ManifestError, match="line 3: img_id '=1\\+2_N1.png' starts with"):
        import_manifest(sqlite_workspace, path, split="train")


def test_ids_at_the_limits_are_accepted_and_round_trip(sqlite_workspace, tmp_path):
    longest = "é" * 124 + "_N1.png"  # 255 bytes
    assert len(longest.encode()) == 255
    rows = [
        [longest, "é" * 124 + ".png", "3"],
        ["a-b+c=d@e_N1.png", "a-b+c=d@e.png", "4"],  # formula characters after the first are fine
        ["...x_N1.png", "...x.png", "5"],
        ["with space, comma_N1.png", 'with "quote".png', "6"],
        ["ünïcödé_P0.png", "ünïcödé.png", "7.25"],
    ]
    path = write_rows(tmp_path / "ok.csv", rows)
    report = import_manifest(sqlite_workspace, path, split="train")
    assert report.n_rows == 5
    assert export_manifest(sqlite_workspace, "train").encode("utf-8") == path.read_bytes()


def test_header_only_csv_is_a_one_line_error_on_every_backend(workspace, tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("img_id,ref_id,score\n")
    with pytest.raises(ManifestError, match="no rows after the header"):
        import_manifest(workspace, path, split="train")
    assert_nothing_imported(workspace)


def test_a_hostile_id_imports_nothing_on_every_backend(workspace, tmp_path):
    path = write_rows(tmp_path / "bad.csv", [["a_N1.png", "a.png", "4"], ["=cmd|' -c calc'!A0", "a.png", "3"]])
    with pytest.raises(
        ManifestError, match=r"line 3: img_id \"=cmd\|' -c calc'!A0\" starts with a character a spreadsheet runs"
    ):
        import_manifest(workspace, path, split="train")
    assert_nothing_imported(workspace)


# ------------------------------------------------------------------ the CLI


@pytest.mark.parametrize(
    "text,pattern",
    [
        ("img_id,ref_id,score\n", r"no rows after the header"),
        ("img_id,ref_id,score\n\"=cmd|' -c calc'!A0\",a.png,3\n", r"line 2: img_id .* formula"),
        (
            "img_id,ref_id,score\n\x1b[31mred_N1.png,a.png,3\n",
            r"line 2: img_id '\\x1b\[31mred_N1.png' contains the control character U\+001B",
        ),
    ],
    ids=["header only", "formula", "ESC"],
)
def test_cli_refuses_with_one_line_and_exit_1(sqlite_workspace, tmp_path, text, pattern):
    path = tmp_path / "m.csv"
    path.write_bytes(text.encode("utf-8"))
    res = run_iea("-w", str(sqlite_workspace.root), "import-manifest", str(path), "--split", "train")
    assert res.returncode == 1, res.stdout + res.stderr
    err = res.stderr.strip()
    assert "unexpected error" not in err and "Traceback" not in err and "StatementError" not in err
    assert len(err.splitlines()) == 1, err
    assert re.search(pattern, err), err
    assert "\x1b[31m" not in res.stderr + res.stdout  # the id's escape code is not passed to the terminal
    assert_nothing_imported(sqlite_workspace)


# ------------------------------------------------------------------ export: defence in depth


def test_export_quotes_a_formula_looking_name_that_came_from_elsewhere(sqlite_workspace, tmp_path):
    """Ingest takes any file name; a name such as "=HYPERLINK(...)" is written quoted, never bare."""
    path = write_rows(tmp_path / "ok.csv", [["a_N1.png", "a.png", "4"], ["b_N1.png", "b.png", "2.5"]])
    hostile = {"a_N1.png": "=cmd|' -c calc'!A0", "b.png": "@SUM(1+9)*cmd.png", "b_N1.png": "\t-1+2.png"}
    with reader(sqlite_workspace) as s:
        import_manifest(sqlite_workspace, path, split="train")
        with s.begin():
            for old, new in hostile.items():
                s.execute(update(Image).where(Image.name == old).values(name=new))
        text = export_manifest(sqlite_workspace, "train")
    lines = text.splitlines()
    assert lines[0] == "img_id,ref_id,score"
    assert lines[1] == "\"=cmd|' -c calc'!A0\",a.png,4"
    assert lines[2] == '"\t-1+2.png","@SUM(1+9)*cmd.png",2.5'
    for line in lines[1:]:
        assert not any(c[:1] in "=+-@\t\r" for c in line.split(",")), line  # no bare formula cell
    assert list(csv.reader(io.StringIO(text)))[1:] == [
        ["=cmd|' -c calc'!A0", "a.png", "4"],
        ["\t-1+2.png", "@SUM(1+9)*cmd.png", "2.5"],
    ]
    # and such an export cannot be imported back as it stands: the first bad line is named
    (tmp_path / "back.csv").write_text(text)
    with reader(sqlite_workspace) as s:
        with pytest.raises(ManifestError, match="line 2: img_id .* formula"):
            import_manifest(sqlite_workspace, tmp_path / "back.csv", split="again")


# ------------------------------------------------------------------ any id


def _acceptable(name: str) -> bool:
    v = name.strip()
    return (
        not any(unicodedata.category(c) == "Cc" for c in name)
        and v not in ("", ".", "..")
        and "/" not in v
        and "\\" not in v
        and len(v.encode("utf-8")) <= 255
        and v[:1] not in "=+-@"
    )


_ids = st.one_of(
    st.text(min_size=0, max_size=12),
    st.text(alphabet=st.sampled_from(list('=+-@ .\t\r\n\x00\x1b\x7f\x85/\\aé_,"')), max_size=8),
    st.integers(250, 260).map(lambda n: "a" * (n - 4) + ".png"),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(img=_ids, ref=_ids)
def test_any_id_is_refused_naming_line_2_or_accepted_as_a_file_name(tmp_path, img, ref):
    path = write_rows(tmp_path / "m.csv", [[img, ref, "5"]])
    try:
        df = read_manifest(path)
    except ManifestError as exc:
        assert ": line 2: " in str(exc) or "two references" in str(exc), str(exc)
        assert "\n" not in str(exc)
        assert not (_acceptable(img) and _acceptable(ref)) or "two references" in str(exc)
        return
    assert _acceptable(img) and _acceptable(ref)
    assert df["img_id"].tolist() == [img.strip()] and df["ref_id"].tolist() == [ref.strip()]
