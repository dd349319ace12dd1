"""A painting session: the server-side state of one open painter (strokes, undo, redo).

The browser sends strokes with increasing ids and re-sends every stroke the server has not
acknowledged; :meth:`PaintSession.apply` applies each id exactly once, in id order, however
often and in whatever bursts they arrive, and the app acknowledges :attr:`PaintSession.last_id`.
A refused stroke that carries an id is acknowledged too (and never painted), so that the
browser stops re-sending it and the strokes after it still arrive.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ._raster import RESIDUAL_RANGE, _apply_unchecked, _check_maps, stroke_bbox
from ._stroke import MAX_ID, Stroke, StrokeRefused

__all__ = ["PaintSession"]

log = logging.getLogger(__name__)


def _raw_id(data: Any) -> int | None:
    """The id of a stroke message that was refused, if it has a usable one."""
    if isinstance(data, (str, bytes)):
        try:
            data = json.loads(data)
        except ValueError:
            return None
    sid = data.get("id") if isinstance(data, Mapping) else None
    if isinstance(sid, int) and not isinstance(sid, bool) and 0 <= sid <= MAX_ID:
        return sid
    return None


class PaintSession:
    """Strokes painted on one map since it was opened, with undo and redo.

    Parameters
    ----------
    base : ndarray, float32, shape (H, W), values in ``value_range``
        The map painted on.
    correction : ndarray, float32, shape (H, W), optional
        The correction to start from (a resumed draft or a chain head); default zeros.
    log : sequence of dict, optional
        Strokes already in ``correction`` (a resumed draft's log): kept at the front of
        :meth:`stroke_log`, not undoable, and their ids count as applied.
    value_range : (float, float)
        See :func:`apply_stroke`.

    Examples
    --------
    >>> s = PaintSession(np.zeros((8, 8), np.float32))
    >>> stroke = {"id": 1, "points": [[4, 4]], "radius": 2, "value": 0.3, "hardness": 1.0}
    >>> s.apply([stroke, stroke])  # a resent stroke is applied once
    [1]
    >>> round(float(s.map[4, 4]), 3), s.last_id
    (0.3, 1)
    >>> s.undo(), float(s.map[4, 4]), s.redo(), round(float(s.map[4, 4]), 3)
    (True, 0.0, True, 0.3)
    """

    def __init__(
        self,
        base: np.ndarray,
        correction: np.ndarray | None = None,
        *,
        log: Sequence[dict[str, Any]] = (),
        value_range: tuple[float, float] = RESIDUAL_RANGE,
    ) -> None:
        corr = np.zeros_like(base) if correction is None and isinstance(base, np.ndarray) else correction
        _check_maps(corr if corr is not None else base, base, value_range)
        self.base = base
        self.value_range = (float(value_range[0]), float(value_range[1]))
        self._corr = corr.copy()
        self._prior = [Stroke.from_json(s).to_dict() for s in log]
        self.last_id = max((s["id"] for s in self._prior), default=-1)
        self._done: list[tuple[Stroke, tuple[int, int, int, int] | None, np.ndarray | None]] = []
        self._undone: list[Stroke] = []
        self.revision = 0  # bumps on every change: the app uses it to know when to redraw
        #: (revision, box) of every change: the pixel box ``(y0, y1, x0, x1)`` it may have altered,
        #: so that a viewer can redraw only that part.
        self.changes: list[tuple[int, tuple[int, int, int, int]]] = []

    # ------------------------------------------------------------------ state
    @property
    def correction(self) -> np.ndarray:
        """The current correction (float32 (H, W)); do not modify it in place."""
        return self._corr

    @property
    def map(self) -> np.ndarray:
        """The painted map ``clip(base + correction)`` as float32 (H, W)."""
        lo, hi = self.value_range
        return np.clip(self.base + self._corr, lo, hi)

    @property
    def can_undo(self) -> bool:
        return bool(self._done)

    @property
    def can_redo(self) -> bool:
        return bool(self._undone)

    @property
    def n_strokes(self) -> int:
        """Strokes in effect (the resumed log plus those painted and not undone)."""
        return len(self._prior) + len(self._done)

    def stroke_log(self) -> list[dict[str, Any]]:
        """The strokes in effect, oldest first, as JSON-ready dicts (for drafts and saves)."""
        return list(self._prior) + [s.to_dict() for s, _, _ in self._done]

    # ------------------------------------------------------------------ changes
    def _changed(self, box: tuple[int, int, int, int] | None) -> None:
        self.revision += 1
        if box is not None:
            self.changes.append((self.revision, box))

    def _paint(self, stroke: Stroke) -> None:
        box = stroke_bbox(stroke, self._corr.shape)
        old = None if box is None else self._corr[box[0] : box[1], box[2] : box[3]].copy()
        # the maps were checked once in __init__, and every stroke keeps them in range
        self._corr = _apply_unchecked(self._corr, stroke, self.base, *self.value_range)
        self._done.append((stroke, box, old))

    def apply(self, strokes: Iterable[Stroke | dict[str, Any] | str]) -> list[int]:
        """Apply the strokes whose id is above :attr:`last_id`, in id order; return their ids.

        Ids at or below ``last_id`` (already applied, or re-sent) are skipped. A new stroke
        clears the redo stack.

        Raises
        ------
        StrokeRefused
            (a ``ValueError`` and ``TypeError``) for a malformed stroke, or one that does not
            fit the map (:func:`~iea_data.core.painting.check_stroke`). The strokes before it are
            applied, nothing after it; if it carries a usable id it is acknowledged
            (``last_id`` moves to it, it is never painted), so a re-sent batch goes on past it.
        """
        items: list[tuple[int, Stroke | None, StrokeRefused | None]] = []
        for s in strokes:
            if isinstance(s, Stroke):
                items.append((s.id, s, None))
                continue
            try:
                stroke = Stroke.from_json(s)
            except StrokeRefused as exc:
                sid = _raw_id(s)
                if sid is None:
                    raise
                items.append((sid, None, exc))
            else:
                items.append((stroke.id, stroke, None))
        items.sort(key=lambda t: t[0])
        applied: list[int] = []
        try:
            for sid, queued, refused in items:
                if sid <= self.last_id:
                    continue
                if refused is None:
                    assert queued is not None  # a stroke is queued with its Stroke or with why it was refused
                    try:
                        self._paint(queued)
                    except StrokeRefused as exc:
                        refused = exc
                if refused is not None:
                    self.last_id = sid
                    log.info("stroke %d refused and dropped: %s", sid, refused)
                    raise StrokeRefused(f"stroke {sid} was dropped: {refused}") from None
                self.last_id = sid
                applied.append(sid)
                self._changed(self._done[-1][1])
        finally:
            if applied:
                self._undone.clear()
                log.debug("applied strokes %s", applied)
        return applied

    def undo(self) -> bool:
        """Take back the newest stroke painted in this session; False if there is none."""
        if not self._done:
            return False
        stroke, box, old = self._done.pop()
        if box is not None:
            corr = self._corr.copy()
            corr[box[0] : box[1], box[2] : box[3]] = old
            self._corr = corr
        self._undone.append(stroke)
        self._changed(box)
        return True

    def redo(self) -> bool:
        """Paint the last undone stroke again; False if there is none."""
        if not self._undone:
            return False
        self._paint(self._undone.pop())
        self._changed(self._done[-1][1])
        return True
