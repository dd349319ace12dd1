"""The results the scene parsers return: a parsed name, a scene found from names, a slot conflict."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class VariantName:
    """What a file name says about its scene and variant.

    Attributes
    ----------
    scene : str
        The scene key: the file's stem without the trailing ``_<variant>`` token.
    variant : str or None
        Canonical variant tag (``"N2"``, ``"P0"``, ``"-1EV"``, ``"+0.5EV"``, ``"0EV"``),
        or ``None`` when the name carries no token (it may be a scene's reference).
    ev : float or None
        The EV offset for EV tags; ``None`` for ``N``/``P`` tokens and for plain names.
    """

    scene: str
    variant: str | None
    ev: float | None


@dataclass(frozen=True)
class Conflict:
    """A name that could not be placed in its scene because its slot was taken.

    Attributes
    ----------
    tag : str or None
        The variant tag both names claim, or ``None`` for the reference slot.
    kept : str
        The name that holds the slot (the smaller of the two as strings).
    dropped : str
        The name that was left out of the group.
    """

    tag: str | None
    kept: str
    dropped: str


@dataclass
class SceneGroup:
    """One scene found from file names.

    Attributes
    ----------
    scene : str
        The scene key (the file stem without the variant token).
    directory : str
        ``os.path.normpath`` of the names' directory part (``"."`` for bare names).
        Scenes are keyed by ``(directory, scene)``, so equal scene names in two folders
        are two scenes.
    reference : str or None
        The name whose stem is the scene key, if one was given.
    variants : dict of str to str
        Variant tag -> name, ordered darkest to brightest (:func:`variant_sort_key`).
    evs : dict of str to (float or None)
        Variant tag -> EV offset (``None`` for ``N``/``P`` tokens).
    conflicts : list of Conflict
        Names left out because another name already claimed the same tag (or the
        reference slot); see :func:`group_by_filename`.
    """

    scene: str
    directory: str
    reference: str | None
    variants: dict[str, str]
    evs: dict[str, float | None]
    conflicts: list[Conflict] = field(default_factory=list)

    def names(self) -> list[str]:
        """All names placed in the group: the reference (if any), then the variants."""
        head = [self.reference] if self.reference is not None else []
        return head + list(self.variants.values())
