"""Constrained scalar types shared by the wire Structs (D14).

No text accepts NUL characters: PostgreSQL cannot store them, and both databases must agree.
The patterns avoid ``$`` (in Python it also matches before a final newline) and mean the same
in ECMA-262, the dialect the OpenAPI document promises.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

import msgspec
from msgspec import Meta

# No NUL anywhere (PostgreSQL text cannot hold one).
_NO_NUL = r"^(?![\s\S]*\x00)"
# Non-blank (some non-whitespace character) and no NUL anywhere.
_NON_BLANK_TEXT = _NO_NUL + r"[\s\S]*\S"
# Characters no identifier may hold: controls (C0, DEL, C1: tab, newline, NUL, ...), lone
# surrogates and private-use code points.
_CONTROL = r"\x00-\x1f\x7f-\x9f\ud800-\udfff\ue000-\uf8ff"
# What shows nothing on its own: whitespace, zero-width and other format characters (bidi
# controls, joiners, the byte-order mark), fillers, variation selectors and combining marks.
_INVISIBLE = (
    r"\s\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
    r"\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\u0300-\u036f\u1ab0-\u1aff"
    r"\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
)
# Identifiers (D14): no control character, and at least one character a reader can see.
_IDENTIFIER = rf"^(?![\s\S]*[{_CONTROL}])(?=[\s\S]*[^{_INVISIBLE}])"

NAME_LENGTH = 255
LABEL_LENGTH = 64

# Names: at most 255 characters, printable, with a visible character; stored in NFC.
Name = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=NAME_LENGTH,
        pattern=_IDENTIFIER,
        description="≤255 characters; no control characters; not only spaces or zero-width "
        "characters. Stored in Unicode NFC.",
    ),
]
# Labels, annotation keys and values: 1–64 characters, no whitespace (or control) anywhere.
Label = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=LABEL_LENGTH,
        pattern=rf"^(?![\s\S]*[\s{_CONTROL}])(?=[\s\S]*[^{_INVISIBLE}])",
        description="1–64 characters, no whitespace or control characters, not only "
        "zero-width characters. Stored in Unicode NFC.",
    ),
]
# Optional descriptions, when given, are non-blank (D14).
Description = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=4096,
        pattern=_NON_BLANK_TEXT,
        description="Non-blank, ≤4096 characters.",
    ),
]
# Free text that may be empty (a generator's description, as the reference allows): capped, no NUL.
Text = Annotated[
    str,
    Meta(max_length=4096, pattern=_NO_NUL, description="≤4096 characters."),
]
# What an agent reports about applying an object: room for a Kubernetes error, not for a dump.
MAX_EVENT_MESSAGE = 16384
EventMessage = Annotated[
    str,
    Meta(
        max_length=MAX_EVENT_MESSAGE,
        pattern=_NO_NUL,
        description=f"≤{MAX_EVENT_MESSAGE} characters.",
    ),
]


def fit_event_message(text: str | None) -> str | None:
    """``text`` cut to what the broker accepts as an event message: an error from the cluster
    (a webhook's rejection, a long validation list) may be longer, and must still be reported."""
    if text is None:
        return None
    text = text.replace("\x00", "")
    if len(text) <= MAX_EVENT_MESSAGE:
        return text
    return text[: MAX_EVENT_MESSAGE - 1] + "…"


def normalize(struct: msgspec.Struct, *fields: str, max_length: int) -> None:
    """Store the given string fields of a just-built (frozen) Struct in NFC, so two spellings of
    one name are one name (D14); unset and null fields stay as they are. A text whose NFC form
    would pass ``max_length`` (a rare expansion) is kept as sent."""
    for field in fields:
        value = getattr(struct, field)
        if isinstance(value, str):
            text = unicodedata.normalize("NFC", value)
            if text != value and len(text) <= max_length:
                msgspec.structs.force_setattr(struct, field, text)
