"""Constrained scalar types shared by the wire Structs (D14).

No text accepts NUL characters: PostgreSQL cannot store them, and both databases must agree.
The patterns avoid ``$`` (in Python it also matches before a final newline) and mean the same
in ECMA-262, the dialect the OpenAPI document promises.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

# Non-blank (some non-whitespace character) and no NUL anywhere.
_NON_BLANK_TEXT = r"^(?![\s\S]*\x00)[\s\S]*\S"

# Names: non-blank and at most 255 characters.
Name = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=255,
        pattern=_NON_BLANK_TEXT,
        description="Non-blank, ≤255 characters.",
    ),
]
# Labels, annotation keys and values: 1–64 characters, no whitespace (or NUL) anywhere.
Label = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^(?![\s\S]*[\s\x00])",
        description="1–64 characters, no whitespace.",
    ),
]
# Optional descriptions, when given, are non-blank (D14).
Description = Annotated[
    str, Meta(min_length=1, max_length=4096, pattern=_NON_BLANK_TEXT, description="Non-blank.")
]
