"""Secrets at rest (D10): webhook URLs, auth headers and signing secrets, AES-256-GCM encrypted.

Blob format (the reference's): ``0x01 ‖ 12-byte nonce ‖ ciphertext ‖ 16-byte tag``, no
associated data. The reference's legacy blobs (``0x00`` or any other first byte, at least 16
bytes: 16-byte nonce ‖ plaintext XOR SHA-256(key ‖ nonce) repeated) are still read, never
written, so a database migrated from the reference keeps working. Pure: no I/O.
"""

from __future__ import annotations

import hashlib
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
_VERSION_GCM = 0x01
_VERSION_LEGACY = 0x00
_NONCE_BYTES = 12
_TAG_BYTES = 16
_LEGACY_NONCE_BYTES = 16
_HEX_KEY = re.compile(r"^[0-9a-fA-F]{64}$")


class SecretUnreadable(Exception):
    """A blob this key cannot decrypt: another key wrote it, or it is damaged."""


class BadKey(ValueError):
    """Key material that is not 32 bytes given as 64 hexadecimal characters."""


def parse_key(text: str) -> bytes:
    """The 32-byte key written as 64 hexadecimal characters (surrounding blanks ignored)."""
    text = text.strip()
    if not _HEX_KEY.match(text):
        raise BadKey("a webhook encryption key is 64 hexadecimal characters (32 bytes)")
    return bytes.fromhex(text)


def generate_key() -> bytes:
    return os.urandom(KEY_BYTES)


def fingerprint(key: bytes) -> str:
    """What may be logged about a key: the hex of the first 8 bytes of its SHA-256."""
    return hashlib.sha256(key).digest()[:8].hex()


class Cipher:
    """Encrypts and decrypts text with one key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise BadKey("a webhook encryption key is 32 bytes")
        self._key = key
        self._aead = AESGCM(key)
        self.fingerprint = fingerprint(key)

    def encrypt(self, plaintext: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return bytes([_VERSION_GCM]) + nonce + self._aead.encrypt(nonce, plaintext.encode(), None)

    def decrypt(self, blob: bytes) -> str:
        """The text in ``blob``; ``SecretUnreadable`` when this key did not write it."""
        if blob[:1] == bytes([_VERSION_GCM]):
            plaintext = self._decrypt_gcm(blob[1:])
        elif blob[:1] == bytes([_VERSION_LEGACY]):
            plaintext = self._decrypt_legacy(blob[1:])
        else:
            plaintext = self._decrypt_legacy(blob)
        try:
            return plaintext.decode()
        except UnicodeDecodeError as exc:
            raise SecretUnreadable("the decrypted secret is not UTF-8") from exc

    def _decrypt_gcm(self, body: bytes) -> bytes:
        if len(body) < _NONCE_BYTES + _TAG_BYTES:
            raise SecretUnreadable("the encrypted secret is truncated")
        try:
            return self._aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:], None)
        except InvalidTag as exc:
            raise SecretUnreadable("the secret was encrypted with another key") from exc

    def _decrypt_legacy(self, body: bytes) -> bytes:
        # The legacy scheme has no integrity check: a wrong key yields garbage, which the
        # UTF-8 check above catches most of the time.
        if len(body) < _LEGACY_NONCE_BYTES:
            raise SecretUnreadable("the encrypted secret is truncated")
        nonce, ciphertext = body[:_LEGACY_NONCE_BYTES], body[_LEGACY_NONCE_BYTES:]
        mask = hashlib.sha256(self._key + nonce).digest()
        return bytes(byte ^ mask[index % len(mask)] for index, byte in enumerate(ciphertext))


class Secrets:
    """The broker's cipher, loaded once at start (the key lives in settings or the data dir);
    until then encrypting or decrypting is a programming error."""

    def __init__(self, cipher: Cipher | None = None) -> None:
        self._cipher = cipher

    def use(self, cipher: Cipher) -> None:
        self._cipher = cipher

    @property
    def cipher(self) -> Cipher:
        if self._cipher is None:
            raise RuntimeError("the webhook encryption key is not loaded yet")
        return self._cipher

    @property
    def loaded(self) -> bool:
        return self._cipher is not None

    def encrypt(self, plaintext: str) -> bytes:
        return self.cipher.encrypt(plaintext)

    def decrypt(self, blob: bytes) -> str:
        """The text in ``blob``; ``SecretUnreadable`` when another key wrote it."""
        return self.cipher.decrypt(blob)
