"""API keys: a studio's integrations authenticate with `Authorization: Api-Key sk_<prefix>_<secret>`.

The plaintext key is made here, returned once to whoever created it, and never stored: the database keeps the
public prefix (to find the row) and the SHA-256 of the whole key (to check it, with a constant-time compare).
A secret of 32 random bytes makes a slow password hash pointless; SHA-256 keeps each request cheap.

Services (writes) and the one lookup run in the current tenant context, so a key of another studio is simply
not found: the lookup by prefix is scoped by the manager and by row-level security.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from tenants.context import require_studio_id
from tenants.models import ApiKey, User

KEY_SCHEME = "sk"
PREFIX_LENGTH = 10
SECRET_BYTES = 32
PREFIX_ALPHABET = string.ascii_lowercase + string.digits
# sk_<10 of [a-z0-9]>_<urlsafe base64 of 32 bytes: 43 characters of [A-Za-z0-9_-]>
KEY_RE = re.compile(rf"^{KEY_SCHEME}_(?P<prefix>[a-z0-9]{{{PREFIX_LENGTH}}})_(?P<secret>[A-Za-z0-9_-]{{32,128}})$")
# last_used_at is written at most this often per key (one UPDATE a minute, not one a request).
LAST_USED_RESOLUTION = timedelta(minutes=1)
NAME_MAX_LENGTH = ApiKey._meta.get_field("name").max_length


def hash_key(raw_key: str) -> str:
    """The stored form of a key: hex SHA-256."""
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


def parse_key(raw_key: str) -> str | None:
    """The prefix of a well-formed key, or None for anything malformed."""
    match = KEY_RE.match(raw_key or "")
    return match["prefix"] if match else None


def _new_key() -> tuple[str, str]:
    prefix = "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return prefix, f"{KEY_SCHEME}_{prefix}_{secret}"


def _clean_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": _("Give the key a name, e.g. the integration that will use it.")})
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError({"name": _("Use at most %(max)s characters for the name.") % {"max": NAME_MAX_LENGTH}})
    return name


def create_api_key(*, name: str, created_by: User | None) -> tuple[ApiKey, str]:
    """Create a key for the current studio. Returns the row and the plaintext key, which exists only here:
    show it to the person once. Raises ValidationError for a missing name or one already used by an active
    key of the studio."""
    studio_id = require_studio_id()
    name = _clean_name(name)
    if ApiKey.objects.filter(revoked_at__isnull=True, name__iexact=name).exists():
        raise ValidationError(
            {"name": _("An active API key named “%(name)s” already exists; choose another name.") % {"name": name}}
        )
    for _attempt in range(3):
        prefix, raw_key = _new_key()
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    studio_id=studio_id,
                    name=name,
                    prefix=prefix,
                    hashed_key=hash_key(raw_key),
                    created_by=created_by,
                )
        except IntegrityError:  # a prefix collision (36**10 of them): draw again
            continue
        return api_key, raw_key
    raise RuntimeError("Could not draw a unique API key prefix")  # pragma: no cover


def revoke_api_key(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key of the current studio (idempotent): it stops authenticating at once."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def authenticate_key(*, raw_key: str) -> ApiKey | None:
    """The current studio's active key matching `raw_key`, or None (malformed, unknown, revoked, or a key of
    another studio: the lookup only sees the current studio's rows)."""
    prefix = parse_key(raw_key)
    if prefix is None:
        return None
    api_key = ApiKey.objects.filter(prefix=prefix).first()
    if api_key is None or not hmac.compare_digest(api_key.hashed_key, hash_key(raw_key)):
        return None
    if api_key.revoked_at is not None:
        return None
    return api_key


def mark_used(*, api_key: ApiKey) -> None:
    """Record use, at most once per LAST_USED_RESOLUTION (a conditional UPDATE, so concurrent requests agree)."""
    now = timezone.now()
    if api_key.last_used_at is not None and now - api_key.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiKey.objects.filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
    ).update(last_used_at=now)
    api_key.last_used_at = now
