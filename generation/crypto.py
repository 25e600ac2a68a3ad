"""Encryption at rest of digital doubles: the identity LoRA and the identity centroid.

Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) through a MultiFernet built from
`settings.DOUBLE_ENCRYPTION_KEYS`: the first key encrypts, every key decrypts. Rotation: put a new key first,
keep the old ones after it, run `manage.py engine rotate-keys` (re-encrypts every double with the first key),
then drop the old keys. Without configured keys (the embedded demo) the key is derived from SECRET_KEY with
HKDF-SHA256; `manage.py check --deploy` warns about that (generation.W010).

A double's bytes are decrypted only in memory, inside the worker that renders with them; they are never
written to disk in clear by the Django side.
"""

from __future__ import annotations

import base64
import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.checks import Error, Tags, Warning, register

DEV_KEY_SALT = b"studio-saas/digital-doubles"
DEV_KEY_INFO = b"fernet-key-v1"


class DecryptionError(Exception):
    """Stored double data that none of the configured keys can decrypt (wrong keys, or tampered data)."""


def derive_key(secret: str) -> bytes:
    """A Fernet key (urlsafe base64 of 32 bytes) derived from a secret with HKDF-SHA256."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=DEV_KEY_SALT, info=DEV_KEY_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8")))


def configured_keys() -> list[bytes]:
    """The keys in force: DOUBLE_ENCRYPTION_KEYS, else the development key derived from SECRET_KEY."""
    keys = [k.strip() for k in _configured_entries()]
    if keys:
        return [k.encode("ascii") for k in keys]
    return [derive_key(settings.SECRET_KEY)]


@functools.lru_cache(maxsize=4)
def _multi(keys: tuple[bytes, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys])


def fernet() -> MultiFernet:
    """The MultiFernet of the keys in force (settings are read at each call, never at import)."""
    return _multi(tuple(configured_keys()))


def encrypt(data: bytes) -> bytes:
    """Encrypt with the first key. The token is urlsafe base64 text (about 4/3 of the input)."""
    return fernet().encrypt(bytes(data))


def decrypt(token: bytes) -> bytes:
    """Decrypt with any configured key; DecryptionError when none fits (or the data was changed)."""
    try:
        return fernet().decrypt(bytes(token))
    except InvalidToken:
        raise DecryptionError(
            "This digital double can't be decrypted with the configured keys (DOUBLE_ENCRYPTION_KEYS): "
            "a key was removed before the double was re-encrypted, or the stored data was changed."
        ) from None


def rotate(token: bytes) -> bytes:
    """Re-encrypt data with the first key (it must decrypt with one of the keys)."""
    try:
        return fernet().rotate(bytes(token))
    except InvalidToken:
        raise DecryptionError("Stored double data could not be decrypted for rotation.") from None


def is_encrypted(data: bytes) -> bool:
    """True when `data` looks like a Fernet token (version byte 0x80, urlsafe base64)."""
    return bytes(data[:6]) == b"gAAAAA"


def _configured_entries() -> list[str]:
    return [k for k in (getattr(settings, "DOUBLE_ENCRYPTION_KEYS", None) or []) if k and k.strip()]


@register(Tags.security)
def check_double_encryption_keys(app_configs: object = None, **kwargs: object) -> list:
    """Every configured key must be a valid Fernet key (else nothing could be encrypted or decrypted)."""
    problems: list = []
    for index, key in enumerate(_configured_entries()):
        try:
            Fernet(key.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            problems.append(
                Error(
                    f"DOUBLE_ENCRYPTION_KEYS entry {index + 1} is not a Fernet key.",
                    hint="Make one with: python -c 'from cryptography.fernet import Fernet; "
                    "print(Fernet.generate_key().decode())'",
                    id="generation.E010",
                )
            )
    return problems


@register(Tags.security, deploy=True)
def check_double_encryption_keys_set(app_configs: object = None, **kwargs: object) -> list:
    """Deploy check: production must not rely on the key derived from SECRET_KEY."""
    if _configured_entries():
        return []
    return [
        Warning(
            "DOUBLE_ENCRYPTION_KEYS is not set: digital doubles are encrypted with a key derived from "
            "SECRET_KEY (changing SECRET_KEY would make every double unreadable).",
            hint="Set DOUBLE_ENCRYPTION_KEYS to one or more Fernet keys (comma separated; the first encrypts).",
            id="generation.W010",
        )
    ]
