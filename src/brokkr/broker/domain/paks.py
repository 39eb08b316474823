"""PAK format, generation and hashing (D6).

A PAK is ``brokkr_<short>_<long>``: the short token is ``BR`` + 6 base58 characters and is the
public key id shown in listings and audit; the long token is base58 of 24 random bytes. The stored
value is the SHA-256 of the whole key, so every part of it is authenticated.
"""

from __future__ import annotations

import hashlib
import re
import secrets

import msgspec

PREFIX = "brokkr"
SHORT_TOKEN_PREFIX = "BR"  # noqa: S105 - a public marker, not a secret
LONG_TOKEN_BYTES = 24

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {char: value for value, char in enumerate(_ALPHABET)}
_B58 = "[1-9A-HJ-NP-Za-km-z]"
_SHAPE = re.compile(rf"^{PREFIX}_({SHORT_TOKEN_PREFIX}{_B58}{{6}})_({_B58}{{1,40}})\Z")


class Pak(msgspec.Struct, frozen=True):
    """A freshly issued key: the plaintext (shown once), its hash and its public id."""

    plaintext: str
    hash: str
    key_id: str


def b58encode(raw: bytes) -> str:
    number = int.from_bytes(raw, "big")
    encoded = ""
    while number:
        number, remainder = divmod(number, 58)
        encoded = _ALPHABET[remainder] + encoded
    leading_zeros = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * leading_zeros + encoded


def b58decode(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _INDEX[char]
    leading_ones = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * leading_ones + body


def generate() -> Pak:
    short = SHORT_TOKEN_PREFIX + b58encode(secrets.token_bytes(8))[:6]
    long = b58encode(secrets.token_bytes(LONG_TOKEN_BYTES))
    plaintext = f"{PREFIX}_{short}_{long}"
    return Pak(plaintext=plaintext, hash=hash_key(plaintext), key_id=short)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def key_id(plaintext: str) -> str | None:
    """The public short token of a well-formed PAK, else None."""
    match = _SHAPE.match(plaintext)
    return match.group(1) if match else None


def is_well_formed(plaintext: str) -> bool:
    match = _SHAPE.match(plaintext)
    return match is not None and len(b58decode(match.group(2))) == LONG_TOKEN_BYTES


def from_authorization(header: str | None) -> str | None:
    """The PAK carried by an ``Authorization`` header (``Bearer <pak>``, any case, or bare), D3.

    Returns None when the header is missing or carries anything that is not a well-formed PAK.
    """
    if not header:
        return None
    value = header.strip()
    scheme, _, rest = value.partition(" ")
    if rest and scheme.lower() == "bearer":
        value = rest.strip()
    return value if is_well_formed(value) else None
