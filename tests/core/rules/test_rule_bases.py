"""Rule bases: every level of the five published rule bases fires on a map built for it;
invalid files are refused with the line named; statistics are consistent."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import iea_data.core.rules as rules
from iea_data.core.rules import (
    RuleBaseError,
    _rulebase,
    exposure_statistics,
    get_rule_base,
    list_rule_bases,
    load_rule_base,
    parse_rule_base,
    score_map,
)

SIZE = 100  # maps are SIZE x SIZE; the region mask is the left half


def _fill(values: np.ndarray, *, under=0.0, over=0.0, severe_under=0.0, severe_over=0.0, rest=0.0) -> None:
    """Fill a flat view: the first pixels severe under (-0.6), then under (-0.25), severe over, over, rest."""
    n = values.size
    counts = [
        round(severe_under * n),
        round((under - severe_under) * n),
        round(severe_over * n),
        round((over - severe_over) * n),
    ]
    assert all(c >= 0 for c in counts) and sum(counts) <= n, "bad test spec"
    vals = [-0.6, -0.25, 0.6, 0.25]
    values[:] = rest
    k = 0
    for c, v in zip(counts, vals):
        values[k : k + c] = v
        k += c


def make_map(whole=None, region=None, background=None):
    """A residual map with the given fractions, and the region mask (left half) when region/background given."""
    r = np.zeros((SIZE, SIZE), np.float32)
    if whole is not None:
        flat = r.reshape(-1)
        _fill(flat, **whole)
        return r, None
    mask = np.zeros((SIZE, SIZE), bool)
    mask[:, : SIZE // 2] = True
    reg = np.zeros(mask.sum(), np.float32)
    bg = np.zeros((~mask).sum(), np.float32)
    _fill(reg, **(region or {}))
    _fill(bg, **(background or {}))
    r[mask] = reg
    r[~mask] = bg
    return r, mask


# (rule base, expected score, map spec). Region specs are fractions of the region (left half)
# and of the background (right half); "whole" specs are fractions of the image.
LEVEL_CASES = [
    ("strict_landscape", 100, dict(whole=dict(under=0.01))),
    ("strict_landscape", 80, dict(whole=dict(over=0.04))),
    ("strict_landscape", 60, dict(whole=dict(under=0.05, over=0.05))),
    ("strict_landscape", 40, dict(whole=dict(over=0.20))),
    ("strict_landscape", 20, dict(whole=dict(under=0.35))),
    ("strict_landscape", 10, dict(whole=dict(under=0.45, severe_under=0.30))),
    ("strict_landscape", 0, dict(whole=dict(over=0.70, severe_over=0.60))),
    ("portrait_first", 100, dict(region={}, background=dict(under=0.10))),
    ("portrait_first", 90, dict(region={}, background=dict(over=0.20))),
    ("portrait_first", 80, dict(region=dict(over=0.03), background=dict(under=0.30))),
    ("portrait_first", 60, dict(region=dict(under=0.08), background={})),
    ("portrait_first", 40, dict(region=dict(under=0.18), background={})),
    ("portrait_first", 20, dict(region=dict(under=0.50, severe_under=0.50), background={})),
    ("portrait_first", 0, dict(region=dict(under=1.0, severe_under=1.0), background={})),
    ("street_documentary", 100, dict(region={}, background=dict(under=0.30))),
    ("street_documentary", 80, dict(region=dict(over=0.07), background={})),
    ("street_documentary", 60, dict(region=dict(under=0.15), background={})),
    ("street_documentary", 40, dict(region={}, background=dict(over=0.50))),
    ("street_documentary", 20, dict(region=dict(under=0.70, severe_under=0.50), background={})),
    ("street_documentary", 0, dict(region=dict(over=0.95, severe_over=0.95), background={})),
    ("night_low_light", 100, dict(whole=dict(under=0.35))),
    ("night_low_light", 80, dict(whole=dict(over=0.07))),
    ("night_low_light", 60, dict(whole=dict(over=0.15))),
    ("night_low_light", 60, dict(whole=dict(over=0.04, rest=0.099))),  # over-brightened: mean >= 0.1
    ("night_low_light", 40, dict(whole=dict(over=0.30))),
    ("night_low_light", 20, dict(whole=dict(over=0.95, severe_over=0.50))),
    ("night_low_light", 0, dict(whole=dict(under=1.0, severe_under=1.0))),  # pitch black
    ("night_low_light", 0, dict(whole=dict(over=0.95, severe_over=0.95))),  # washed out
    ("ecommerce_product", 100, dict(region={}, background=dict(over=0.40))),
    ("ecommerce_product", 80, dict(region=dict(under=0.03), background={})),
    ("ecommerce_product", 60, dict(region=dict(under=0.06, over=0.06), background={})),
    ("ecommerce_product", 40, dict(region=dict(over=0.25), background={})),
    ("ecommerce_product", 20, dict(region=dict(under=0.50, severe_under=0.30), background={})),
    ("ecommerce_product", 0, dict(region=dict(under=0.95, severe_under=0.95), background={})),
]


def test_five_published_rule_bases_are_registered():
    assert list_rule_bases() == [
        "ecommerce_product",
        "night_low_light",
        "portrait_first",
        "street_documentary",
        "strict_landscape",
    ]
    assert get_rule_base("portrait_first").region == "subject"
    assert get_rule_base("strict_landscape").region is None
    assert list_rule_bases("s*") == ["street_documentary", "strict_landscape"]


@pytest.mark.parametrize(
    "name,score,spec", LEVEL_CASES, ids=[f"{n}-{s}-{i}" for i, (n, s, _) in enumerate(LEVEL_CASES)]
)
def test_each_level_fires_on_a_map_built_for_it(name, score, spec):
    rb = get_rule_base(name)
    residual, mask = make_map(**spec)
    result = score_map(residual, rb, mask=mask)
    assert result.score == score, (result.condition, {k: round(v, 3) for k, v in result.statistics.items() if "." in k})
    assert rb.levels[result.level].score == score
    assert result.condition == rb.levels[result.level].condition
    assert result.region == ("none" if rb.region is None else "mask")


def test_every_level_of_every_rule_base_is_covered_by_a_case():
    covered = {(n, s) for n, s, _ in LEVEL_CASES}
    for name in list_rule_bases():
        for lv in get_rule_base(name).levels:
            assert (name, lv.score) in covered, f"no synthetic map for {name} level {lv.score}"


def test_region_rule_base_without_mask_uses_whole_image_and_says_so():
    rb = get_rule_base("portrait_first")
    residual, mask = make_map(region=dict(under=0.5), background={})
    with_mask = score_map(residual, rb, mask=mask)
    without = score_map(residual, rb)
    assert with_mask.region == "mask" and without.region == "whole image"
    # the subject is half bad; over the whole image only a quarter is
    assert with_mask.statistics["region.bad"] == pytest.approx(0.5)
    assert without.statistics["region.bad"] == pytest.approx(0.25)
    assert with_mask.score < without.score or with_mask.score == without.score == 20


def test_thresholds_are_settings_of_the_rule_base():
    rb = get_rule_base("strict_landscape")
    r = np.full((SIZE, SIZE), 0.09, np.float32)  # every pixel 0.09 too bright
    assert score_map(r, rb).score == 10  # at 0.08 every pixel is overexposed (but none clipped)
    looser = rb.with_thresholds(under=0.1, over=0.1)
    assert score_map(r, looser).score == 100
    with pytest.raises(ValueError, match="under"):
        rb.with_thresholds(under=0.0)
    with pytest.raises(ValueError, match="unknown threshold"):
        rb.with_thresholds(gamma=0.2)


def test_scores_are_from_the_published_tables():
    published = {
        "portrait_first": [100, 90, 80, 60, 40, 20, 0],
        "strict_landscape": [100, 80, 60, 40, 20, 10, 0],
        "street_documentary": [100, 80, 60, 40, 20, 0],
        "night_low_light": [100, 80, 60, 40, 20, 0],
        "ecommerce_product": [100, 80, 60, 40, 20, 0],
    }
    for name, scores in published.items():
        assert [lv.score for lv in get_rule_base(name).levels] == scores


def test_builtin_files_match_the_json_schema():
    jsonschema = pytest.importorskip("jsonschema", reason="jsonschema is not installed")
    schema = json.loads(rules.SCHEMA_PATH.read_text())
    for name in list_rule_bases():
        data = json.loads((rules.RULES_DIR / f"{name}.json").read_text())
        jsonschema.validate(data, schema)
        # and the library's own serialisation round-trips
        rb = get_rule_base(name)
        assert parse_rule_base(_rulebase.dumps(rb)) == rb.__class__(**{**rb.__dict__, "path": None})
    bad = json.loads((rules.RULES_DIR / "strict_landscape.json").read_text())
    bad["thresholds"]["over"] = 1.5
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


# --------------------------------------------------------------------------- invalid files


def _builtin_text(name="strict_landscape") -> str:
    return (rules.RULES_DIR / f"{name}.json").read_text()


def _line_containing(text: str, needle: str, start: int = 0) -> int:
    idx = text.index(needle, start)
    return text.count("\n", 0, idx) + 1


def _write(tmp_path, text, name="custom.json"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_bad_threshold_is_refused_with_its_line(tmp_path):
    text = _builtin_text().replace('"over": 0.08', '"over": 1.5')
    p = _write(tmp_path, text)
    with pytest.raises(RuleBaseError) as exc:
        load_rule_base(p)
    msg = str(exc.value)
    assert f"line {_line_containing(text, '1.5')}:" in msg and "'over'" in msg and "(0, 1]" in msg and str(p) in msg


def test_negative_threshold_is_refused_with_its_line(tmp_path):
    text = _builtin_text().replace('"under": 0.08', '"under": -0.1')
    with pytest.raises(RuleBaseError, match=rf"line {_line_containing(text, '-0.1')}: threshold 'under'"):
        load_rule_base(_write(tmp_path, text))


def test_missing_catch_all_level_is_refused_with_its_line(tmp_path):
    data = json.loads(_builtin_text())
    data["levels"] = data["levels"][:-1]  # drop the "otherwise" level
    text = json.dumps(data, indent=2)
    last_level_line = _line_containing(text, '"score": 10,') - 1  # the "{" of the last level
    with pytest.raises(RuleBaseError, match=rf"line {last_level_line}: levels\[5\] \(the last level\).*missing"):
        load_rule_base(_write(tmp_path, text))


def test_level_without_score_is_refused_with_its_line(tmp_path):
    data = json.loads(_builtin_text())
    del data["levels"][2]["score"]
    text = json.dumps(data, indent=2)
    line = _line_containing(text, '"condition": "global bad area about 10 %') - 1
    with pytest.raises(RuleBaseError, match=rf"line {line}: levels\[2\]: missing 'score'"):
        load_rule_base(_write(tmp_path, text))


def test_scores_must_decrease(tmp_path):
    text = _builtin_text().replace('"score": 60', '"score": 90')
    line = _line_containing(text, '"score": 90')
    with pytest.raises(RuleBaseError, match=rf"line {line}: .*lower than the level before"):
        load_rule_base(_write(tmp_path, text))


@pytest.mark.parametrize(
    "old,new,expect",
    [
        ('"metric": "global.bad",', '"metric": "global.badness",', "is not a statistic"),
        ('"op": "<",', '"op": "=<",', "op must be one of"),
        ('"value": 0.02', '"value": 2', "must be a number in \\[0, 1\\]"),
        ('"region": null', '"region": "sky"', "'region' must be null or one of"),
        ('"schema": "iea-rule-base/1"', '"schema": "iea-rule-base/9"', "'schema' must be"),
        ('"title": "Strict landscape"', '"title": "Strict", "colour": "red"', "unknown key 'colour'"),
    ],
)
def test_invalid_fields_name_their_line(tmp_path, old, new, expect):
    base = _builtin_text()
    assert old in base
    text = base.replace(old, new, 1)
    line = _line_containing(text, new.split(",")[-1].strip() if "colour" in new else new.rstrip(","))
    with pytest.raises(RuleBaseError, match=rf"line {line}: .*{expect}"):
        load_rule_base(_write(tmp_path, text))


def test_region_statistics_need_a_region(tmp_path):
    data = json.loads(_builtin_text("portrait_first"))
    data["region"] = None
    with pytest.raises(RuleBaseError, match=r"uses .*region.bad.* has no 'region'"):
        parse_rule_base(json.dumps(data, indent=2))


def test_otherwise_must_be_last_and_only_last(tmp_path):
    data = json.loads(_builtin_text())
    data["levels"][3]["when"] = "otherwise"
    with pytest.raises(RuleBaseError, match=r"levels\[3\] is \"otherwise\" but is not the last"):
        parse_rule_base(json.dumps(data, indent=2))


def test_invalid_json_and_duplicate_keys_name_the_line(tmp_path):
    with pytest.raises(RuleBaseError, match=r"line 3, column \d+: invalid JSON"):
        parse_rule_base('{\n "name": "x",\n "title": ,\n}', source="x.json")
    with pytest.raises(RuleBaseError, match=r"line 2: key 'name' appears twice"):
        parse_rule_base('{"name": "x",\n "name": "y"}', source="x.json")
    with pytest.raises(RuleBaseError, match="not found"):
        load_rule_base(tmp_path / "nope.json")


def test_custom_rule_base_by_path(tmp_path):
    text = _builtin_text().replace('"name": "strict_landscape"', '"name": "my_landscape"')
    p = _write(tmp_path, text, "mine.json")
    rb = get_rule_base(str(p))
    assert rb.name == "my_landscape" and rb.path == str(p)
    with pytest.raises(Exception, match="Did you mean 'strict_landscape'"):
        get_rule_base("strict_landscap")


# --------------------------------------------------------------------------- statistics (properties)


maps = st.integers(0, 2**32 - 1).map(lambda seed: np.random.default_rng(seed))


@settings(max_examples=60, deadline=None)
@given(rng=maps, split=st.integers(1, 15), th=st.floats(0.02, 0.5))
def test_statistics_are_consistent(rng, split, th):
    r = np.clip(rng.normal(0, 0.3, (16, 16)), -1, 1).astype(np.float32)
    mask = np.zeros((16, 16), bool)
    mask[:, :split] = True
    t = _rulebase.Thresholds(th, th, max(th, 0.4))
    s = exposure_statistics(r, t, mask=mask)
    for scope in ("global", "region", "background"):
        assert 0 <= s[f"{scope}.under"] <= 1 and 0 <= s[f"{scope}.over"] <= 1
        assert s[f"{scope}.bad"] == pytest.approx(s[f"{scope}.under"] + s[f"{scope}.over"])
        assert s[f"{scope}.severe"] <= s[f"{scope}.bad"] + 1e-12
    w = mask.mean()
    for q in ("under", "over", "mean"):
        assert s[f"global.{q}"] == pytest.approx(w * s[f"region.{q}"] + (1 - w) * s[f"background.{q}"], abs=1e-9)
    assert s["global.under"] == pytest.approx(np.mean(r <= -th))


@settings(max_examples=60, deadline=None)
@given(rng=maps, extra=st.floats(0.0, 1.0))
def test_more_bad_pixels_never_raise_the_strict_landscape_score(rng, extra):
    rb = get_rule_base("strict_landscape")
    r = np.clip(rng.normal(0, 0.1, (20, 20)), -1, 1).astype(np.float32)
    worse = r.copy()
    k = int(extra * r.size)
    idx = rng.permutation(r.size)[:k]
    worse.reshape(-1)[idx] = np.sign(worse.reshape(-1)[idx] + 1e-6) * 0.7  # push pixels past every threshold
    assert score_map(worse, rb).score <= score_map(r, rb).score


def test_score_map_validates_its_inputs():
    rb = get_rule_base("portrait_first")
    with pytest.raises(ValueError, match="residual"):
        score_map(np.full((4, 4), 2.0, np.float32), rb)
    with pytest.raises(ValueError, match="mask must have the residual map's shape"):
        score_map(np.zeros((4, 4), np.float32), rb, mask=np.ones((3, 3), bool))
    with pytest.raises(TypeError, match="bool"):
        score_map(np.zeros((4, 4), np.float32), rb, mask=np.ones((4, 4), np.uint8))
    with pytest.raises(TypeError, match="RuleBase"):
        score_map(np.zeros((4, 4), np.float32), "portrait_first")


def test_condition_describe_reads_like_the_rule():
    rb = get_rule_base("portrait_first")
    assert rb.levels[0].when.describe() == "region.bad < 0.02 and global.bad < 0.1"
    assert re.search(r"otherwise", rb.levels[-1].when.describe())
