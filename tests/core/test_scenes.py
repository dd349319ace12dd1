"""Tests for :mod:`iea_data.core.scenes` (file-name, EXIF and sidecar grouping)."""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iea_data.core.errors import IeaError, ManifestError
from iea_data.core.scenes import (
    IEA40K_VARIANTS,
    Conflict,
    SceneGroup,
    VariantName,
    ev_offsets,
    format_ev_tag,
    group_by_exif,
    group_by_filename,
    parse_variant_name,
    read_sidecar,
    variant_sort_key,
)

MANIFESTS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "iea40k-manifests"

# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a0001-jmac_DSC1459_N1.png", VariantName("a0001-jmac_DSC1459", "N1", None)),
        ("a0001-jmac_DSC1459_P0.png", VariantName("a0001-jmac_DSC1459", "P0", None)),
        (
            "a4124-20080709_at_10h04m23__MG_4561_N1.png",
            VariantName("a4124-20080709_at_10h04m23__MG_4561", "N1", None),
        ),
        ("a0001-jmac_DSC1459.png", VariantName("a0001-jmac_DSC1459", None, None)),
        ("shot_-1EV.jpg", VariantName("shot", "-1EV", -1.0)),
        ("shot_+2ev.jpg", VariantName("shot", "+2EV", 2.0)),
        ("shot_2EV.jpg", VariantName("shot", "+2EV", 2.0)),
        ("shot_0EV.jpg", VariantName("shot", "0EV", 0.0)),
        ("shot_-0EV.jpg", VariantName("shot", "0EV", 0.0)),
        ("shot_-0.5EV.tif", VariantName("shot", "-0.5EV", -0.5)),
        ("shot_+1.5ev", VariantName("shot", "+1.5EV", 1.5)),
        ("shot_-0.5EV", VariantName("shot", "-0.5EV", -0.5)),
        ("shot_+1.50Ev.JPEG", VariantName("shot", "+1.5EV", 1.5)),
        ("shot_.5EV.png", VariantName("shot", "+0.5EV", 0.5)),
        ("shot_m1ev.png", VariantName("shot", "-1EV", -1.0)),
        ("shot_P1EV.png", VariantName("shot", "+1EV", 1.0)),
        ("shot_P0.5EV", VariantName("shot", "+0.5EV", 0.5)),
        ("shot_P0.5ev.png", VariantName("shot", "+0.5EV", 0.5)),
        ("dir/sub/shot_N4.png", VariantName("shot", "N4", None)),
        ("my photo ü_N2.webp", VariantName("my photo ü", "N2", None)),
        # Not tokens: part of the scene.
        ("shot_N5.png", VariantName("shot_N5", None, None)),
        ("shot_n1.png", VariantName("shot_n1", None, None)),
        ("shot_N1_v2.png", VariantName("shot_N1_v2", None, None)),
        ("shot_EV.png", VariantName("shot_EV", None, None)),
        ("_N1.png", VariantName("_N1", None, None)),
        ("shot.png", VariantName("shot", None, None)),
        ("shot", VariantName("shot", None, None)),
        (".hidden", VariantName(".hidden", None, None)),
        # Only the last token counts.
        ("x_N1_P2.png", VariantName("x_N1", "P2", None)),
        ("x__N1.png", VariantName("x_", "N1", None)),
    ],
)
def test_parse_variant_name_cases(name, expected):
    assert parse_variant_name(name) == expected


def test_parse_accepts_pathlike_and_uses_basename():
    assert parse_variant_name(Path("a_b") / "scene_N3.png") == VariantName("scene", "N3", None)
    assert parse_variant_name(PurePosixPath("x_N1/y.png")).variant is None


def test_parse_rejects_bad_input():
    with pytest.raises(TypeError, match="str or os.PathLike"):
        parse_variant_name(b"x_N1.png")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no basename"):
        parse_variant_name("some/dir/")


def _read_manifest_rows(name: str, limit: int) -> list[dict[str, str]]:
    path = MANIFESTS / name
    if not path.is_file():
        pytest.skip(f"reference manifest {path} is not present (shared data not mounted)")
    with path.open(newline="", encoding="utf-8") as fh:
        return list(itertools.islice(csv.DictReader(fh), limit))


@pytest.mark.reference
@pytest.mark.parametrize("manifest", ["train_256.csv", "valid_256_2ev.csv"])
def test_parse_real_iea40k_names(manifest):
    rows = _read_manifest_rows(manifest, 600)
    assert rows
    for row in rows:
        parsed = parse_variant_name(row["img_id"])
        assert parsed.scene == Path(row["ref_id"]).stem, row
        assert parsed.variant in IEA40K_VARIANTS, row
        assert parsed.ev is None
        ref = parse_variant_name(row["ref_id"])
        assert ref == VariantName(Path(row["ref_id"]).stem, None, None)


@pytest.mark.reference
def test_group_real_iea40k_names():
    rows = _read_manifest_rows("train_256.csv", 9 * 40)
    names = {r["img_id"] for r in rows} | {r["ref_id"] for r in rows}
    groups = group_by_filename(names)
    by_scene = {g.scene: g for g in groups}
    assert len(by_scene) == len({r["ref_id"] for r in rows})
    for r in rows:
        g = by_scene[Path(r["ref_id"]).stem]
        assert g.reference == r["ref_id"]
        assert r["img_id"] in g.variants.values()
        assert not g.conflicts
    full = [g for g in groups if len(g.variants) == 9]
    assert full and all(list(g.variants) == list(IEA40K_VARIANTS) for g in full)


# Scene names: any text without path separators (and not starting a hidden-file
# ambiguity: a scene is never empty).
scene_names = st.text(
    alphabet=st.one_of(
        st.sampled_from("_ -.0123456789abcXYZ"),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00"),
    ),
    min_size=1,
    max_size=30,
)

np_tokens = st.sampled_from(IEA40K_VARIANTS).map(lambda t: (t, t, None))


@st.composite
def ev_tokens(draw):
    """(written token, canonical tag, value) for EV tags in varied spellings."""
    whole = draw(st.integers(0, 12))
    frac = draw(st.sampled_from(["", "5", "25", "50", "333", "7"]))
    sign = draw(st.sampled_from(["", "+", "-", "m", "p", "M", "P"]))
    ev_word = draw(st.sampled_from(["EV", "ev", "Ev", "eV"]))
    zeros = draw(st.sampled_from(["", "0"]))
    number = zeros + str(whole) + ("." + frac if frac else "")
    value = float(number) * (-1.0 if sign in ("-", "m", "M") else 1.0) + 0.0
    return sign + number + ev_word, format_ev_tag(value), value


@settings(max_examples=300, deadline=None)
@given(
    scene=scene_names,
    token=st.one_of(np_tokens, ev_tokens()),
    ext=st.sampled_from([".png", ".JPG", ".tiff", ".dng", ""]),
)
def test_parse_random_scene_and_token(scene, token, ext):
    written, canonical, value = token
    parsed = parse_variant_name(f"{scene}_{written}{ext}")
    assert parsed.scene == scene
    assert parsed.variant == canonical
    assert parsed.ev == value
    # The canonical spelling reads back the same.
    assert parse_variant_name(f"{scene}_{canonical}{ext}") == parsed


@settings(max_examples=300, deadline=None)
@given(ev=st.floats(allow_nan=False, allow_infinity=False))
def test_ev_tag_round_trip(ev):
    tag = format_ev_tag(ev)
    assert "e" not in tag[:-2].lower()
    parsed = parse_variant_name(f"s_{tag}.png")
    assert parsed.variant == tag
    assert parsed.ev == ev
    assert format_ev_tag(parsed.ev) == tag


@pytest.mark.parametrize(
    ("ev", "tag"),
    [(-1, "-1EV"), (2, "+2EV"), (0.5, "+0.5EV"), (0, "0EV"), (-0.0, "0EV"), (1e-7, "+0.0000001EV")],
)
def test_format_ev_tag(ev, tag):
    assert format_ev_tag(ev) == tag


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_format_ev_tag_rejects_non_finite(bad):
    with pytest.raises(ValueError, match="finite"):
        format_ev_tag(bad)


def test_variant_sort_key_orders_dark_to_bright():
    tags = ["P4", "N1", "+1EV", "custom", "N4", "P0", "-2EV", "0EV"]
    assert sorted(tags, key=variant_sort_key) == [
        "N4",
        "N1",
        "P0",
        "P4",
        "-2EV",
        "0EV",
        "+1EV",
        "custom",
    ]


# --------------------------------------------------------------------------- grouping


def _as_tuple(groups: list[SceneGroup]):
    return [(g.directory, g.scene, g.reference, list(g.variants.items()), g.evs, g.conflicts) for g in groups]


def test_group_attaches_reference_and_orders_variants():
    names = ["s_P1.png", "s_N2.png", "s.png", "s_P0.png", "t_+1EV.jpg", "t_-1EV.jpg"]
    groups = group_by_filename(names)
    assert [(g.scene, g.reference) for g in groups] == [("s", "s.png"), ("t", None)]
    assert list(groups[0].variants) == ["N2", "P0", "P1"]
    assert groups[0].evs == {"N2": None, "P0": None, "P1": None}
    assert groups[1].variants == {"-1EV": "t_-1EV.jpg", "+1EV": "t_+1EV.jpg"}
    assert groups[1].evs == {"-1EV": -1.0, "+1EV": 1.0}
    assert groups[0].names() == ["s.png", "s_N2.png", "s_P0.png", "s_P1.png"]


def test_single_variant_is_a_scene_and_singletons_are_optional():
    names = ["only_N1.png", "plain.png", "other.jpg"]
    assert [g.scene for g in group_by_filename(names)] == ["only"]
    groups = group_by_filename(names, include_singletons=True)
    assert [(g.scene, g.reference, g.variants) for g in groups] == [
        ("only", None, {"N1": "only_N1.png"}),
        ("other", "other.jpg", {}),
        ("plain", "plain.png", {}),
    ]


def test_folders_do_not_merge_and_paths_are_kept():
    names = [Path("a") / "s_N1.png", "b/s_N1.png", "a/s.png", "./b/s_P0.png", "b/../c/s.png"]
    groups = group_by_filename(names, include_singletons=True)
    assert [(g.directory, g.scene) for g in groups] == [("a", "s"), ("b", "s"), ("c", "s")]
    a, b, c = groups
    assert a.reference == "a/s.png" and a.variants == {"N1": str(Path("a") / "s_N1.png")}
    assert b.reference is None and b.variants == {"N1": "b/s_N1.png", "P0": "./b/s_P0.png"}
    assert c.reference == "b/../c/s.png" and not c.variants


def test_reference_must_be_in_the_same_folder():
    groups = group_by_filename(["a/s_N1.png", "b/s.png"])
    assert [(g.directory, g.reference) for g in groups] == [("a", None)]


def test_duplicates_are_recorded_not_raised():
    names = ["x_N1.png", "x_N1.jpg", "x.png", "x.tif", "x_-1EV.png", "x_-1.0ev.png", "x_N1.png"]
    (g,) = group_by_filename(names)
    assert g.reference == "x.png"
    assert g.variants == {"N1": "x_N1.jpg", "-1EV": "x_-1.0ev.png"}
    assert g.conflicts == [
        Conflict("N1", "x_N1.jpg", "x_N1.png"),
        Conflict("-1EV", "x_-1.0ev.png", "x_-1EV.png"),
        Conflict(None, "x.png", "x.tif"),
    ]


def test_group_rejects_a_bare_string_and_non_names():
    with pytest.raises(TypeError, match="wrap a single name in a list"):
        group_by_filename("x_N1.png")
    with pytest.raises(TypeError, match="got int"):
        group_by_filename(["x_N1.png", 3])  # type: ignore[list-item]


group_names = st.lists(
    st.builds(
        lambda d, s, t: f"{d}{s}{t}.png",
        st.sampled_from(["", "a/", "b/", "a/b/"]),
        st.sampled_from(["s", "s_x", "t", "ü u"]),
        st.sampled_from(["", "_N1", "_N2", "_P0", "_P3", "_-1EV", "_+1ev", "_-1.0EV", "_N9"]),
    ),
    max_size=25,
)


@settings(max_examples=150, deadline=None)
@given(data=st.data(), names=group_names, singletons=st.booleans())
def test_grouping_is_invariant_to_input_order(data, names, singletons):
    shuffled = data.draw(st.permutations(names))
    expected = _as_tuple(group_by_filename(names, include_singletons=singletons))
    assert _as_tuple(group_by_filename(shuffled, include_singletons=singletons)) == expected


@settings(max_examples=150, deadline=None)
@given(names=group_names)
def test_every_name_is_placed_once(names):
    groups = group_by_filename(names, include_singletons=True)
    placed = [n for g in groups for n in g.names()]
    dropped = [c.dropped for g in groups for c in g.conflicts]
    assert sorted(placed + dropped) == sorted(set(names))


# --------------------------------------------------------------------------- EXIF

T0 = datetime(2024, 5, 1, 12, 0, 0)


@dataclass
class Rec:
    key: str
    camera: str | None
    capture_time: datetime | None
    exposure_time: float | None = None
    exposure_bias: float | None = None


def _bracket(prefix, camera, start, times, step_s=1.0, biases=None):
    biases = biases or [None] * len(times)
    return [
        Rec(f"{prefix}{i}", camera, start + timedelta(seconds=i * step_s), t, b)
        for i, (t, b) in enumerate(zip(times, biases))
    ]


def test_bracket_within_window_groups():
    recs = _bracket("a", "Canon EOS R5", T0, [1 / 100, 1 / 200, 1 / 50])
    assert group_by_exif(recs) == [["a0", "a1", "a2"]]


def test_mappings_work_like_objects():
    recs = [vars(r) for r in _bracket("a", "cam", T0, [1 / 100, 1 / 200])]
    assert group_by_exif(recs) == [["a0", "a1"]]


def test_gap_splits():
    first = _bracket("a", "cam", T0, [1 / 100, 1 / 200, 1 / 50])
    second = _bracket("b", "cam", T0 + timedelta(seconds=30), [1 / 100, 1 / 200])
    assert group_by_exif(first + second) == [["a0", "a1", "a2"], ["b0", "b1"]]
    assert group_by_exif(first + second, window_s=40) == [["a0", "a1", "a2"], ["b0", "b1"]]
    spaced = _bracket("c", "cam", T0, [1 / 100, 1 / 200, 1 / 50], step_s=6)
    assert group_by_exif(spaced, window_s=5) == []
    assert group_by_exif(spaced, window_s=6) == [["c0", "c1", "c2"]]


def test_different_cameras_split():
    a = _bracket("a", "cam A", T0, [1 / 100, 1 / 200])
    b = _bracket("b", "cam B", T0 + timedelta(milliseconds=500), [1 / 100, 1 / 200])
    interleaved = [a[0], b[0], a[1], b[1]]
    assert group_by_exif(interleaved) == [["a0", "a1"], ["b0", "b1"]]


def test_identical_exposures_do_not_group():
    burst = _bracket("a", "cam", T0, [1 / 100] * 5, step_s=0.2, biases=[0.0] * 5)
    assert group_by_exif(burst) == []


def test_repeated_exposure_starts_a_new_bracket():
    times = [1 / 100, 1 / 200, 1 / 50] * 2
    recs = _bracket("a", "cam", T0, times)
    assert group_by_exif(recs) == [["a0", "a1", "a2"], ["a3", "a4", "a5"]]


def test_bias_only_brackets_group():
    recs = _bracket("a", "cam", T0, [None] * 3, biases=[0.0, -2.0, 2.0])
    assert group_by_exif(recs) == [["a0", "a1", "a2"]]


def test_records_without_camera_time_or_exposure_are_left_out():
    recs = _bracket("a", "cam", T0, [1 / 100, 1 / 200, 1 / 50])
    recs[1].camera = None
    assert group_by_exif(recs) == [["a0", "a2"]]
    recs = _bracket("a", "cam", T0, [1 / 100, 1 / 200, 1 / 50])
    recs[0].capture_time = None
    assert group_by_exif(recs) == [["a1", "a2"]]
    recs = _bracket("a", "cam", T0, [1 / 100, None, 1 / 50])
    assert group_by_exif(recs) == [["a0", "a2"]]


def test_unsorted_input_is_put_in_time_order():
    recs = _bracket("a", "cam", T0, [1 / 100, 1 / 200, 1 / 50])
    assert group_by_exif(recs[::-1]) == [["a0", "a1", "a2"]]


@pytest.mark.parametrize(
    ("records", "message"),
    [
        ([Rec("a", "c", T0, 0.0)], "exposure_time must be a finite number > 0"),
        ([Rec("a", "c", T0, 1.0), Rec("a", "c", T0, 2.0)], "key 'a' twice"),
        ([{"camera": "c"}], "no 'key'"),
        ([Rec("a", "c", "2024-01-01")], "capture_time must be a datetime"),  # type: ignore[arg-type]
        ([Rec("a", "c", T0, 1.0, math.nan)], "exposure_bias must be finite"),
        (
            [Rec("a", "c", T0, 1.0), Rec("b", "c", T0.replace(tzinfo=UTC), 2.0)],
            "naive and timezone-aware",
        ),
    ],
)
def test_exif_validation(records, message):
    with pytest.raises(ValueError, match=message):
        group_by_exif(records)


def test_exif_window_validation():
    with pytest.raises(ValueError, match="window_s"):
        group_by_exif([], window_s=-1)


def test_ev_offsets_sign_and_median_reference():
    recs = _bracket("a", "cam", T0, [1 / 100, 1 / 400, 1 / 25, 1 / 200, 1 / 50])
    assert ev_offsets(recs) == pytest.approx({"a0": 0.0, "a1": -2.0, "a2": 2.0, "a3": -1.0, "a4": 1.0})


def test_ev_offsets_do_not_count_the_bias_twice():
    # Aperture-priority AEB: the camera realises the bias through the exposure time.
    recs = _bracket("a", "cam", T0, [1 / 100, 1 / 200, 1 / 50], biases=[0.0, -1.0, 1.0])
    assert ev_offsets(recs) == {"a0": 0.0, "a1": -1.0, "a2": 1.0}


def test_ev_offsets_fall_back_to_bias_and_use_iso():
    recs = _bracket("a", "cam", T0, [None, None, 1 / 60], biases=[0.0, -0.7, 0.7])
    assert ev_offsets(recs) == pytest.approx({"a0": 0.0, "a1": -0.7, "a2": 0.7})
    iso = [
        {"key": 1, "exposure_time": 0.01, "iso": 100},
        {"key": 2, "exposure_time": 0.01, "iso": 400},
        {"key": 3, "exposure_time": 0.01, "iso": 200, "f_number": 4.0},
    ]
    assert ev_offsets(iso) == pytest.approx({1: -1.0, 2: 1.0, 3: 0.0})


def test_ev_offsets_even_count_and_edges():
    recs = _bracket("a", "cam", T0, [1 / 100, 1 / 200])
    assert ev_offsets(recs) == {"a0": 1.0, "a1": 0.0}
    assert ev_offsets([]) == {}
    with pytest.raises(ValueError, match="neither exposure_time nor exposure_bias"):
        ev_offsets([Rec("a", "c", T0), Rec("b", "c", T0, 1.0)])


@settings(max_examples=100, deadline=None)
@given(
    stops=st.lists(st.integers(-4, 4), min_size=2, max_size=7, unique=True),
    base=st.floats(1e-4, 1.0),
)
def test_ev_offsets_recover_the_steps(stops, base):
    recs = [Rec(f"k{i}", "c", T0, base * 2.0**s) for i, s in enumerate(stops)]
    median = sorted(stops)[(len(stops) - 1) // 2]
    expected = {f"k{i}": float(s - median) for i, s in enumerate(stops)}
    assert ev_offsets(recs) == pytest.approx(expected, abs=1e-9)
    assert group_by_exif(recs) == [[r.key for r in recs]]


# --------------------------------------------------------------------------- sidecar


def _sidecar(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenes.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_sidecar_minimal_and_full(tmp_path):
    rows = read_sidecar(_sidecar(tmp_path, "path,scene\na.jpg,s1\n\nb.jpg,s1\n"))
    assert [(r.line, r.path, r.scene, r.variant, r.ev, r.is_reference) for r in rows] == [
        (2, "a.jpg", "s1", None, None, False),
        (4, "b.jpg", "s1", None, None, False),
    ]
    text = (
        "\ufeffis_reference, path ,scene,variant,ev\n"
        "YES,ref.jpg,beach,,\n"
        "no,d.jpg,beach,n2,\n"
        "0,e.jpg,beach,-1ev,-1\n"
        ",f.jpg,beach,,+0.5\n"
        "false,g.jpg,beach,dusk,3\n"
        "1,h.jpg,other,,\n"
    )
    rows = read_sidecar(_sidecar(tmp_path, text))
    assert [(r.path, r.variant, r.ev, r.is_reference) for r in rows] == [
        ("ref.jpg", None, None, True),
        ("d.jpg", "N2", None, False),
        ("e.jpg", "-1EV", -1.0, False),
        ("f.jpg", "+0.5EV", 0.5, False),
        ("g.jpg", "dusk", 3.0, False),
        ("h.jpg", None, None, True),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty sidecar"),
        ("path,scene,is_ref\n", r"unknown column 'is_ref' \(did you mean 'is_reference'\?\)"),
        ("path,scene,foo,bar\n", "unknown columns 'foo', 'bar'"),
        ("path,path,scene\n", "line 1: column.*'path'.*more than once"),
        ("path,variant\n", "line 1: missing required column.*'scene'"),
        ("path,scene\na.jpg,s,extra\n", "line 2: 3 cell"),
        ("path,scene\na.jpg,s\n,s\n", "line 3: empty 'path'"),
        ("path,scene\na.jpg,\n", "line 2: empty 'scene'"),
        ("path,scene,ev\na.jpg,s,minus one\n", "line 2: 'ev' must be a number"),
        ("path,scene,ev\na.jpg,s,nan\n", "line 2: 'ev' must be finite"),
        ("path,scene,is_reference\na.jpg,s,maybe\n", "line 2: 'is_reference' must be one of"),
        ("path,scene,variant,ev\na.jpg,s,-1EV,2\n", "line 2: variant '-1EV' says -1 EV"),
        ("path,scene\na.jpg,s\na.jpg,t\n", "line 3: path 'a.jpg' is already listed on line 2"),
        (
            "path,scene,variant\na.jpg,s,N1\nb.jpg,s,n1\n",
            "line 3: scene 's' already has variant 'N1' \\(line 2\\)",
        ),
        (
            "path,scene,is_reference\na.jpg,s,yes\nb.jpg,t,yes\nc.jpg,s,true\n",
            "line 4: scene 's' already has a reference on line 2",
        ),
    ],
)
def test_read_sidecar_errors(tmp_path, text, message):
    with pytest.raises(ManifestError, match=message) as info:
        read_sidecar(_sidecar(tmp_path, text))
    assert isinstance(info.value, IeaError)
    assert "scenes.csv" in str(info.value)


def test_read_sidecar_unreadable(tmp_path):
    with pytest.raises(ManifestError, match="cannot read"):
        read_sidecar(tmp_path / "missing.csv")
    bad = tmp_path / "latin.csv"
    bad.write_bytes(b"path,scene\n\xe9.jpg,s\n")
    with pytest.raises(ManifestError, match="not UTF-8"):
        read_sidecar(bad)
