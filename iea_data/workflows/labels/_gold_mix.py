"""Gold images in the annotation queue: where they go, at the workspace's rate, per annotator.

A maintainer marks images as gold (:mod:`iea_data.workflows.quality`); every annotator meets
them in their ordinary queue, looking exactly like any other image (same :class:`QueueItem`
fields, nothing says "gold"). Which positions hold a gold image is decided by a
deterministic sequence per annotator: position ``p`` (0-based) is a gold slot when
``floor((p + 1) * rate + phase) > floor(p * rate + phase)``, with ``phase`` in [0, 1) and the
order of the gold images both derived from a hash of the annotator's id. So in any ``n``
consecutive positions the share of gold is within ``1/n`` of the rate (while gold images
remain), a test can check it, and two annotators meet the gold images in different places.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from iea_data.store import DEFAULT_GOLD_RATE, GOLD_RATE_KEY, WorkspaceSetting

__all__ = ["gold_rate", "mix_gold", "check_gold_rate"]

T = TypeVar("T")


def check_gold_rate(rate) -> float:
    """``rate`` as a float in [0, 0.5] (the share of queue positions holding a gold image).

    >>> check_gold_rate(0.05)
    0.05
    >>> check_gold_rate(0.9)
    Traceback (most recent call last):
    ...
    ValueError: gold rate must be a number in [0, 0.5] (0.05 = 5 % of queue positions), got 0.9
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not (0.0 <= float(rate) <= 0.5):
        raise ValueError(f"gold rate must be a number in [0, 0.5] (0.05 = 5 % of queue positions), got {rate!r}")
    return float(rate)


def gold_rate(session: Session) -> float:
    """The workspace's gold rate (``quality.gold_rate`` in ``workspace_settings``; default 0.05)."""
    value = session.scalar(select(WorkspaceSetting.value).where(WorkspaceSetting.key == GOLD_RATE_KEY))
    return DEFAULT_GOLD_RATE if value is None else float(value)


def _unit_hash(*parts: object) -> float:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def mix_gold(regular: Sequence[T], gold: Sequence[tuple[int, T]], *, rate: float, user_id: int) -> list[T]:
    """Interleave ``gold`` items (``(image_id, item)``) into ``regular`` at ``rate``, deterministically per user.

    When either list runs out the rest of the other follows; at rate 0 the gold items come last.

    Examples
    --------
    >>> out = mix_gold(list("abcdefghijklmnopqrst"), [(1, "G1"), (2, "G2")], rate=0.1, user_id=7)
    >>> len(out), sum(x.startswith("G") for x in out[:20])
    (22, 2)
    >>> mix_gold(["a", "b"], [], rate=0.5, user_id=1)
    ['a', 'b']
    """
    rate = check_gold_rate(rate)
    pending = [item for _, item in sorted(gold, key=lambda g: (_unit_hash("gold-order", user_id, g[0]), g[0]))]
    if rate == 0.0 or not pending:  # rate 0: gold images only after everything else
        return list(regular) + pending
    phase = _unit_hash("gold-phase", user_id)
    out: list[T] = []
    r = g = 0
    p = 0
    while r < len(regular) or g < len(pending):
        slot = math.floor((p + 1) * rate + phase) > math.floor(p * rate + phase)
        if (slot and g < len(pending)) or r >= len(regular):
            out.append(pending[g])
            g += 1
        else:
            out.append(regular[r])
            r += 1
        p += 1
    return out
