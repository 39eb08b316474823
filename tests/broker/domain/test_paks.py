"""PAK format, hashing and parsing (D3, D6): pure table tests, no I/O.

Covers the generated format ``brokkr_BR<6 base58>_<base58 of 24 bytes>``, the hash (SHA-256 of
the whole key) and key id (the short token), what ``is_well_formed`` rejects (prefix, short token,
long token length, alphabet, extra underscores, surrounding whitespace), how the
``Authorization`` header is read (Bearer in any case, bare key, whitespace, other schemes) and the
base58 round trip including leading zero bytes.
"""

from __future__ import annotations

import hashlib
import re

import pytest

from brokkr.broker.domain import paks

BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
FORMAT = re.compile(r"^brokkr_(BR[1-9A-HJ-NP-Za-km-z]{6})_([1-9A-HJ-NP-Za-km-z]+)$")

SHORT = "BRabc123"
LONG = paks.b58encode(bytes(range(1, 25)))
VALID = f"brokkr_{SHORT}_{LONG}"
LONGEST = paks.b58encode(b"\xff" * 24)


def test_generated_pak_has_the_documented_format() -> None:
    for _ in range(200):
        pak = paks.generate()
        match = FORMAT.match(pak.plaintext)
        assert match, pak.plaintext
        assert len(paks.b58decode(match.group(2))) == 24
        assert paks.is_well_formed(pak.plaintext)


def test_generated_paks_are_unique() -> None:
    generated = {paks.generate().plaintext for _ in range(500)}
    assert len(generated) == 500


def test_hash_is_sha256_hex_of_the_whole_key() -> None:
    pak = paks.generate()
    assert pak.hash == hashlib.sha256(pak.plaintext.encode()).hexdigest()
    assert paks.hash_key(pak.plaintext) == pak.hash
    assert re.fullmatch(r"[0-9a-f]{64}", pak.hash)


def test_changing_any_part_of_the_key_changes_the_hash() -> None:
    pak = paks.generate()
    short_changed = pak.plaintext.replace(pak.key_id, "BR" + "1" * 6)
    long_changed = pak.plaintext[:-1] + ("2" if pak.plaintext[-1] != "2" else "3")
    assert len({paks.hash_key(k) for k in (pak.plaintext, short_changed, long_changed)}) == 3


def test_key_id_is_the_short_token() -> None:
    pak = paks.generate()
    assert pak.key_id == pak.plaintext.split("_")[1]
    assert paks.key_id(pak.plaintext) == pak.key_id
    assert paks.key_id(VALID) == SHORT
    assert paks.key_id("nonsense") is None


def test_a_well_formed_key_is_accepted() -> None:
    assert paks.is_well_formed(VALID)


@pytest.mark.parametrize(
    ("case", "candidate"),
    [
        ("empty", ""),
        ("wrong prefix", f"brokr_{SHORT}_{LONG}"),
        ("prefix case", f"Brokkr_{SHORT}_{LONG}"),
        ("no prefix", f"{SHORT}_{LONG}"),
        ("short token without BR", f"brokkr_XYabc123_{LONG}"),
        ("short token lower br", f"brokkr_brabc123_{LONG}"),
        ("short token too short", f"brokkr_BRabc12_{LONG}"),
        ("short token too long", f"brokkr_BRabc1234_{LONG}"),
        ("long token of 23 bytes", f"brokkr_{SHORT}_{paks.b58encode(bytes(range(1, 24)))}"),
        ("long token of 25 bytes", f"brokkr_{SHORT}_{paks.b58encode(bytes(range(1, 26)))}"),
        ("long token of 41 chars", f"brokkr_{SHORT}_{'z' * 41}"),
        ("long token truncated", VALID[:-1]),
        ("long token extended", f"brokkr_{SHORT}_{LONGEST}2"),
        ("missing long token", f"brokkr_{SHORT}_"),
        ("zero in long token", f"brokkr_{SHORT}_0{LONG[1:]}"),
        ("capital O in long token", f"brokkr_{SHORT}_O{LONG[1:]}"),
        ("capital I in long token", f"brokkr_{SHORT}_I{LONG[1:]}"),
        ("lower l in long token", f"brokkr_{SHORT}_l{LONG[1:]}"),
        ("zero in short token", f"brokkr_BRabc120_{LONG}"),
        ("non-ascii", f"brokkr_{SHORT}_é{LONG[1:]}"),
        ("extra underscore at end", f"{VALID}_extra"),
        ("double underscore", f"brokkr__{SHORT}_{LONG}"),
        ("underscore in long token", f"brokkr_{SHORT}_{LONG[:10]}_{LONG[10:]}"),
        ("hyphens", f"brokkr-{SHORT}-{LONG}"),
        ("leading space", f" {VALID}"),
        ("trailing space", f"{VALID} "),
        ("trailing newline", f"{VALID}\n"),
    ],
)
def test_malformed_keys_are_rejected(case: str, candidate: str) -> None:
    assert not paks.is_well_formed(candidate), case
    assert paks.key_id(candidate) is None or case.startswith("long token")


@pytest.mark.parametrize(
    "header",
    [
        f"Bearer {VALID}",
        f"bearer {VALID}",
        f"BEARER {VALID}",
        f"BeArEr {VALID}",
        VALID,
        f"  Bearer   {VALID}  ",
        f"  {VALID}\t",
        f"Bearer {VALID}\n",
    ],
)
def test_authorization_header_yields_the_pak(header: str) -> None:
    assert paks.from_authorization(header) == VALID


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "Bearer",
        "Bearer ",
        f"Basic {VALID}",
        f"Token {VALID}",
        f"Bearer{VALID}",
        f"Bearer Bearer {VALID}",
        f"Bearer {VALID} extra",
        f"Bearer {VALID[:-1]}",
        "Bearer not-a-pak",
    ],
)
def test_authorization_header_without_a_usable_pak_yields_none(header: str | None) -> None:
    assert paks.from_authorization(header) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00",
        b"\x00\x00\x00",
        b"\x00\x00\x01",
        b"\x00\xff",
        b"\x01",
        b"\xff" * 24,
        bytes(24),
        bytes(range(24)),
        b"hello world",
    ],
)
def test_base58_round_trips_including_leading_zero_bytes(raw: bytes) -> None:
    encoded = paks.b58encode(raw)
    assert set(encoded) <= set(BASE58)
    assert paks.b58decode(encoded) == raw
    leading_zeros = len(raw) - len(raw.lstrip(b"\0"))
    assert encoded[:leading_zeros] == "1" * leading_zeros


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [
        (b"", ""),
        (b"\x00", "1"),
        (b"\x00\x00\x01", "112"),
        (b"\x39", "z"),
        (b"\x3a", "21"),
        (b"hello world", "StV1DL6CwTryKyV"),
    ],
)
def test_base58_uses_the_bitcoin_alphabet(raw: bytes, encoded: str) -> None:
    assert paks.b58encode(raw) == encoded
    assert paks.b58decode(encoded) == raw


def test_a_pak_whose_long_token_starts_with_zero_bytes_is_well_formed() -> None:
    long = paks.b58encode(b"\x00\x00" + bytes(range(1, 23)))
    assert long.startswith("11")
    assert paks.is_well_formed(f"brokkr_{SHORT}_{long}")
