"""The gold slots of the annotation queue (issue 15): a permutation, at the rate in every prefix, per annotator."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from iea_data.workflows.labels import mix_gold


@settings(max_examples=150, deadline=None)
@given(
    n_regular=st.integers(0, 300),
    n_gold=st.integers(0, 40),
    rate=st.floats(0.0, 0.5, allow_nan=False),
    user_id=st.integers(1, 10_000),
)
def test_gold_slots_hold_the_rate_in_every_prefix_while_gold_remains(n_regular, n_gold, rate, user_id):
    regular = [("r", i) for i in range(n_regular)]
    gold = [(1000 + j, ("g", 1000 + j)) for j in range(n_gold)]
    out = mix_gold(regular, gold, rate=rate, user_id=user_id)
    assert sorted(out) == sorted(regular + [g for _, g in gold])  # nothing lost, nothing doubled
    assert [x for x in out if x[0] == "r"] == regular  # the priority order of the rest is kept
    assert out == mix_gold(regular, gold, rate=rate, user_id=user_id)  # deterministic
    if rate == 0.0:
        assert out[: len(regular)] == regular  # gold only after everything else
        return
    seen_gold = seen_regular = 0
    for n, x in enumerate(out, 1):
        if seen_gold == n_gold or seen_regular == n_regular:  # one list ran out: the rest just follows
            break
        seen_gold += x[0] == "g"
        seen_regular += x[0] == "r"
        assert abs(seen_gold - rate * n) <= 1 + 1e-9, (n, seen_gold)
