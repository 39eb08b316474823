"""Look-alikes of reserved names (D14). Pure: no I/O.

A generator named ``Admin_Generator``, ``аdmin-generator`` (Cyrillic ``а``) or
``admin-generat0r`` would pass for the protected ``admin-generator`` in a listing or an audit
trail. Two names look alike when their skeletons are equal: NFKC (full-width and styled letters
fold to plain ones), case folded, marks and invisible format characters dropped, separators
(spaces, ``-``, ``_``, ``.``, dashes) removed, and the common homoglyphs below mapped to one
Latin letter. This is a deliberately small subset of Unicode's confusables (UTS #39): enough for
the Latin, Cyrillic and Greek look-alikes of one reserved name, not a general detector.
"""

from __future__ import annotations

import unicodedata

_HOMOGLYPHS = str.maketrans(
    {
        # Cyrillic
        "а": "a",
        "е": "e",
        "о": "o",
        "р": "p",
        "с": "c",
        "у": "y",
        "х": "x",
        "і": "i",
        "ј": "j",
        "ѕ": "s",
        "ԁ": "d",
        "ɡ": "g",
        "м": "m",
        "т": "t",
        "н": "h",
        "к": "k",
        "в": "b",
        "г": "r",
        "п": "n",
        # Greek
        "α": "a",
        "ε": "e",
        "ο": "o",
        "ρ": "p",
        "ι": "i",
        "ν": "v",
        "τ": "t",
        "κ": "k",
        "μ": "m",
        "η": "n",
        # digits and strokes that pass for letters
        "0": "o",
        "1": "i",
        "l": "i",
        "|": "i",
        "!": "i",
        "3": "e",
        "4": "a",
        "5": "s",
        "9": "g",
    }
)
_SEPARATORS = frozenset(" -_.\u2010\u2011\u2012\u2013\u2014\u2212")
_DROPPED_CATEGORIES = frozenset({"Mn", "Me", "Cf"})


def skeleton(name: str) -> str:
    """The form two look-alike names share (see the module docstring)."""
    folded = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", name).casefold())
    kept = "".join(
        char
        for char in folded
        if char not in _SEPARATORS and unicodedata.category(char) not in _DROPPED_CATEGORIES
    )
    return kept.translate(_HOMOGLYPHS).replace("rn", "m").replace("vv", "w")


def imitates(name: str, reserved: str) -> bool:
    """Whether ``name`` is not ``reserved`` but looks like it."""
    return name != reserved and skeleton(name) == skeleton(reserved)
