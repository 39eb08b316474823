"""Constrained scalar types shared by the wire Structs (D14)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

# Names: non-blank (at least one non-whitespace character) and at most 255 characters.
Name = Annotated[
    str,
    Meta(min_length=1, max_length=255, pattern=r"\S", description="Non-blank, ≤255 characters."),
]
# Labels, annotation keys and values: 1–64 characters, no whitespace anywhere. Not ``^\S+$``:
# in Python ``$`` also matches before a final newline. The lookahead means the same in ECMA-262.
Label = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^(?!.*\s)",
        description="1–64 characters, no whitespace.",
    ),
]
# Optional descriptions, when given, are non-blank (D14).
Description = Annotated[str, Meta(min_length=1, max_length=4096, pattern=r"\S")]
